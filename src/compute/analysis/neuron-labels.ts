// What each neuron detects, named from the reference set: the WordNet synset whose photographs the neuron ranks
// highest against all the others, in the spirit of label-free dissection methods that score concepts by how well a
// unit separates them. Candidates are every synset at or above the reference photos' ImageNet classes (the 1000 leaves
// and their hypernyms: "dog", "mustelid", "wheeled vehicle") with at least `minImages` photos inside and outside it.
//
// Score: for channel c and synset g with n1 member photos among N, the Mann–Whitney U from the midranks of the
// channel's spatial means (selectivity.ts), and its AUROC = U / (n1 n2). The label is the synset of largest lower
// bound
//
//     L_c,g = (U − 1.96 σ) / (n1 n2),   σ² = n1 n2 / 12 · [(N + 1) − Σ_t (t³ − t) / (N (N − 1))],
//
// the AUROC less 1.96 of its standard errors under random membership (tie-corrected). Ranking by AUROC alone would
// crown 5-photo classes ranked high by luck; ranking by z = (U − n1 n2 / 2) / σ crowns the largest synsets ("artifact"
// against "living thing": on the article's 3100 photos it labelled 147 of 576 middle-layer neurons "artifact"),
// since z grows with √n1 at any fixed AUROC. The lower bound asks for a separation both strong and well supported.
// The label is reported with its AUROC, z and n1. One-sided: a label says what the neuron fires for, not what
// silences it.
//
// Null: shuffle which photo has which class (the activations and the hierarchy stay), within each stratum when given
// (the reference set's source folders: a neuron that prefers one source's photos would otherwise "detect" the classes
// that source over-represents), take the best L over all synsets again, B times; the same shuffles serve every
// channel. p_c = (1 + #{b : max L_b,c ≥ max L_c}) / (B + 1),
// with Besag–Clifford stopping (a channel stops once h shuffles reached its own score: p = h / L), then
// Benjamini–Hochberg across the layer. The max over synsets is inside the null, so choosing the best of ~1000
// synsets is paid for. A channel is labelled when q ≤ fdr. Labels can only be object categories of ImageNet's
// WordNet tree (no colours, textures or parts), and in early layers, whose channels respond to edges and colours,
// the best synset describes which photos happen to contain them rather than what the channel detects.
import type { Rng } from '../random.ts';
import { columnMidranks } from './selectivity.ts';
import { ancestors, synsetName } from './class-groups.ts';
import { benjaminiHochberg } from './statistics/fdr.ts';

export const DEFAULT_LABEL_PERMUTATIONS = 999;
export const DEFAULT_LABEL_MIN_IMAGES = 5;
/** The standard normal's 97.5 % quantile: the label's score is its AUROC less this many standard errors. */
const Z_975 = 1.959963984540054;
/** Shuffles that reach a channel's own score before its p is settled (Besag & Clifford 1991). */
const EXCEEDANCES = 20;

export interface Concept {
  wnid: string;
  name: string;
  /** reference photos inside it */
  n: number;
}

export interface NeuronLabel {
  /** the best-separated synset; null for a constant channel */
  wnid: string | null;
  name: string | null;
  /** its photos among the reference set */
  n: number;
  auroc: number;
  z: number;
  /** shuffled-label p of the best z, and its BH q across the layer */
  p: number;
  q: number;
  /** q ≤ fdr */
  labelled: boolean;
}

export interface NeuronLabelsOptions {
  /** spatial means [N,C] of the reference photos */
  values: ArrayLike<number>;
  channels: number;
  /** each photo's ImageNet class WordNet id [N] */
  photoWnids: readonly string[];
  rng: Rng;
  /** each photo's stratum [N] (its source folder); labels are shuffled only within a stratum */
  strata?: ArrayLike<number>;
  minImages?: number;
  permutations?: number;
  fdr?: number;
}

export interface NeuronLabels {
  /** the candidate synsets, in the order the labels index them */
  concepts: Concept[];
  permutations: number;
  min_images: number;
  fdr: number;
  labels: NeuronLabel[];
}

/** Candidate synsets and, per photo, the indices of the candidates that contain it. */
export function candidateConcepts(photoWnids: readonly string[], minImages: number): { concepts: Concept[]; ofPhoto: Int32Array[] } {
  const n = photoWnids.length;
  const above = new Map<string, string[]>();
  for (const w of new Set(photoWnids)) above.set(w, ancestors(w));
  const counts = new Map<string, number>();
  for (const w of photoWnids) for (const a of above.get(w)!) counts.set(a, (counts.get(a) ?? 0) + 1);
  // Sorted by id, so the order (and the winner of an exact tie in z) never depends on the photos' order.
  const kept = [...counts].filter(([, k]) => k >= minImages && n - k >= minImages).map(([w]) => w).sort();
  const index = new Map(kept.map((w, g) => [w, g]));
  const concepts = kept.map((w) => ({ wnid: w, name: synsetName(w), n: counts.get(w)! }));
  const ofClass = new Map([...above].map(([w, list]) => [w, Int32Array.from(list.filter((a) => index.has(a)).map((a) => index.get(a)!))]));
  return { concepts, ofPhoto: photoWnids.map((w) => ofClass.get(w)!) };
}

