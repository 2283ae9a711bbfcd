// Polysemanticity calibrated against chance. A neuron is polysemantic when its strongly activating images form two
// groups that are each more coherent in WordNet than chance and far apart from each other, and that is more than a
// shuffled labelling of the same activations would give.
//
// Strong images: the `top` images with the highest spatial-mean activation (default 1 % of the reference set, at
// least 10 and at most 50: ~10 images per class-sized concept at N ≈ 1000, ~30 at N ≈ 3100). A fixed count rather
// than a percentile threshold keeps the strong set the same size for every channel, which the null below relies on.
// Ties at the cut are broken by a seeded random order of the images, never by index: reference folders are sorted
// by class, so index order would hand a flat channel a set of neighbouring, same-class images. A channel whose cut
// reaches its minimum (dead, or with fewer than `top` images above its floor) has no strong set that its activations
// decide; it is reported with score, p and q null.
//
// Groups: every WordNet synset below the near-root levels (minimum depth > farDepth; entity is depth 0) that holds a
// strong image's class, and every class itself (two classes, street sign and cliff, sit at depth 4). A group's
// coherence is its enrichment among the strong images against the reference set's class mix,
//
//     enrichment_v = −log10 P(X ≥ m_v)        X ~ Hypergeometric(N, K_v, top)
//
// with m_v the strong images under v and K_v the reference images under v: a hypergeometric tail, because it is
// exactly the chance of at least m_v when `top` images are drawn without replacement. A group needs minGroup (3)
// images. Two images of one class are what chance hands out: with ~3 images per class, a random strong set of 30
// out of 3000 holds a same-class pair 26 % of the time, and such a pair (K = 3, m = 2) already has enrichment 3.5,
// so among ~1000 classes and ~800 synsets a pair of pairs scores like a real concept. In simulation (N ≈ 2000,
// top 20) minGroup 2 found a planted dogs-and-vehicles neuron at 2 of 7 strengths, minGroup 3 at 6 of 7, both
// calibrated. A concept that spans one class can then be found only when the reference set has ≥ 3 of its images.
//
// Far apart: two groups are far when every common ancestor has depth ≤ farDepth (default 4: entity, physical
// entity, object, whole, artifact/living thing) and no class lies under both (WordNet has multiple parents: without
// this a single class under two distant hypernyms would look like two groups). So animals vs vehicles (whole),
// dogs vs clothing, devices vs clothing (artifact) are far; devices vs containers (instrumentality, depth 5) or
// animals vs plants (organism, depth 5) are not — siblings under a mid-level synset are one broad concept.
//
//     score = max over far pairs (a, b) of min(enrichment_a, enrichment_b)
//
// the evidence for the weaker of the two best far-apart groups; 0 when there is no far pair of groups. One coherent
// group (all dogs) scores 0 or little — its images share deep ancestors, and whatever else lands in the strong set is
// not enriched; a random mix scores what the null scores. (A share-based score such as polysemantic.ts's, 1 − the
// largest coarse group's share, rates random classes 0.57 because the ImageNet mix itself spreads over coarse groups.)
//
// Null: keep the activations, shuffle which class each image has. With the strong set fixed by the activations (and
// label-independent tie-breaking), a shuffled label vector puts on a channel's `top` strong positions a uniformly
// random `top`-subset of the label multiset, whichever channel it is. The null distribution of the score is therefore
// the same for every channel of the layer: one sample of B shuffles (each a partial Fisher–Yates over the labels,
// giving the labels at `top` positions) serves all channels. This is the "one shuffled label vector per permutation,
// applied to all channels" design, with the per-channel work reduced to a binary search, so cost does not grow with
// the channel count and B can be large:
//
//     p_c = (1 + #{b : T_b ≥ T_c}) / (B + 1)
//
// (the +1 counts the observed labelling among the permutations, so p is never 0 and stays valid for finite B;
// Phipson & Smyth 2010), then Benjamini–Hochberg across the layer's testable channels (statistics/fdr.ts), and
// polysemantic = q ≤ fdr. No separate minimum score: the score is itself an evidence measure whose chance level the
// permutation supplies, and the structural requirement — two far groups of ≥ minGroup images — is built in (score 0
// gives p = 1).
//
// Resolution: the smallest attainable p is 1/(B + 1). For BH to call even one channel of m significant at level q,
// its p must be ≤ q/m, so B + 1 ≥ m/q: 25 600 for m = 1280 channels at q = 0.05. The default B = 99 999 (smallest
// p = 1e-5) covers m ≤ 5000 at q = 0.05. The scores are exact table look-ups, so equal scores compare equal and ties
// count against significance. Cost: about 1 s per layer on one core (1280 channels × 3000 images, B = 99 999),
// nearly all of it the null, which does not grow with the channel count. Same seed and inputs, byte-identical output.
import { createRng } from '../random.ts';
import { ancestors, synsetName } from './class-groups.ts';
import hierarchy from './imagenet-hierarchy.json' with { type: 'json' };
import { benjaminiHochberg, significant } from './statistics/fdr.ts';

