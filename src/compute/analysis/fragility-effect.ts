// Fragility as an effect against a control, with an interval, a test and false-discovery control. For image i and
// channel c, with a the spatial-mean activation and σ_c its natural standard deviation over the clean reference set,
//
//     z_adv[i,c]  = (a_adv[i,c]  − a_clean[i,c]) / σ'_c        σ'_c = max(σ_c, floor)
//     z_ctrl[i,c] = (a_ctrl[i,c] − a_clean[i,c]) / σ'_c
//     d[i,c]      = |z_adv[i,c]| − |z_ctrl[i,c]|
//     effect_c    = mean_i d[i,c]
//
// where the control is the same image under random noise of the attack's L∞ size. The effect is how many natural σ
// further the attack moves the neuron than noise of the same size does.
//
// Absolute changes per image, not signed ones: an untargeted attack on photos of different classes pushes a neuron up
// on some and down on others, and a signed mean cancels to ~0 however far each image moved. The signed mean of z_adv
// is reported beside the effect so the direction is not lost. The control is subtracted per image, not as a mean,
// because both perturbations act on the same image: pairing removes how sensitive the neuron happens to be around
// each image from the comparison.
//
// - Interval: percentile bootstrap over images of the mean of d (statistics/bootstrap.ts).
// - Test: two-sided sign-flip permutation test of d (statistics/paired-test.ts): under the null, attack and control
//   are exchangeable on each image. It depends on d only up to its scale, so σ does not change p; σ and its floor
//   matter for the effect and hence for the minimum-effect gate and rankings.
// - Benjamini–Hochberg across the layer's channels (statistics/fdr.ts).
// - fragile = q ≤ fdr AND effect ≥ minEffect: significance alone would flag consistent but negligible moves once n
//   is large; the effect gate alone would flag noise at small n.
// - With fewer than MIN_IMAGES images no claim is made (p, q, ci null, `descriptive: true`): two images give 4 sign
//   vectors, a smallest p of 0.5, and a bootstrap of 3 distinct means. Note that even the exact test cannot reach
//   p < 0.05 below 6 images, so at n = 3–5 p is reported but nothing can be significant.
//
// σ floor: a channel that barely varies over the reference set (near-dead after a ReLU, or constant) has σ ≈ 0, and a
// change at the level of float32 rounding would become millions of σ. σ is therefore floored at a fraction (default
// 0.1) of the median σ of the layer's varying channels: scaled to the layer, because activation scales differ by
// layer and model, so no absolute floor fits all; the median, because dead channels (σ = 0) must not drag it down;
// a tenth, so a channel's σ units are at most ten times finer than a typical channel's — any channel with real
// variation keeps its own σ, while a constant one is measured in a tenth of the layer's typical spread. When no
// channel varies at all (e.g. a reference set of one image), the floor is 1 and effects are in raw activation units.
import { bootstrapColumnMeans } from './statistics/bootstrap.ts';
import { benjaminiHochberg, significant } from './statistics/fdr.ts';
import { signFlipColumns } from './statistics/paired-test.ts';
import { createRng } from '../random.ts';

/** Fewer images than this: descriptive values only. */
export const MIN_IMAGES = 3;

export interface FragilityEffectOptions {
  channels: number;
  clean: ArrayLike<number>; // [N,C]
  adversarial: ArrayLike<number>; // [N,C]
  /** the same images under random noise of the attack's size */
  control: ArrayLike<number>; // [N,C]
  /** natural σ over the clean reference set */
  sigma: ArrayLike<number>; // [C]
  seed: number;
  /** false-discovery level (Benjamini–Hochberg) */
  fdr?: number;
  /** smallest effect, in natural σ, that counts as fragile */
  minEffect?: number;
  /** σ floor as a fraction of the median σ of the layer's varying channels */
  sigmaFloorFraction?: number;
  /** absolute σ floor; replaces the fraction */
  sigmaFloor?: number;
  /** coverage of the bootstrap interval */
  ciLevel?: number;
  resamples?: number;
  permutations?: number;
}

export interface ChannelFragilityEffect {
  channel: number;
  /** mean over images of |z_adv| − |z_ctrl| */
  effect: number;
  /** bootstrap interval of the effect; null when descriptive */
  ci: [number, number] | null;
  /** two-sided sign-flip p; null when descriptive or not computable (a NaN input) */
  p: number | null;
  /** Benjamini–Hochberg q across the layer; null as p */
  q: number | null;
  fragile: boolean;
  /** mean |z_adv| */
  adversarial_change: number;
  /** mean |z_ctrl| */
  control_change: number;
  /** mean signed z_adv: the direction, which may cancel across images */
  signed_change: number;
}

export interface LayerFragilityEffect {
  n: number;
  channels: number;
  fdr: number;
  min_effect: number;
  sigma_floor: number;
  ci_level: number;
  /** true when n < MIN_IMAGES: values only, no p, q, interval or fragile neuron */
  descriptive: boolean;
  /** whether p came from full enumeration; null when descriptive */
  exact: boolean | null;
  /** sign vectors per test; null when descriptive */
  permutations: number | null;
  resamples: number | null;
  /** fragile channels */
  fragile: number;
  /** one per channel, in channel order */
  neurons: ChannelFragilityEffect[];
}

export interface StandardizedChanges {
  n: number;
  floor: number;
  /** σ' = max(σ, floor) [C] */
  sigma: Float64Array;
  /** z_adv [N,C] */
  adversarial: Float64Array;
  /** z_ctrl [N,C] */
  control: Float64Array;
}

