// Percentile bootstrap confidence intervals of a mean over images (Efron & Tibshirani 1993, ch. 13). Images are
// resampled with replacement; the interval is the (1−level)/2 and (1+level)/2 quantiles of the resampled means.
//
// Percentile rather than BCa: BCa corrects for skew with an acceleration estimated by a jackknife over the same
// 10–30 images, itself noisy at that n, and the percentile interval is the one a reader can check by hand. At small n
// both under-cover, which is why significance comes from the permutation test (paired-test.ts), not from whether the
// interval excludes 0.
//
// For a matrix [N,C] every column is resampled with the same draws of images: the columns are channels measured on
// the same images, the cost of drawing is paid once per layer instead of once per channel, and each column's interval
// is still that column's ordinary bootstrap. Same seed, same inputs → byte-identical intervals: the draws come from
// the project's seeded RNG and every sum runs in a fixed order.
import { createRng, type Rng } from '../../random.ts';

export interface BootstrapOptions {
  /** a seed, or a stream (e.g. `rng.fork('bootstrap')`), which the call advances */
  seed: number | Rng;
  /** resamples; 2000 puts the 2.5 % and 97.5 % quantiles on ~50 resampled means each */
  resamples?: number;
  /** coverage of the interval */
  level?: number;
}

export interface MeanInterval {
  mean: number;
  /** [lo, hi]; NaN when there are no values or one is NaN */
  ci: [number, number];
}

export interface ColumnIntervals {
  /** [C] */
  mean: Float64Array;
  lo: Float64Array;
  hi: Float64Array;
}

/** Bootstrap interval of the mean of every column of values [N,C], images resampled jointly across columns. */
export function bootstrapColumnMeans(values: ArrayLike<number>, channels: number, opts: BootstrapOptions): ColumnIntervals {
  const resamples = opts.resamples ?? 2000;
  const level = opts.level ?? 0.95;
  if (!Number.isInteger(channels) || channels < 1) throw new RangeError(`channels must be a positive integer, got ${channels}`);
  if (values.length % channels) throw new RangeError(`${values.length} values do not form rows of ${channels} channels`);
  if (!Number.isInteger(resamples) || resamples < 1) throw new RangeError(`resamples must be a positive integer, got ${resamples}`);
  if (!(level > 0 && level < 1)) throw new RangeError(`level must be in (0, 1), got ${level}`);
  const n = values.length / channels;
  const mean = new Float64Array(channels).fill(NaN);
  const lo = new Float64Array(channels).fill(NaN);
  const hi = new Float64Array(channels).fill(NaN);
  if (n === 0) return { mean, lo, hi };

  const valid = new Uint8Array(channels).fill(1);
  mean.fill(0);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < channels; c++) {
      const v = values[i * channels + c];
      if (Number.isNaN(v)) valid[c] = 0;
      mean[c] += v;
    }
  }
  for (let c = 0; c < channels; c++) mean[c] = valid[c] ? mean[c] / n : NaN;

  const rng = typeof opts.seed === 'number' ? createRng(opts.seed) : opts.seed;
  // Column-major [C,B], so each column's resampled means sort in place as one subarray.
  const means = new Float64Array(channels * resamples);
  const weight = new Int32Array(n);
  const acc = new Float64Array(channels);
  for (let b = 0; b < resamples; b++) {
    weight.fill(0);
    for (let j = 0; j < n; j++) weight[rng.uniformInt(0, n - 1)]++;
    acc.fill(0);
    for (let i = 0; i < n; i++) {
      const w = weight[i];
      if (w === 0) continue;
      const row = i * channels;
      for (let c = 0; c < channels; c++) acc[c] += w * values[row + c];
    }
    for (let c = 0; c < channels; c++) means[c * resamples + b] = acc[c] / n;
  }
  const tail = (1 - level) / 2;
  for (let c = 0; c < channels; c++) {
    if (!valid[c]) continue;
    const column = means.subarray(c * resamples, (c + 1) * resamples).sort();
    lo[c] = sortedQuantile(column, tail);
    hi[c] = sortedQuantile(column, 1 - tail);
  }
  return { mean, lo, hi };
}

/** Bootstrap interval of the mean of the values [N]. */
export function bootstrapMean(values: ArrayLike<number>, opts: BootstrapOptions): MeanInterval {
  if (values.length === 0) return { mean: NaN, ci: [NaN, NaN] };
  const r = bootstrapColumnMeans(values, 1, opts);
  return { mean: r.mean[0], ci: [r.lo[0], r.hi[0]] };
}

/** Bootstrap interval of mean(a − b) for paired values a[i], b[i] [N]: pairs are resampled together. */
export function bootstrapMeanDifference(a: ArrayLike<number>, b: ArrayLike<number>, opts: BootstrapOptions): MeanInterval {
  if (a.length !== b.length) throw new RangeError(`paired samples differ in length: ${a.length} and ${b.length}`);
  return bootstrapMean(Float64Array.from(a, (v, i) => v - b[i]), opts);
}

/** Linear-interpolation quantile (type 7, NumPy's default) of sorted values. */
function sortedQuantile(s: ArrayLike<number>, q: number): number {
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}