export interface PolysemanticGroup {
  wnid: string;
  name: string;
  /** strong images under this synset */
  images: number;
  /** top · K_v / N: strong images expected under it by chance */
  expected: number;
  /** −log10 of the hypergeometric chance of at least `images` */
  enrichment: number;
  /** distinct classes of those images, strongest first */
  classes: string[];
}

export interface CalibratedPolysemanticNeuron {
  channel: number;
  /** min enrichment of the best far-apart pair of groups; 0 without one; null when untestable */
  score: number | null;
  /** permutation p; null when untestable */
  p: number | null;
  /** Benjamini–Hochberg q across the layer's testable channels */
  q: number | null;
  polysemantic: boolean;
  /** activation of the weakest strong image; null when untestable */
  threshold: number | null;
  /** reference image indices [top], strongest first; empty when untestable */
  strong: number[];
  /**
   * the best far-apart pair, then further groups far from all listed whose own tail is ≤ 0.05; without a far pair,
   * the most enriched group alone (what a monosemantic neuron is about). Descriptive: the claim is p and q.
   */
  groups: PolysemanticGroup[];
}

export interface CalibratedLayerPolysemanticity {
  /** reference images */
  n: number;
  channels: number;
  /** strong images per channel */
  top: number;
  fdr: number;
  /** label shuffles in the null (B) */
  permutations: number;
  /** 1/(B + 1) */
  smallest_p: number;
  /** groups are far apart when their deepest common ancestor has at most this depth */
  far_depth: number;
  min_group: number;
  /** channels with a strong set their activations decide */
  testable: number;
  /** polysemantic channels */
  count: number;
  /** one per channel, in channel order */
  neurons: CalibratedPolysemanticNeuron[];
}

export interface CalibratedPolysemanticityOptions {
  channels: number;
  values: ArrayLike<number>; // [N,C] spatial means over the reference set
  labels: readonly number[]; // [N] class index per image
  classes: readonly { wnid: string; name: string }[]; // [K]
  seed: number;
  /** strong images per channel; default clamp(round(N / 100), 10, 50) */
  top?: number;
  fdr?: number;
  permutations?: number;
  farDepth?: number;
  minGroup?: number;
  /** most groups listed per channel */
  maxGroups?: number;
}

export const DEFAULT_PERMUTATIONS = 99_999;
export const DEFAULT_FAR_DEPTH = 4;
export const DEFAULT_MIN_GROUP = 3;
const LISTED_TAIL = -Math.log10(0.05);

export function defaultTop(n: number): number {
  return Math.min(50, Math.max(10, Math.round(n / 100)));
}

interface Hierarchy {
  parents: Record<string, string[]>;
}
const PARENTS = (hierarchy as Hierarchy).parents;

