// Class selectivity of neurons against the rest of the reference set, instead of raw class means (a channel with a
// high baseline tops every class's mean ranking). For channel c and a class (or WordNet group) with n1 reference
// images, against the other n2 = N − n1,
//
//     AUROC_c = P(a_class > a_rest) + ½ P(a_class = a_rest) = U_c / (n1 · n2)
//     U_c     = R_c − n1 (n1 + 1) / 2
//
// with R_c the sum of the class images' midranks (tied values share their mean rank) among all N values of channel c:
// the Mann–Whitney U with ties. 0.5 is chance, 1 means every class image outranks every other image. Rank-based, so
// it is unchanged by any increasing transform of the activations and compares channels of any scale.
//
// Null: the class's images are a random n1-subset of the N, so R_c is the sum of n1 midranks drawn without
// replacement. Reference sets have 1–5 images per class, where the normal approximation of U fails. The rank sum of a
// few images among thousands is nearly a sum of a few uniform draws: for n1 = 1 it is uniform, and the best possible
// p, the image ranked first, is 1/N (3·10⁻⁴ at N = 3000), while the normal approximation gives 0.04; at n1 = 3 the
// exact p of the top three ranks is 1/C(N, 3) ≈ 2·10⁻¹⁰ and the normal one 1·10⁻³ — far too conservative for BH over
// 1280 channels, which needs p ≤ q/m ≈ 4·10⁻⁵. With ties (ReLU channels put many images at exactly 0) the midrank
// population is skewed to the right and the normal tail can be lighter than the true one, p too small. So up to PERMUTATION_MAX_GROUP images p comes from
// a Monte Carlo permutation test: B random n1-subsets of the images, each used for every channel (the images are
// permuted, not the channels, so drawing costs once per class and each channel's p is still its own permutation
// p-value), with the +1 correction
//
//     p_c = (1 + #{b : R_b,c ≥ R_c}) / (B + 1)                       (greater)
//     p_c = (1 + #{b : |R_b,c − μ| ≥ |R_c − μ|}) / (B + 1)           (two-sided, μ = n1 (N + 1) / 2)
//
// A channel stops drawing once h = 20 permuted sums have reached its own (Besag & Clifford 1991, sequential Monte
// Carlo p-values): its p is then h/L after L draws, still a valid p-value, so the draws go to the few channels near
// significance and a layer of unselective channels costs ~h/p draws each instead of B. Midranks are half-integers,
// so every sum is exact in float64 and ties compare equal without a tolerance. The smallest p is 1/(B + 1); the
// default B = 49 999 gives 2·10⁻⁵ ≤ q/m for m ≤ 2500 channels at q = 0.05. Ranking a layer (3000 images × 1280
// channels) takes ~0.5 s on one core and is shared across classes (`ranks`); a class then takes ~10 ms, plus
// B · n1 additions for each channel that stays near significance. Groups
// above PERMUTATION_MAX_GROUP images use the normal approximation with the tie correction
//
//     σ² = n1 n2 / 12 · [(N + 1) − Σ_t (t³ − t) / (N (N − 1))]
//
// and R's continuity correction of ½, where n1 is large enough for it (its error shrinks as 1/√n1).
//
// Benjamini–Hochberg across the channels for the one class (statistics/fdr.ts). selective = q ≤ fdr AND AUROC ≥
// minAuroc (default 0.75: a class image outranks a random other image three times in four): for groups of hundreds
// of images, significance alone would admit AUROC 0.55; for a class of 3 images significance already needs AUROC
// near 1. Default alternative 'greater': selectivity means firing more for the class.
import { createRng, type Rng } from '../random.ts';
import { ancestors, isUnder, synsetName } from './class-groups.ts';
import { MIN_IMAGES } from './fragility-effect.ts';
import { benjaminiHochberg, significant } from './statistics/fdr.ts';
import { signFlipTest } from './statistics/paired-test.ts';

export type Alternative = 'greater' | 'two-sided';

/** Up to this many images in the class, p comes from permutations; above it, from the normal approximation. */
export const PERMUTATION_MAX_GROUP = 50;
export const DEFAULT_SELECTIVITY_PERMUTATIONS = 49_999;
export const DEFAULT_EXCEEDANCES = 20;

export interface MannWhitney {
  n1: number;
  n2: number;
  u: number;
  auroc: number;
  /** normal-approximation z with tie and continuity correction */
  z: number;
  /** its p-value */
  p: number;
}

