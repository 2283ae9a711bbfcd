// Sign-flip permutation test of paired differences d_i = x_i − y_i (here: how far the attack moved a neuron on image i
// minus how far random noise of the same ε moved it on the same image). Under the null that, per image, the two
// conditions are exchangeable, each d_i is as likely to be −d_i, so the observed |Σ d_i| is compared with |Σ s_i d_i|
// over sign vectors s ∈ {±1}^n. Two-sided: the statistic is |Σ s_i d_i|. No normality is assumed, which matters for
// 10–30 images of differences between absolute changes.
//
// - Exact when 2^(n−1) ≤ permutations (enumeration is then no dearer than sampling): s and −s give the same |Σ|, so
//   the last sign is fixed at + and p = #{s : |Σ s d| ≥ |Σ d|} / 2^(n−1). The smallest p is 2/2^n.
// - Otherwise Monte Carlo with B random sign vectors and the +1 correction, p = (1 + #{b : T_b ≥ T}) / (B + 1),
//   which counts the observed vector among the permutations and so is never 0 and stays valid for finite B
//   (Phipson & Smyth 2010).
//
// Sums that are equal in exact arithmetic may differ in the last bits (quantized activations produce such ties), so
// "≥" allows 1e-9 of Σ|d_i|: ties count against significance, never for it. For a matrix [N,C] every column is tested
// with the same sign vectors (the images are flipped, not the channels), so sampling costs once per layer; each
// column's p is still that column's permutation p-value. A column with a NaN gets p = NaN.
import { createRng, type Rng } from '../../random.ts';

export interface SignFlipOptions {
  /** a seed, or a stream (e.g. `rng.fork('sign-flip')`), which the call advances; unused when exact */
  seed: number | Rng;
  /** Monte Carlo sign vectors; also the budget below which enumeration is used */
  permutations?: number;
  /** force enumeration (true, n ≤ 24) or sampling (false); default: enumeration when it is no dearer */
  exact?: boolean;
}

export interface SignFlipResult {
  n: number;
  /** mean of the differences */
  mean: number;
  /** two-sided p-value */
  p: number;
  exact: boolean;
  /** sign vectors evaluated: 2^(n−1) when exact, else B */
  permutations: number;
}

export interface ColumnSignFlip {
  n: number;
  /** [C] */
  mean: Float64Array;
  /** [C] two-sided p-values */
  p: Float64Array;
  exact: boolean;
  permutations: number;
}

const MAX_EXACT = 24;
const TIE_TOLERANCE = 1e-9;

/** Sign-flip test of every column of the paired differences d [N,C]. */
export function signFlipColumns(d: ArrayLike<number>, channels: number, opts: SignFlipOptions): ColumnSignFlip {
  const permutations = opts.permutations ?? 9999;
  if (!Number.isInteger(channels) || channels < 1) throw new RangeError(`channels must be a positive integer, got ${channels}`);
  if (d.length % channels) throw new RangeError(`${d.length} differences do not form rows of ${channels} channels`);
  if (!Number.isInteger(permutations) || permutations < 1) throw new RangeError(`permutations must be a positive integer, got ${permutations}`);
  const n = d.length / channels;
  const mean = new Float64Array(channels).fill(NaN);
  const p = new Float64Array(channels).fill(NaN);
  if (n === 0) return { n, mean, p, exact: true, permutations: 0 };
  if (opts.exact === true && n > MAX_EXACT) throw new RangeError(`exact enumeration is limited to n ≤ ${MAX_EXACT}, got n = ${n}`);
  const exact = opts.exact ?? (n <= MAX_EXACT && 2 ** (n - 1) <= permutations);

  const observed = new Float64Array(channels);
  const tolerance = new Float64Array(channels);
  const valid = new Uint8Array(channels).fill(1);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < channels; c++) {
      const v = d[i * channels + c];
      if (Number.isNaN(v)) valid[c] = 0;
      observed[c] += v;
      tolerance[c] += Math.abs(v);
    }
  }
  for (let c = 0; c < channels; c++) {
    mean[c] = valid[c] ? observed[c] / n : NaN;
    // Summed in the same order as every permuted sum below, so the identity sign vector reproduces it bit for bit.
    observed[c] = Math.abs(observed[c]) - TIE_TOLERANCE * tolerance[c];
  }

  const count = new Float64Array(channels);
  const acc = new Float64Array(channels);
  const accumulate = (negative: (i: number) => boolean) => {
    acc.fill(0);
    for (let i = 0; i < n; i++) {
      const row = i * channels;
      if (negative(i)) for (let c = 0; c < channels; c++) acc[c] -= d[row + c];
      else for (let c = 0; c < channels; c++) acc[c] += d[row + c];
    }
    for (let c = 0; c < channels; c++) if (Math.abs(acc[c]) >= observed[c]) count[c]++;
  };

  let evaluated: number;
  if (exact) {
    evaluated = 2 ** (n - 1);
    for (let mask = 0; mask < evaluated; mask++) accumulate((i) => i < n - 1 && ((mask >>> i) & 1) === 1);
    for (let c = 0; c < channels; c++) if (valid[c]) p[c] = count[c] / evaluated;
  } else {
    evaluated = permutations;
    const rng = typeof opts.seed === 'number' ? createRng(opts.seed) : opts.seed;
    const words = new Uint32Array(Math.ceil(n / 32));
    for (let b = 0; b < permutations; b++) {
      // uniform() carries 53 random bits; its top 32 are a uniform 32-bit word, one sign per bit.
      for (let w = 0; w < words.length; w++) words[w] = Math.floor(rng.uniform() * 4294967296);
      accumulate((i) => ((words[i >>> 5] >>> (i & 31)) & 1) === 1);
    }
    for (let c = 0; c < channels; c++) if (valid[c]) p[c] = (1 + count[c]) / (permutations + 1);
  }
  return { n, mean, p, exact, permutations: evaluated };
}

/** Sign-flip test of the paired differences d [N]. */
export function signFlipTest(d: ArrayLike<number>, opts: SignFlipOptions): SignFlipResult {
  if (d.length === 0) return { n: 0, mean: NaN, p: NaN, exact: true, permutations: 0 };
  const r = signFlipColumns(d, 1, opts);
  return { n: r.n, mean: r.mean[0], p: r.p[0], exact: r.exact, permutations: r.permutations };
}

/** Sign-flip test of x − y for paired samples x[i], y[i] [N]. */
export function pairedSignFlipTest(x: ArrayLike<number>, y: ArrayLike<number>, opts: SignFlipOptions): SignFlipResult {
  if (x.length !== y.length) throw new RangeError(`paired samples differ in length: ${x.length} and ${y.length}`);
  return signFlipTest(Float64Array.from(x, (v, i) => v - y[i]), opts);
}