let depthCache: Map<string, number> | undefined;
/** Minimum number of hypernym edges from each synset up to a root. */
function minDepths(): Map<string, number> {
  if (depthCache) return depthCache;
  const children = new Map<string, string[]>();
  const all = new Set<string>();
  for (const [w, ps] of Object.entries(PARENTS)) {
    all.add(w);
    for (const p of ps) {
      all.add(p);
      if (!children.has(p)) children.set(p, []);
      children.get(p)!.push(w);
    }
  }
  const depth = new Map<string, number>();
  const queue = [...all].filter((w) => !(PARENTS[w]?.length)).sort();
  for (const r of queue) depth.set(r, 0);
  for (let h = 0; h < queue.length; h++) {
    const w = queue[h];
    for (const c of children.get(w) ?? []) {
      if (!depth.has(c)) {
        depth.set(c, depth.get(w)! + 1);
        queue.push(c);
      }
    }
  }
  depthCache = depth;
  return depth;
}

/**
 * The WordNet groups of a labelled reference set and the score of any set of strong images' labels. Built once per
 * layer call (it depends on the labels and `top`, not on the activations).
 */
export class WordnetGroups {
  readonly n: number;
  readonly top: number;
  readonly farDepth: number;
  readonly minGroup: number;
  /** group synsets, local index → wnid */
  readonly nodes: string[];
  /** per class: local indices of its groups [K][...] */
  private readonly classNodes: Int32Array[];
  /** enrichment table [nodes, top + 1] */
  private readonly enrichment: Float64Array;
  /** reference images under each node [nodes] */
  private readonly under: Int32Array;
  /** deep ancestors (the node included) as bitsets over nodes [nodes, words] */
  private readonly deep: Uint32Array;
  private readonly deepWords: number;
  /** classes under each node as bitsets over classes [nodes, words] */
  private readonly classBits: Uint32Array;
  private readonly classWords: number;
  private readonly local: Map<string, number>;
  /** 0 unknown, 1 far, 2 not far [nodes²] */
  private readonly farCache: Uint8Array;
  private readonly count: Int32Array;
  private readonly touched: Int32Array;
  private readonly candidates: Int32Array;
  private readonly candidateScore: Float64Array;

  constructor(opts: { labels: readonly number[]; classes: readonly { wnid: string }[]; top: number; farDepth?: number; minGroup?: number }) {
    const { labels, classes, top } = opts;
    this.farDepth = opts.farDepth ?? DEFAULT_FAR_DEPTH;
    this.minGroup = opts.minGroup ?? DEFAULT_MIN_GROUP;
    this.n = labels.length;
    this.top = top;
    if (!Number.isInteger(top) || top < 2) throw new RangeError(`top must be an integer ≥ 2, got ${top}`);
    if (top >= this.n) throw new RangeError(`top (${top}) must be below the number of reference images (${this.n})`);
    if (!Number.isInteger(this.minGroup) || this.minGroup < 1) throw new RangeError(`minGroup must be a positive integer, got ${this.minGroup}`);
    const depth = minDepths();
    const local = new Map<string, number>();
    this.local = local;
    this.nodes = [];
    const id = (w: string) => {
      let i = local.get(w);
      if (i === undefined) {
        i = this.nodes.length;
        local.set(w, i);
        this.nodes.push(w);
      }
      return i;
    };
    const isDeep = (w: string) => (depth.get(w) ?? 0) > this.farDepth;
    this.classNodes = classes.map((c) => Int32Array.from(ancestors(c.wnid).filter((w, j) => j === 0 || isDeep(w)), id));
    const m = this.nodes.length;

    this.deepWords = Math.ceil(m / 32);
    this.deep = new Uint32Array(m * this.deepWords);
    for (let v = 0; v < m; v++) {
      // A group's deep ancestors are deep ancestors of its classes, so all of them have local indices.
      for (const w of ancestors(this.nodes[v])) {
        if (w !== this.nodes[v] && !isDeep(w)) continue;
        const u = local.get(w)!;
        this.deep[v * this.deepWords + (u >>> 5)] |= 1 << (u & 31);
      }
    }
    this.classWords = Math.ceil(classes.length / 32);
    this.classBits = new Uint32Array(m * this.classWords);
    this.classNodes.forEach((vs, k) => { for (const v of vs) this.classBits[v * this.classWords + (k >>> 5)] |= 1 << (k & 31); });

    const perClass = new Int32Array(classes.length);
    for (const k of labels) {
      if (!(Number.isInteger(k) && k >= 0 && k < classes.length)) throw new RangeError(`label ${k} is not a class index (0–${classes.length - 1})`);
      perClass[k]++;
    }
    this.under = new Int32Array(m);
    this.classNodes.forEach((vs, k) => { for (const v of vs) this.under[v] += perClass[k]; });

    const logFact = new Float64Array(this.n + 1);
    for (let i = 2; i <= this.n; i++) logFact[i] = logFact[i - 1] + Math.log(i);
    const logChoose = (a: number, b: number) => logFact[a] - logFact[b] - logFact[a - b];
    const stride = top + 1;
    this.enrichment = new Float64Array(m * stride);
    const logTotal = logChoose(this.n, top);
    const terms = new Float64Array(top + 1);
    for (let v = 0; v < m; v++) {
      const K = this.under[v];
      const lo = Math.max(0, top - (this.n - K));
      const hi = Math.min(top, K);
      for (let x = lo; x <= hi; x++) terms[x] = logChoose(K, x) + logChoose(this.n - K, top - x) - logTotal;
      // Upper tails summed from the far end, in log space (log-sum-exp), so deep tails keep their digits.
      let tail = -Infinity;
      for (let x = top; x >= 0; x--) {
        if (x >= lo && x <= hi) {
          const a = Math.max(tail, terms[x]);
          tail = a + Math.log(Math.exp(tail - a) + Math.exp(terms[x] - a));
        }
        // P(X ≥ x) ≤ 1; rounding must not make it a negative enrichment.
        this.enrichment[v * stride + x] = x > hi ? Infinity : Math.max(0, -tail / Math.LN10);
      }
    }
    this.farCache = new Uint8Array(m * m);
    this.count = new Int32Array(m);
    this.touched = new Int32Array(m);
    this.candidates = new Int32Array(m);
    this.candidateScore = new Float64Array(m);
  }