export interface ColumnRanks {
  n: number;
  channels: number;
  /** midranks, 1-based [N,C]; a column with a NaN is all NaN */
  ranks: Float64Array;
  /** Σ (t³ − t) over each column's tie blocks [C] */
  ties: Float64Array;
}

/** Midranks of every column of values [N,C]. */
export function columnMidranks(values: ArrayLike<number>, channels: number): ColumnRanks {
  if (!Number.isInteger(channels) || channels < 1) throw new RangeError(`channels must be a positive integer, got ${channels}`);
  if (values.length % channels) throw new RangeError(`${values.length} values do not form rows of ${channels} channels`);
  const n = values.length / channels;
  const ranks = new Float64Array(n * channels);
  const ties = new Float64Array(channels);
  const column = new Float64Array(n);
  const sorted = new Float64Array(n);
  for (let c = 0; c < channels; c++) {
    let nan = false;
    for (let i = 0; i < n; i++) {
      column[i] = values[i * channels + c];
      if (Number.isNaN(column[i])) nan = true;
    }
    if (nan) {
      for (let i = 0; i < n; i++) ranks[i * channels + c] = NaN;
      ties[c] = NaN;
      continue;
    }
    // A native numeric sort and two binary searches per value: far cheaper than sorting indices with a comparator.
    sorted.set(column);
    sorted.sort();
    for (let s = 0; s < n; ) {
      let e = s + 1;
      while (e < n && sorted[e] === sorted[s]) e++;
      const t = e - s;
      if (t > 1) ties[c] += t * t * t - t;
      s = e;
    }
    for (let i = 0; i < n; i++) {
      const v = column[i];
      let lo = 0;
      let hi = n;
      while (lo < hi) { const m = (lo + hi) >>> 1; if (sorted[m] < v) lo = m + 1; else hi = m; }
      const first = lo;
      hi = n;
      while (lo < hi) { const m = (lo + hi) >>> 1; if (sorted[m] <= v) lo = m + 1; else hi = m; }
      ranks[i * channels + c] = (first + 1 + lo) / 2;
    }
  }
  return { n, channels, ranks, ties };
}

/** AUROC of positives against negatives: P(X > Y) + ½ P(X = Y); NaN when either is empty. */
export function auroc(positive: ArrayLike<number>, negative: ArrayLike<number>): number {
  return mannWhitneyU(positive, negative).auroc;
}

/** Mann–Whitney U of positives against negatives, with the normal-approximation p (tie and continuity corrected). */
export function mannWhitneyU(positive: ArrayLike<number>, negative: ArrayLike<number>, alternative: Alternative = 'greater'): MannWhitney {
  const n1 = positive.length;
  const n2 = negative.length;
  if (n1 === 0 || n2 === 0) return { n1, n2, u: NaN, auroc: NaN, z: NaN, p: NaN };
  const all = new Float64Array(n1 + n2);
  all.set(Array.from(positive));
  all.set(Array.from(negative), n1);
  const r = columnMidranks(all, 1);
  let sum = 0;
  for (let i = 0; i < n1; i++) sum += r.ranks[i];
  const u = sum - (n1 * (n1 + 1)) / 2;
  const { z, p } = normalApproximation(u, n1, n2, r.ties[0], alternative);
  return { n1, n2, u, auroc: u / (n1 * n2), z, p };
}

function normalApproximation(u: number, n1: number, n2: number, ties: number, alternative: Alternative): { z: number; p: number } {
  const n = n1 + n2;
  if (Number.isNaN(u) || Number.isNaN(ties)) return { z: NaN, p: NaN };
  const variance = ((n1 * n2) / 12) * (n + 1 - ties / (n * (n - 1)));
  const d = u - (n1 * n2) / 2;
  // Every value tied: U is constant and nothing is evidence either way.
  if (!(variance > 0)) return { z: 0, p: 1 };
  const sd = Math.sqrt(variance);
  if (alternative === 'greater') {
    const z = (d - 0.5) / sd;
    return { z, p: upperNormalTail(z) };
  }
  const z = (d - Math.sign(d) * 0.5) / sd;
  return { z, p: Math.min(1, 2 * upperNormalTail(Math.abs(z))) };
}