export function labelNeurons(opts: NeuronLabelsOptions): NeuronLabels {
  const { values, channels, photoWnids, rng } = opts;
  const minImages = opts.minImages ?? DEFAULT_LABEL_MIN_IMAGES;
  const B = opts.permutations ?? DEFAULT_LABEL_PERMUTATIONS;
  const fdr = opts.fdr ?? 0.05;
  const n = photoWnids.length;
  if (values.length !== n * channels) throw new RangeError(`values hold ${values.length / channels} photos, labels ${n}`);
  const { concepts, ofPhoto } = candidateConcepts(photoWnids, minImages);
  const G = concepts.length;
  const { ranks, ties } = columnMidranks(values, channels);
  const sizes = Float64Array.from(concepts, (c) => c.n);
  const sums = new Float64Array(G);
  // Photos of one class share their synsets, so a shuffle's rank sums are taken per class first and then spread to
  // the class's synsets: a few thousand additions per channel and shuffle instead of one per photo and synset. The
  // ranks are read channel by channel, contiguously. Midranks are halves below n, so every sum is exact in any order.
  const classIds = new Map<Int32Array, number>();
  const classOf = Int32Array.from(ofPhoto, (gs) => classIds.get(gs) ?? classIds.set(gs, classIds.size).get(gs)!);
  const synsetsOf = [...classIds.keys()];
  const classSums = new Float64Array(synsetsOf.length);
  const byChannel = new Float64Array(n * channels);
  for (let i = 0; i < n; i++) for (let c = 0; c < channels; c++) byChannel[c * n + i] = ranks[i * channels + c];

  // What the lower bound subtracts and divides by depends on the synset and the channel's ties, not on the shuffle.
  const offsets = Float64Array.from(sizes, (n1) => n1 * (n1 + 1) / 2);
  const products = Float64Array.from(sizes, (n1) => n1 * (n - n1));
  const margins = new Map<number, Float64Array>();
  const marginOf = (c: number): Float64Array => {
    let m = margins.get(c);
    if (!m) {
      const tieTerm = (n + 1) - ties[c] / (n * (n - 1));
      // Z · sd of the rank sum; 0 (skipped) where sd is not positive.
      m = Float64Array.from(sizes, (n1) => {
        const sd = Math.sqrt((n1 * (n - n1) / 12) * tieTerm);
        return sd > 0 ? Z_975 * sd : 0;
      });
      margins.set(c, m);
    }
    return m;
  };

  /** Best lower bound over the synsets for channel c, photo i counted in class `classOfPhoto[i]` (its own or a shuffle's). */
  const best = (c: number, classOfPhoto: Int32Array): { g: number; score: number } => {
    classSums.fill(0);
    const base = c * n;
    for (let i = 0; i < n; i++) classSums[classOfPhoto[i]] += byChannel[base + i];
    sums.fill(0);
    for (let u = 0; u < synsetsOf.length; u++) {
      const r = classSums[u];
      if (r === 0) continue;
      const gs = synsetsOf[u];
      for (let k = 0; k < gs.length; k++) sums[gs[k]] += r;
    }
    const marginOfSynset = marginOf(c);
    let g = -1;
    let score = -Infinity;
    for (let k = 0; k < G; k++) {
      const margin = marginOfSynset[k];
      if (!(margin > 0)) continue;
      const lower = (sums[k] - offsets[k] - margin) / products[k];
      if (lower > score) { score = lower; g = k; }
    }
    return { g, score };
  };

  const observed = Array.from({ length: channels }, (_, c) => best(c, classOf));
  const exceed = new Int32Array(channels);
  const drawn = new Int32Array(channels);
  const open = new Set([...Array(channels).keys()].filter((c) => observed[c].g >= 0));
  const perm = Int32Array.from({ length: n }, (_, i) => i);
  // The shuffle's class of each photo, looked up once per shuffle rather than once per channel.
  const shuffled = new Int32Array(n);
  // Photo positions of each stratum; a shuffle permutes the photos of a stratum among themselves.
  const groups = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const k = opts.strata ? opts.strata[i] : 0;
    (groups.get(k) ?? groups.set(k, []).get(k)!).push(i);
  }
  for (let b = 0; b < B && open.size > 0; b++) {
    // Fisher–Yates within each stratum: photo i takes the classes of photo perm[i].
    for (const rows of groups.values()) {
      for (let a = rows.length - 1; a > 0; a--) {
        const j = rows[rng.uniformInt(0, a)];
        const t = perm[rows[a]];
        perm[rows[a]] = perm[j];
        perm[j] = t;
      }
    }
    for (let i = 0; i < n; i++) shuffled[i] = classOf[perm[i]];
    for (const c of open) {
      drawn[c]++;
      if (best(c, shuffled).score >= observed[c].score) exceed[c]++;
      if (exceed[c] >= EXCEEDANCES) open.delete(c);
    }
  }
  const p = Float64Array.from({ length: channels }, (_, c) => {
    if (observed[c].g < 0) return 1;
    return exceed[c] >= EXCEEDANCES ? exceed[c] / drawn[c] : (1 + exceed[c]) / (drawn[c] + 1);
  });
  const q = benjaminiHochberg(p);
  const labels = observed.map(({ g, score }, c): NeuronLabel => {
    if (g < 0) return { wnid: null, name: null, n: 0, auroc: 0.5, z: 0, p: 1, q: 1, labelled: false };
    const n1 = sizes[g];
    const n2 = n - n1;
    // U from the score: the rank sums are not kept per channel.
    const sd = Math.sqrt((n1 * n2 / 12) * ((n + 1) - ties[c] / (n * (n - 1))));
    const u = score * n1 * n2 + Z_975 * sd;
    return { wnid: concepts[g].wnid, name: concepts[g].name, n: n1, auroc: u / (n1 * n2), z: (u - n1 * n2 / 2) / sd, p: p[c], q: q[c], labelled: q[c] <= fdr };
  });
  return { concepts, permutations: B, min_images: minImages, fdr, labels };
}