  /** Whether two groups are far apart: no common ancestor deeper than farDepth and no class under both. */
  far(a: number, b: number): boolean {
    const m = this.nodes.length;
    const cached = this.farCache[a * m + b];
    if (cached) return cached === 1;
    let far = true;
    for (let w = 0; w < this.deepWords && far; w++) if (this.deep[a * this.deepWords + w] & this.deep[b * this.deepWords + w]) far = false;
    for (let w = 0; w < this.classWords && far; w++) if (this.classBits[a * this.classWords + w] & this.classBits[b * this.classWords + w]) far = false;
    this.farCache[a * m + b] = this.farCache[b * m + a] = far ? 1 : 2;
    return far;
  }

  /** far() by synset id; throws for a synset that is not a group of these classes. */
  farApart(a: string, b: string): boolean {
    const ia = this.local.get(a);
    const ib = this.local.get(b);
    if (ia === undefined || ib === undefined) throw new RangeError(`${ia === undefined ? a : b} is not a group synset here`);
    return this.far(ia, ib);
  }

  /** Groups holding ≥ minGroup of the strong images, most enriched first (ties: lower node index). */
  private collect(strong: ArrayLike<number>): number {
    if (strong.length !== this.top) throw new RangeError(`expected ${this.top} strong images' labels, got ${strong.length}`);
    const { count, touched, candidates, candidateScore } = this;
    const stride = this.top + 1;
    let nt = 0;
    for (let i = 0; i < strong.length; i++) {
      const vs = this.classNodes[strong[i]];
      for (let j = 0; j < vs.length; j++) if (count[vs[j]]++ === 0) touched[nt++] = vs[j];
    }
    let nc = 0;
    for (let t = 0; t < nt; t++) {
      const v = touched[t];
      if (count[v] < this.minGroup) continue;
      const e = this.enrichment[v * stride + count[v]];
      // Insertion sort: a few dozen candidates at most.
      let j = nc++;
      while (j > 0 && (candidateScore[j - 1] < e || (candidateScore[j - 1] === e && candidates[j - 1] > v))) {
        candidates[j] = candidates[j - 1];
        candidateScore[j] = candidateScore[j - 1];
        j--;
      }
      candidates[j] = v;
      candidateScore[j] = e;
    }
    return nc;
  }