/** P(Z ≥ z) for a standard normal, to a relative error below 1.2·10⁻⁷ (Press et al., Numerical Recipes, erfcc). */
export function upperNormalTail(z: number): number {
  const x = z / Math.SQRT2;
  const ax = Math.abs(x);
  const t = 1 / (1 + 0.5 * ax);
  const erfc = t * Math.exp(-ax * ax - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return 0.5 * (x >= 0 ? erfc : 2 - erfc);
}

export interface ChannelSelectivity {
  channel: number;
  auroc: number | null;
  u: number | null;
  p: number | null;
  /** Benjamini–Hochberg q across the channels, for this class */
  q: number | null;
  selective: boolean;
}

export interface ClassSelectivity {
  /** images of the class (or group) */
  n: number;
  /** the other reference images */
  rest: number;
  method: 'permutation' | 'normal';
  /** random subsets when by permutation, else null */
  permutations: number | null;
  /** 1/(B + 1) by permutation; null for the normal approximation */
  smallest_p: number | null;
  alternative: Alternative;
  fdr: number;
  min_auroc: number;
  /** selective channels */
  count: number;
  /** one per channel, in channel order */
  neurons: ChannelSelectivity[];
}

export interface ClassSelectivityOptions {
  channels: number;
  values: ArrayLike<number>; // [N,C]
  /** the class's (or group's) reference images, as row indices into values */
  rows: readonly number[];
  /** a seed, or a stream (e.g. `rng.fork('selectivity:<class>')`), which the call advances */
  seed: number | Rng;
  /** columnMidranks(values, channels), to share the ranking across classes */
  ranks?: ColumnRanks;
  fdr?: number;
  minAuroc?: number;
  alternative?: Alternative;
  permutations?: number;
  /** a channel's permutations stop once this many reach its statistic (Besag & Clifford 1991) */
  exceedances?: number;
  /** 'auto': permutation up to PERMUTATION_MAX_GROUP images, else normal */
  method?: 'auto' | 'permutation' | 'normal';
}

/** AUROC, p, q and verdict of every channel for one class (or group) against the rest of the reference set. */
export function classSelectivity(opts: ClassSelectivityOptions): ClassSelectivity {
  const { channels, rows } = opts;
  const fdr = opts.fdr ?? 0.05;
  const minAuroc = opts.minAuroc ?? 0.75;
  const alternative = opts.alternative ?? 'greater';
  const permutations = opts.permutations ?? DEFAULT_SELECTIVITY_PERMUTATIONS;
  const exceedances = opts.exceedances ?? DEFAULT_EXCEEDANCES;
  if (!Number.isInteger(exceedances) || exceedances < 1) throw new RangeError(`exceedances must be a positive integer, got ${exceedances}`);
  if (!(fdr > 0 && fdr < 1)) throw new RangeError(`fdr must be in (0, 1), got ${fdr}`);
  if (!Number.isInteger(permutations) || permutations < 1) throw new RangeError(`permutations must be a positive integer, got ${permutations}`);
  const r = opts.ranks ?? columnMidranks(opts.values, channels);
  if (r.channels !== channels || r.n * channels !== opts.values.length) throw new RangeError(`ranks are for ${r.n} × ${r.channels}, values ${opts.values.length} for ${channels} channels`);
  const n = r.n;
  const n1 = rows.length;
  const n2 = n - n1;
  if (n1 < 1 || n2 < 1) throw new RangeError(`need at least one image in and out of the class, got ${n1} of ${n}`);
  const member = new Uint8Array(n);
  for (const i of rows) {
    if (!(Number.isInteger(i) && i >= 0 && i < n)) throw new RangeError(`row ${i} is not an image index (0–${n - 1})`);
    if (member[i]) throw new RangeError(`row ${i} is listed twice`);
    member[i] = 1;
  }
  const method = opts.method === 'auto' || opts.method === undefined ? (n1 <= PERMUTATION_MAX_GROUP ? 'permutation' : 'normal') : opts.method;

  const { ranks } = r;
  const observed = new Float64Array(channels);
  for (const i of rows) for (let c = 0; c < channels; c++) observed[c] += ranks[i * channels + c];
  const offset = (n1 * (n1 + 1)) / 2;
  const mu = (n1 * (n + 1)) / 2;
  const p = new Float64Array(channels).fill(NaN);

  if (method === 'permutation') {
    const rng = typeof opts.seed === 'number' ? createRng(opts.seed) : opts.seed;
    const pool = Int32Array.from({ length: n }, (_, i) => i);
    const drawn = new Int32Array(n1);
    const count = new Int32Array(channels);
    const target = Float64Array.from(observed, (v) => (alternative === 'greater' ? v : Math.abs(v - mu)));
    const active = new Int32Array(channels);
    let nActive = 0;
    for (let c = 0; c < channels; c++) if (!Number.isNaN(observed[c])) active[nActive++] = c;
    for (let b = 0; b < permutations && nActive > 0; b++) {
      // Partial Fisher–Yates: a uniform n1-subset whatever order earlier draws left the pool in.
      for (let j = 0; j < n1; j++) {
        const k = rng.uniformInt(j, n - 1);
        const t = pool[j];
        pool[j] = pool[k];
        pool[k] = t;
        drawn[j] = pool[j] * channels;
      }
      for (let a = 0; a < nActive; ) {
        const c = active[a];
        let sum = 0;
        for (let j = 0; j < n1; j++) sum += ranks[drawn[j] + c];
        const exceeds = alternative === 'greater' ? sum >= target[c] : Math.abs(sum - mu) >= target[c];
        if (exceeds && ++count[c] === exceedances) {
          p[c] = exceedances / (b + 1);
          active[a] = active[--nActive];
        } else {
          a++;
        }
      }
    }
    for (let a = 0; a < nActive; a++) p[active[a]] = (1 + count[active[a]]) / (permutations + 1);
  } else {
    for (let c = 0; c < channels; c++) p[c] = normalApproximation(observed[c] - offset, n1, n2, r.ties[c], alternative).p;
  }

  const q = benjaminiHochberg(p);
  const orNull = (v: number) => (Number.isNaN(v) ? null : v);
  const neurons: ChannelSelectivity[] = [];
  for (let c = 0; c < channels; c++) {
    const u = observed[c] - offset;
    const a = u / (n1 * n2);
    neurons.push({ channel: c, auroc: orNull(a), u: orNull(u), p: orNull(p[c]), q: orNull(q[c]), selective: significant(q[c], fdr) && a >= minAuroc });
  }
  return {
    n: n1,
    rest: n2,
    method,
    permutations: method === 'permutation' ? permutations : null,
    smallest_p: method === 'permutation' ? 1 / (permutations + 1) : null,
    alternative,
    fdr,
    min_auroc: minAuroc,
    count: neurons.filter((x) => x.selective).length,
    neurons,
  };
}

/** AUROC of every class against the rest, every channel, from shared midranks: [K,C], NaN rows for absent classes. */
export function classAurocs(r: ColumnRanks, labels: readonly number[], classCount: number): Float64Array {
  const { n, channels, ranks } = r;
  if (labels.length !== n) throw new RangeError(`${labels.length} labels for ${n} images`);
  const sums = new Float64Array(classCount * channels);
  const sizes = new Int32Array(classCount);
  for (let i = 0; i < n; i++) {
    const k = labels[i];
    if (!(Number.isInteger(k) && k >= 0 && k < classCount)) throw new RangeError(`label ${k} is not a class index (0–${classCount - 1})`);
    sizes[k]++;
    for (let c = 0; c < channels; c++) sums[k * channels + c] += ranks[i * channels + c];
  }
  for (let k = 0; k < classCount; k++) {
    const n1 = sizes[k];
    for (let c = 0; c < channels; c++) {
      sums[k * channels + c] = n1 === 0 || n1 === n ? NaN : (sums[k * channels + c] - (n1 * (n1 + 1)) / 2) / (n1 * (n - n1));
    }
  }
  return sums;
}

export interface SelectivityGroup {
  /** the class's name, or the group's */
  name: string;
  wnid: string;
  /** reference image indices */
  rows: number[];
  /** true when the class had fewer than minImages and a WordNet group stands in */
  pooled: boolean;
}

/**
 * The reference images to measure a class's selectivity on: the class's own when it has at least `minImages`;
 * otherwise the smallest configured group (name → synset, e.g. `mustelids: n02441326`) that holds the class and has
 * enough, else the nearest WordNet hypernym of the class that has enough.
 */
export function selectivityGroup(opts: {
  labels: readonly number[];
  classes: readonly { wnid: string; name: string }[];
  target: number;
  groups?: Readonly<Record<string, string>>;
  minImages?: number;
}): SelectivityGroup {
  const { labels, classes, target } = opts;
  const minImages = opts.minImages ?? 2;
  const cls = classes[target];
  if (!cls) throw new RangeError(`class ${target} is not among the ${classes.length} classes`);
  const rowsUnder = (wnid: string) => labels.flatMap((k, i) => (isUnder(classes[k].wnid, wnid) ? [i] : []));
  const own = labels.flatMap((k, i) => (k === target ? [i] : []));
  if (own.length >= minImages) return { name: cls.name, wnid: cls.wnid, rows: own, pooled: false };
  let best: SelectivityGroup | null = null;
  for (const [name, wnid] of Object.entries(opts.groups ?? {})) {
    if (!isUnder(cls.wnid, wnid)) continue;
    const rows = rowsUnder(wnid);
    if (rows.length >= minImages && (!best || rows.length < best.rows.length)) best = { name, wnid, rows, pooled: true };
  }
  if (best) return best;
  for (const wnid of ancestors(cls.wnid).slice(1)) {
    const rows = rowsUnder(wnid);
    if (rows.length >= minImages) return { name: synsetName(wnid), wnid, rows, pooled: true };
  }
  throw new RangeError(`no WordNet group above ${cls.name} has ${minImages} reference images`);
}

export interface ConditionCounts {
  /** selective channels at or above their threshold, per image [n] */
  per_image: number[];
  mean: number;
}

export interface TargetActivation {
  n: number;
  /** size of the target-selective channel set */
  selective: number;
  /** channels on, per condition */
  on: { clean: ConditionCounts; adversarial: ConditionCounts; control: ConditionCounts };
  /** channels off on the clean image and on after the perturbation */
  turned_on: { adversarial: ConditionCounts; control: ConditionCounts };
  /** mean over images of adversarial − control turned-on counts */
  difference: number;
  /** two-sided paired sign-flip p of that difference; null below MIN_IMAGES images */
  p: number | null;
  descriptive: boolean;
}

/**
 * How many of the target class's selective channels a targeted attack turns on, against the control (the same
 * images under random noise of the attack's size). A channel is on for an image when its activation reaches its
 * threshold (e.g. the target class's median activation over its reference images: groupStats(…).median from
 * neuron-stats.ts). Counts are per image, with n; the adversarial and control counts are compared image by image
 * with the sign-flip test (statistics/paired-test.ts), and below MIN_IMAGES images only the counts are reported.
 */
export function targetNeuronsTurnedOn(opts: {
  channels: number;
  clean: ArrayLike<number>; // [n,C]
  adversarial: ArrayLike<number>; // [n,C]
  control: ArrayLike<number>; // [n,C]
  /** target-selective channel indices */
  selective: readonly number[];
  /** activation at which a channel counts as on [C] */
  threshold: ArrayLike<number>;
  seed: number | Rng;
  permutations?: number;
}): TargetActivation {
  const { channels, clean, adversarial, control, selective, threshold } = opts;
  if (!Number.isInteger(channels) || channels < 1) throw new RangeError(`channels must be a positive integer, got ${channels}`);
  if (clean.length % channels) throw new RangeError(`${clean.length} clean values do not form rows of ${channels} channels`);
  if (adversarial.length !== clean.length || control.length !== clean.length) {
    throw new RangeError(`clean, adversarial and control differ in size: ${clean.length}, ${adversarial.length}, ${control.length}`);
  }
  if (threshold.length !== channels) throw new RangeError(`threshold has ${threshold.length} values for ${channels} channels`);
  for (const c of selective) if (!(Number.isInteger(c) && c >= 0 && c < channels)) throw new RangeError(`channel ${c} is not in 0–${channels - 1}`);
  if (new Set(selective).size !== selective.length) throw new RangeError('a selective channel is listed twice');
  const n = clean.length / channels;
  const on = (a: ArrayLike<number>, i: number, c: number) => a[i * channels + c] >= threshold[c];
  const counts = (f: (i: number) => number): ConditionCounts => {
    const per = Array.from({ length: n }, (_, i) => f(i));
    return { per_image: per, mean: n ? per.reduce((s, v) => s + v, 0) / n : NaN };
  };
  const countOn = (a: ArrayLike<number>) => counts((i) => selective.filter((c) => on(a, i, c)).length);
  const countTurnedOn = (a: ArrayLike<number>) => counts((i) => selective.filter((c) => !on(clean, i, c) && on(a, i, c)).length);
  const adv = countTurnedOn(adversarial);
  const ctrl = countTurnedOn(control);
  const d = adv.per_image.map((v, i) => v - ctrl.per_image[i]);
  const descriptive = n < MIN_IMAGES;
  const test = descriptive ? null : signFlipTest(d, { seed: opts.seed, permutations: opts.permutations });
  return {
    n,
    selective: selective.length,
    on: { clean: countOn(clean), adversarial: countOn(adversarial), control: countOn(control) },
    turned_on: { adversarial: adv, control: ctrl },
    difference: n ? d.reduce((s, v) => s + v, 0) / n : NaN,
    p: test && !Number.isNaN(test.p) ? test.p : null,
    descriptive,
  };
}