/** The σ floor: `fraction` × the median σ over channels with σ > 0, or 1 when none varies. */
export function sigmaFloor(sigma: ArrayLike<number>, fraction = 0.1): number {
  if (!(fraction >= 0)) throw new RangeError(`σ floor fraction must be ≥ 0, got ${fraction}`);
  const varying = Float64Array.from(sigma).filter((s) => s > 0 && Number.isFinite(s)).sort();
  if (varying.length === 0) return 1;
  const m = varying.length >> 1;
  const median = varying.length % 2 ? varying[m] : (varying[m - 1] + varying[m]) / 2;
  return fraction * median;
}

/** Per-image changes clean→adversarial and clean→control in floored natural-σ units. */
export function standardizedChanges(
  opts: Pick<FragilityEffectOptions, 'channels' | 'clean' | 'adversarial' | 'control' | 'sigma' | 'sigmaFloor' | 'sigmaFloorFraction'>,
): StandardizedChanges {
  const { channels, clean, adversarial, control } = opts;
  if (!Number.isInteger(channels) || channels < 1) throw new RangeError(`channels must be a positive integer, got ${channels}`);
  if (clean.length % channels) throw new RangeError(`${clean.length} clean values do not form rows of ${channels} channels`);
  if (adversarial.length !== clean.length || control.length !== clean.length) {
    throw new RangeError(`clean, adversarial and control differ in size: ${clean.length}, ${adversarial.length}, ${control.length}`);
  }
  if (opts.sigma.length !== channels) throw new RangeError(`σ has ${opts.sigma.length} values for ${channels} channels`);
  const floor = opts.sigmaFloor ?? sigmaFloor(opts.sigma, opts.sigmaFloorFraction ?? 0.1);
  if (!(floor > 0)) throw new RangeError(`σ floor must be > 0, got ${floor}`);
  // NaN σ fails the comparison and takes the floor.
  const sigma = Float64Array.from(opts.sigma, (s) => (s > floor ? s : floor));
  const n = clean.length / channels;
  const adv = new Float64Array(clean.length);
  const ctrl = new Float64Array(clean.length);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < channels; c++) {
      const k = i * channels + c;
      adv[k] = (adversarial[k] - clean[k]) / sigma[c];
      ctrl[k] = (control[k] - clean[k]) / sigma[c];
    }
  }
  return { n, floor, sigma, adversarial: adv, control: ctrl };
}

/** Fragility effect, interval, p, q and verdict of every channel of one layer under one attack. */
export function layerFragilityEffect(opts: FragilityEffectOptions): LayerFragilityEffect {
  const fdr = opts.fdr ?? 0.05;
  const minEffect = opts.minEffect ?? 0.5;
  const ciLevel = opts.ciLevel ?? 0.95;
  const resamples = opts.resamples ?? 2000;
  const permutations = opts.permutations ?? 9999;
  if (!(fdr > 0 && fdr < 1)) throw new RangeError(`fdr must be in (0, 1), got ${fdr}`);
  const { channels } = opts;
  const z = standardizedChanges(opts);
  const { n } = z;
  if (n === 0) throw new RangeError('no images: fragility needs at least one clean/adversarial/control triple');

  const d = new Float64Array(n * channels);
  const effect = new Float64Array(channels);
  const adv = new Float64Array(channels);
  const ctrl = new Float64Array(channels);
  const signed = new Float64Array(channels);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < channels; c++) {
      const k = i * channels + c;
      d[k] = Math.abs(z.adversarial[k]) - Math.abs(z.control[k]);
      effect[c] += d[k];
      adv[c] += Math.abs(z.adversarial[k]);
      ctrl[c] += Math.abs(z.control[k]);
      signed[c] += z.adversarial[k];
    }
  }

  const descriptive = n < MIN_IMAGES;
  for (let c = 0; c < channels; c++) effect[c] /= n;
  const rng = createRng(opts.seed);
  let ci: { lo: Float64Array; hi: Float64Array } | null = null;
  let test: ReturnType<typeof signFlipColumns> | null = null;
  let q: Float64Array | null = null;
  if (!descriptive) {
    ci = bootstrapColumnMeans(d, channels, { seed: rng.fork('bootstrap'), resamples, level: ciLevel });
    test = signFlipColumns(d, channels, { seed: rng.fork('sign-flip'), permutations });
    q = benjaminiHochberg(test.p);
  }

  const orNull = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? null : v);
  const neurons: ChannelFragilityEffect[] = [];
  for (let c = 0; c < channels; c++) {
    const qc = q ? orNull(q[c]) : null;
    neurons.push({
      channel: c,
      effect: effect[c],
      ci: ci ? [ci.lo[c], ci.hi[c]] : null,
      p: test ? orNull(test.p[c]) : null,
      q: qc,
      fragile: !descriptive && significant(qc, fdr) && effect[c] >= minEffect,
      adversarial_change: adv[c] / n,
      control_change: ctrl[c] / n,
      signed_change: signed[c] / n,
    });
  }
  return {
    n,
    channels,
    fdr,
    min_effect: minEffect,
    sigma_floor: z.floor,
    ci_level: ciLevel,
    descriptive,
    exact: test ? test.exact : null,
    permutations: test ? test.permutations : null,
    resamples: descriptive ? null : resamples,
    fragile: neurons.filter((x) => x.fragile).length,
    neurons,
  };
}