  private reset(strong: ArrayLike<number>): void {
    for (let i = 0; i < strong.length; i++) {
      const vs = this.classNodes[strong[i]];
      for (let j = 0; j < vs.length; j++) this.count[vs[j]] = 0;
    }
  }

  /** Indices (into the sorted candidates) of the best far pair, or null. */
  private bestPair(nc: number): [number, number] | null {
    // Sorted by enrichment, the first candidate with a far partner before it is the weaker member of the best pair.
    for (let i = 1; i < nc; i++) for (let j = 0; j < i; j++) if (this.far(this.candidates[j], this.candidates[i])) return [j, i];
    return null;
  }

  /** The score of strong images with these class labels [top]. */
  score(strong: ArrayLike<number>): number {
    const nc = this.collect(strong);
    const pair = this.bestPair(nc);
    const s = pair ? this.candidateScore[pair[1]] : 0;
    this.reset(strong);
    return s;
  }

  /** The score and the groups listed for strong images with these labels [top], strongest image first. */
  describe(strong: ArrayLike<number>, classes: readonly { name: string }[], maxGroups = 4): { score: number; groups: PolysemanticGroup[] } {
    const nc = this.collect(strong);
    const pair = this.bestPair(nc);
    const chosen: number[] = [];
    if (pair) {
      chosen.push(pair[0], pair[1]);
      for (let i = 0; i < nc && chosen.length < maxGroups; i++) {
        if (chosen.includes(i) || this.candidateScore[i] < LISTED_TAIL) continue;
        if (chosen.every((j) => this.far(this.candidates[j], this.candidates[i]))) chosen.push(i);
      }
    } else if (nc > 0 && maxGroups > 0) {
      chosen.push(0);
    }
    const groups = chosen.map((i): PolysemanticGroup => {
      const v = this.candidates[i];
      const names: string[] = [];
      for (let s = 0; s < strong.length; s++) {
        if (this.classNodes[strong[s]].includes(v) && !names.includes(classes[strong[s]].name)) names.push(classes[strong[s]].name);
      }
      return {
        wnid: this.nodes[v],
        name: synsetName(this.nodes[v]),
        images: this.count[v],
        expected: (this.top * this.under[v]) / this.n,
        enrichment: this.candidateScore[i],
        classes: names,
      };
    });
    const score = pair ? this.candidateScore[pair[1]] : 0;
    this.reset(strong);
    return { score, groups };
  }
}

/** Calibrated polysemanticity of every channel of one layer. */
export function calibratedPolysemanticity(opts: CalibratedPolysemanticityOptions): CalibratedLayerPolysemanticity {
  const { channels, values, labels, classes } = opts;
  const n = labels.length;
  const fdr = opts.fdr ?? 0.05;
  const permutations = opts.permutations ?? DEFAULT_PERMUTATIONS;
  const top = opts.top ?? defaultTop(n);
  if (!Number.isInteger(channels) || channels < 1) throw new RangeError(`channels must be a positive integer, got ${channels}`);
  if (values.length !== n * channels) throw new RangeError(`${values.length} values are not ${n} images × ${channels} channels`);
  if (!(fdr > 0 && fdr < 1)) throw new RangeError(`fdr must be in (0, 1), got ${fdr}`);
  if (!Number.isInteger(permutations) || permutations < 1) throw new RangeError(`permutations must be a positive integer, got ${permutations}`);
  const index = new WordnetGroups({ labels, classes, top, farDepth: opts.farDepth, minGroup: opts.minGroup });

  const rng = createRng(opts.seed);
  const priority = new Int32Array(n);
  {
    const ties = rng.fork('ties');
    for (let i = 0; i < n; i++) priority[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = ties.uniformInt(0, i);
      const t = priority[i];
      priority[i] = priority[j];
      priority[j] = t;
    }
  }

  const nullScores = new Float64Array(permutations);
  {
    const shuffle = rng.fork('permutations');
    const pool = Int32Array.from(labels);
    const drawn = pool.subarray(0, top);
    for (let b = 0; b < permutations; b++) {
      for (let j = 0; j < top; j++) {
        const r = shuffle.uniformInt(j, n - 1);
        const t = pool[j];
        pool[j] = pool[r];
        pool[r] = t;
      }
      nullScores[b] = index.score(drawn);
    }
    nullScores.sort();
  }
  const pValue = (t: number) => {
    let lo = 0;
    let hi = permutations;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (nullScores[mid] < t) lo = mid + 1;
      else hi = mid;
    }
    return (1 + permutations - lo) / (permutations + 1);
  };

  const heap = new Int32Array(top);
  const strongLabels = new Int32Array(top);
  const scores = new Float64Array(channels).fill(NaN);
  const p = new Float64Array(channels).fill(NaN);
  const described: { threshold: number; strong: number[]; groups: PolysemanticGroup[] }[] = [];
  const maxGroups = opts.maxGroups ?? 4;
  for (let c = 0; c < channels; c++) {
    const strong = topImages(values, channels, c, n, top, priority, heap);
    if (!strong) {
      described.push({ threshold: NaN, strong: [], groups: [] });
      continue;
    }
    for (let s = 0; s < top; s++) strongLabels[s] = labels[strong[s]];
    const d = index.describe(strongLabels, classes, maxGroups);
    scores[c] = d.score;
    p[c] = pValue(d.score);
    described.push({ threshold: values[strong[top - 1] * channels + c], strong, groups: d.groups });
  }
  const q = benjaminiHochberg(p);
  const orNull = (v: number) => (Number.isNaN(v) ? null : v);
  const neurons: CalibratedPolysemanticNeuron[] = described.map((d, c) => ({
    channel: c,
    score: orNull(scores[c]),
    p: orNull(p[c]),
    q: orNull(q[c]),
    polysemantic: significant(q[c], fdr) && scores[c] > 0,
    threshold: orNull(d.threshold),
    strong: d.strong,
    groups: d.groups,
  }));
  return {
    n,
    channels,
    top,
    fdr,
    permutations,
    smallest_p: 1 / (permutations + 1),
    far_depth: index.farDepth,
    min_group: index.minGroup,
    testable: neurons.filter((x) => x.p !== null).length,
    count: neurons.filter((x) => x.polysemantic).length,
    neurons,
  };
}

/**
 * The `top` images of channel c, strongest first, ties by `priority`; null when the cut reaches the channel's
 * minimum (no strong set its activations decide) or the channel has a NaN.
 */
function topImages(values: ArrayLike<number>, channels: number, c: number, n: number, top: number, priority: Int32Array, heap: Int32Array): number[] | null {
  // A min-heap of the best `top` so far; "a below b" = lower value, or equal value and later in priority.
  const below = (a: number, b: number) => {
    const va = values[a * channels + c];
    const vb = values[b * channels + c];
    return va < vb || (va === vb && priority[a] > priority[b]);
  };
  const siftDown = (size: number) => {
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < size && below(heap[l], heap[m])) m = l;
      if (r < size && below(heap[r], heap[m])) m = r;
      if (m === i) return;
      const t = heap[i];
      heap[i] = heap[m];
      heap[m] = t;
      i = m;
    }
  };
  let min = Infinity;
  let size = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i * channels + c];
    if (Number.isNaN(v)) return null;
    if (v < min) min = v;
    if (size < top) {
      let j = size++;
      heap[j] = i;
      while (j > 0) {
        const parent = (j - 1) >> 1;
        if (!below(heap[j], heap[parent])) break;
        const t = heap[j];
        heap[j] = heap[parent];
        heap[parent] = t;
        j = parent;
      }
    } else if (below(heap[0], i)) {
      heap[0] = i;
      siftDown(size);
    }
  }
  if (values[heap[0] * channels + c] <= min) return null;
  return Array.from(heap).sort((a, b) => (below(a, b) ? 1 : below(b, a) ? -1 : 0));
}
