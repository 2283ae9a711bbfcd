// Activation patching: does the attack work through a given set of channels? For one layer and a set S of its
// channels,
//
//   restore: run the adversarial image with the clean activations of S put back. If the attack acts through S, the
//            clean class comes back: recovery = (p_c(restored) − p_c(adv)) / (p_c(clean) − p_c(adv)).
//   inject:  run the clean image with the adversarial activations of S put in. If S carries the attack, the clean
//            class falls: drop = (p_c(clean) − p_c(injected)) / (p_c(clean) − p_c(adv)).
//
// Both are fractions of the attack's own effect, so 0 means S changes nothing and 1 means S alone is the whole attack
// at this layer. S = every channel gives exactly 1 when the layer is a cut of the network (the downstream network
// then sees only the clean, resp. adversarial, activations); inside a residual block the skip connection carries the
// unpatched image around the layer and even the whole layer undoes only part of the attack (`cut: false`). Restore asks whether S is necessary given the rest of the adversarial layer, inject whether it is
// sufficient; the two differ when channels act together (a nonlinear head), which is why both are measured.
//
// S is chosen three ways for k = 1, 2, 4, … C: the top k of a ranking (e.g. by fragility effect), k channels drawn at
// random (the baseline a ranking must beat), and the k channels most active on the clean image (the baseline that
// says "big channels matter", which a fragility ranking must also beat to mean anything beyond size).
//
// Means are over images with percentile-bootstrap intervals over images. Random draws are averaged per image first:
// the draws estimate one number per image (its expected effect under a random S), and the images are the sample the
// interval is about. An image whose clean-class probability the attack lowered by less than `minGap` has a fraction
// of 0/0 in the making, so it is left out of the fractions (and its raw probabilities kept); each point says its n.
//
// A batch runs once through the whole patched graph (onnx/patch-graph.ts) with an all-zero mask, which captures the
// layer and what the rest of the network reads from before it; every probability compared — unpatched and each patch,
// the mask and injected tensor fed at run time — then comes from one session of the network after the layer
// (tailGraph). One set of kernels is what makes k = C reproduce the clean probabilities to float32 precision rather
// than to the agreement between two differently fused graphs; starting at the layer makes a patch of a late layer
// cost its last blocks, not the model.
import { Graph } from '../onnx/graph.ts';
import { findLayer, type Layer } from '../onnx/layers.ts';
import { isCut, PATCH_INJECTED, PATCH_LOGITS, PATCH_MASK, patchGraph, tailGraph } from '../onnx/patch-graph.ts';
import { PIXELS } from '../onnx/normalize.ts';
import type { Classifier } from '../model/classifier.ts';
import type { DifferentiableModel } from '../model/differentiable-model.ts';
import { softmax } from '../model/predictions.ts';
import { createRng, type Rng } from '../random.ts';
import { PROBE_BATCH } from '../runtime/probe.ts';
import { floatTensor, type FloatArray } from '../runtime/program.ts';
import { createSession, type ort } from '../runtime/session.ts';
import { bootstrapMean } from './statistics/bootstrap.ts';
import type { InjectPoint, PatchedImage, PatchingInterval, PatchingResult, RestorePoint } from './patching-output.ts';

/** One batch through the whole patched graph, unpatched: what the tail graph needs to continue it. */
export interface Capture {
  /** [N,K] */
  logits: FloatArray;
  /** the layer's activation [N,C,H,W] */
  activation: FloatArray;
  /** the tensors the network after the layer reads from before it (onnx/patch-graph.ts, tailGraph) */
  frontier: Record<string, ort.Tensor>;
}

/**
 * A model whose layer can be patched: one session of the whole graph with the patch (captures, and patches of
 * pixels), and one of the network after the layer, which continues a capture with a patch without recomputing
 * everything before the layer.
 */
export class PatchedLayer {
  readonly layer: Layer;
  readonly channels: number;
  /** [H,W]; [] for a [N,C] layer */
  readonly spatial: number[];
  /** values per image of the layer: C·H·W */
  readonly size: number;
  /** every path from the pixels to the logits passes through the layer (no skip connection around it) */
  readonly cut: boolean;
  private readonly session: ort.InferenceSession;
  private readonly tail: ort.InferenceSession;
  /** the tensors the network after the layer reads from before it: the layer's, and a skip connection's input */
  readonly frontier: readonly string[];
  private readonly model: DifferentiableModel;

  private constructor(model: DifferentiableModel, layer: Layer, sessions: { whole: ort.InferenceSession; tail: ort.InferenceSession; frontier: readonly string[] }, cut: boolean) {
    this.model = model;
    this.layer = layer;
    this.session = sessions.whole;
    this.tail = sessions.tail;
    this.frontier = sessions.frontier;
    this.cut = cut;
    this.channels = layer.dims[1];
    this.spatial = layer.dims.slice(2);
    this.size = layer.dims.slice(1).reduce((a, b) => a * b, 1);
  }

  /** `layer`: a name of the layer inventory (or a tensor name). */
  static async compile(model: DifferentiableModel, layer: string): Promise<PatchedLayer> {
    const found = findLayer(model.layers, layer);
    const { prepared } = model;
    const graph = Graph.decode(prepared.bytes);
    const cut = isCut(graph, PIXELS, found.tensor, prepared.logits);
    patchGraph(graph, { tensor: found.tensor, logits: prepared.logits, dims: found.dims, floatType: prepared.floatType });
    const tail = Graph.decode(graph.encode());
    const frontier = tailGraph(tail, PIXELS, (t) => {
      const info = prepared.tensors.get(t);
      if (!info) throw new Error(`internal: no probed type for tensor '${t}', which the network after ${found.name} reads`);
      return { elemType: info.elemType, ...(info.dims.length >= 2 && info.dims[0] === PROBE_BATCH ? { dims: ['N' as const, ...info.dims.slice(1)] } : {}) };
    });
    for (const t of frontier) graph.addOutput(t);
    const whole = await createSession(graph.encode(), model.session);
    try {
      return new PatchedLayer(model, found, { whole, tail: await createSession(tail.encode(), model.session), frontier }, cut);
    } catch (err) {
      await whole.release();
      throw err;
    }
  }

  /**
   * pixels [N,C,H,W] in [0,1]; mask [N,C]: 1 where channel c of image n takes `injected` [N,C',H',W'] (the layer's
   * shape), 0 where it keeps its own activation. Returns the logits [N,K] and the unpatched activation [N,C',H',W'].
   */
  async run(pixels: FloatArray, mask: ArrayLike<number>, injected: FloatArray): Promise<{ logits: FloatArray; activation: FloatArray }> {
    const { logits, activation } = await this.whole(pixels, mask, injected);
    return { logits, activation };
  }

  /** The unpatched model: logits [N,K], the layer's activation [N,C,H,W] and what `continue` needs. */
  capture(pixels: FloatArray): Promise<Capture> {
    const n = pixels.length / this.model.inputDims.reduce((a, b) => a * b, 1);
    return this.whole(pixels, new Float32Array(n * this.channels), new Float32Array(n * this.size));
  }

  /** `run` of the captured pixels, from the layer on: logits [N,K] of the patched network. */
  async continue(captured: Capture, mask: ArrayLike<number>, injected: FloatArray): Promise<FloatArray> {
    const n = captured.activation.length / this.size;
    this.checkPatch(n, mask, injected);
    const out = await this.tail.run({ ...captured.frontier, ...this.patchFeeds(n, mask, injected) });
    return out[PATCH_LOGITS].data as FloatArray;
  }

  private async whole(pixels: FloatArray, mask: ArrayLike<number>, injected: FloatArray): Promise<Capture> {
    const [c, h, w] = this.model.inputDims;
    const n = pixels.length / (c * h * w);
    if (!Number.isInteger(n) || n < 1) throw new Error(`pixels has ${pixels.length} values, not a positive multiple of ${c}×${h}×${w}`);
    this.checkPatch(n, mask, injected);
    const out = await this.session.run({ [PIXELS]: floatTensor(this.model.prepared.floatType, pixels, [n, c, h, w]), ...this.patchFeeds(n, mask, injected) });
    return {
      logits: out[PATCH_LOGITS].data as FloatArray,
      activation: out[this.layer.tensor].data as FloatArray,
      frontier: Object.fromEntries(this.frontier.map((t) => [t, out[t]])),
    };
  }

  private checkPatch(n: number, mask: ArrayLike<number>, injected: FloatArray): void {
    if (mask.length !== n * this.channels) throw new Error(`mask has ${mask.length} values for ${n} image(s) of ${this.channels} channels`);
    if (injected.length !== n * this.size) throw new Error(`injected has ${injected.length} values for ${n} image(s) of layer shape [${this.layer.dims.slice(1).join(',')}]`);
  }

  private patchFeeds(n: number, mask: ArrayLike<number>, injected: FloatArray): Record<string, ort.Tensor> {
    const ft = this.model.prepared.floatType;
    return {
      [PATCH_MASK]: floatTensor(ft, mask, [n, this.channels, ...this.spatial.map(() => 1)]),
      [PATCH_INJECTED]: floatTensor(ft, injected, [n, ...this.layer.dims.slice(1)]),
    };
  }

  async release(): Promise<void> {
    await this.session.release();
    await this.tail.release();
  }
}

/** k = 1, 2, 4, … below C, then C. */
export function defaultKs(channels: number): number[] {
  const ks: number[] = [];
  for (let k = 1; k < channels; k *= 2) ks.push(k);
  ks.push(channels);
  return ks;
}

/**
 * Channels ordered by mean over images of |spatial-mean(adv) − spatial-mean(clean)|, largest first (ties: lower
 * channel first). The ranking used when none is given; measured on the images that are then patched, so it is
 * optimistic next to a ranking from held-out images (say so when reporting it).
 */
export function rankByChange(clean: ArrayLike<number> /* [N,C] */, adversarial: ArrayLike<number> /* [N,C] */, channels: number): number[] {
  if (clean.length !== adversarial.length || clean.length % channels) throw new RangeError(`clean and adversarial means must both be [N,${channels}]`);
  const change = new Float64Array(channels);
  for (let k = 0; k < clean.length; k++) change[k % channels] += Math.abs(adversarial[k] - clean[k]);
  return [...change.keys()].sort((a, b) => change[b] - change[a] || a - b);
}

/** Spatial means [N,C] of activations [N,C,H,W] (a [N,C] layer is its own mean). */
export function spatialMeans(activation: ArrayLike<number>, channels: number, area: number): Float64Array {
  const n = activation.length / (channels * area);
  const out = new Float64Array(n * channels);
  for (let r = 0; r < n * channels; r++) {
    let s = 0;
    for (let k = r * area; k < (r + 1) * area; k++) s += activation[k];
    out[r] = s / area;
  }
  return out;
}

export interface PatchingProgress {
  done: number;
  total: number;
  label: string;
}

export interface PatchingOptions {
  /** a layer of the model's inventory with channels: [N,C,H,W] or [N,C] */
  layer: string;
  /** [N,C,H,W] pixels in [0,1] */
  clean: Float32Array;
  /** [N,C,H,W]: the same images after the attack */
  adversarial: Float32Array;
  /** [N] the class whose probability the attack lowers (the attacked label, or the clean top-1) */
  cleanClass: ArrayLike<number>;
  /** [N] target classes of a targeted attack; omit for an untargeted one */
  target?: ArrayLike<number>;
  /** [N] names for the report (default image-<i>) */
  names?: readonly string[];
  /**
   * every channel once, most important first; default rankByChange over these images. With `heldOut`, image i is
   * patched with `orders[folds[i]]` instead (a ranking measured without it: analysis/held-out-ranking.ts)
   */
  ranking?: { from: string; channels: readonly number[]; heldOut?: { folds: readonly number[]; orders: readonly (readonly number[])[] } };
  /** set sizes in [0, C]; default defaultKs(C) */
  ks?: readonly number[];
  /** random sets per image and k */
  draws?: number;
  seed: number;
  /** images per run */
  batch?: number;
  /** smallest fall of p_clean (rise of p_target) for an image to count in the fractions */
  minGap?: number;
  resamples?: number;
  level?: number;
  onProgress?: (p: PatchingProgress) => void;
}

export const SELECTIONS = ['ranked', 'random', 'active'] as const;
export type Selection = (typeof SELECTIONS)[number];
export const MODES = ['restore', 'inject'] as const;
export type Mode = (typeof MODES)[number];
export const DEFAULT_MIN_GAP = 0.05;
export const MEAN_ABS_CHANGE = 'mean |spatial-mean(adv) − spatial-mean(clean)| over the patched images';

/** Restore and inject curves of one layer for clean/adversarial pairs. */
export async function patching(classifier: Pick<Classifier, 'model'>, opts: PatchingOptions): Promise<PatchingResult> {
  const { model } = classifier;
  const draws = opts.draws ?? 5;
  const batch = opts.batch ?? 16;
  const minGap = opts.minGap ?? DEFAULT_MIN_GAP;
  const resamples = opts.resamples ?? 2000;
  const level = opts.level ?? 0.95;
  const per = model.inputDims.reduce((a, b) => a * b, 1);
  const n = opts.clean.length / per;
  const classes = model.numClasses;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`clean pixels: ${opts.clean.length} values are not N×${model.inputDims.join('×')} with N ≥ 1`);
  if (opts.adversarial.length !== opts.clean.length) throw new RangeError(`clean and adversarial pixels differ in size: ${opts.clean.length} and ${opts.adversarial.length}`);
  const checkClasses = (values: ArrayLike<number>, what: string) => {
    if (values.length !== n) throw new RangeError(`${what}: ${values.length} classes for ${n} images`);
    for (const v of Array.from(values)) if (!(Number.isInteger(v) && v >= 0 && v < classes)) throw new RangeError(`${what}: class ${v} is not in [0, ${classes - 1}]`);
  };
  checkClasses(opts.cleanClass, 'clean classes');
  if (opts.target) checkClasses(opts.target, 'target classes');
  if (!(Number.isInteger(draws) && draws >= 1)) throw new RangeError(`draws must be a positive integer, got ${draws}`);
  if (!(Number.isInteger(batch) && batch >= 1)) throw new RangeError(`batch must be a positive integer, got ${batch}`);
  if (!(minGap >= 0 && minGap <= 1)) throw new RangeError(`minimum gap must lie in [0, 1], got ${minGap}`);
  if (opts.names && opts.names.length !== n) throw new RangeError(`${opts.names.length} names for ${n} images`);

  const patched = await PatchedLayer.compile(model, opts.layer);
  try {
    const { channels, size } = patched;
    const area = size / channels;
    const ks = [...new Set(opts.ks ?? defaultKs(channels))].sort((a, b) => a - b);
    for (const k of ks) if (!(Number.isInteger(k) && k >= 0 && k <= channels)) throw new RangeError(`k = ${k} is out of range: layer ${patched.layer.name} has ${channels} channels, so k must be an integer in [0, ${channels}]`);
    if (opts.ranking) checkRanking(opts.ranking.channels, channels);
    const heldOut = opts.ranking?.heldOut;
    if (heldOut) {
      if (heldOut.folds.length !== n) throw new RangeError(`held-out ranking: ${heldOut.folds.length} folds for ${n} images`);
      for (const f of heldOut.folds) if (!(Number.isInteger(f) && f >= 0 && f < heldOut.orders.length)) throw new RangeError(`held-out ranking: fold ${f} has no order (there are ${heldOut.orders.length})`);
      for (const order of heldOut.orders) checkRanking(order, channels);
    }
    const report = opts.onProgress ?? (() => {});
    const chunks = Math.ceil(n / batch);
    const total = chunks * (2 + MODES.length * ks.length * (2 + draws));
    let done = 0;
    const tick = (label: string) => report({ done: ++done, total, label });

    // Captures first: the default ranking needs every image's change before any patch is chosen.
    const target = opts.target ? Array.from(opts.target) : undefined;
    const cleanClass = Array.from(opts.cleanClass);
    const captures: { clean: Capture; adversarial: Capture }[] = [];
    const base = { clean: new Float64Array(n), adversarial: new Float64Array(n), targetClean: new Float64Array(n), targetAdversarial: new Float64Array(n) };
    const means = { clean: new Float64Array(n * channels), adversarial: new Float64Array(n * channels) };
    const probe = (logits: FloatArray, start: number, out: Float64Array, outTarget: Float64Array) => {
      for (let i = 0; i * classes < logits.length; i++) {
        const p = softmax(logits.subarray(i * classes, (i + 1) * classes));
        out[start + i] = p[cleanClass[start + i]];
        if (target) outTarget[start + i] = p[target[start + i]];
      }
    };
    for (let chunk = 0; chunk < chunks; chunk++) {
      const start = chunk * batch;
      const end = Math.min(n, start + batch);
      const c = await patched.capture(opts.clean.slice(start * per, end * per));
      tick('capture clean');
      const a = await patched.capture(opts.adversarial.slice(start * per, end * per));
      tick('capture adversarial');
      captures.push({ clean: c, adversarial: a });
      // The unpatched probabilities from the same session as every patched one (the network after the layer).
      const none = new Float32Array((end - start) * channels);
      const zeros = new Float32Array((end - start) * size);
      probe(await patched.continue(c, none, zeros), start, base.clean, base.targetClean);
      probe(await patched.continue(a, none, zeros), start, base.adversarial, base.targetAdversarial);
      means.clean.set(spatialMeans(c.activation, channels, area), start * channels);
      means.adversarial.set(spatialMeans(a.activation, channels, area), start * channels);
    }
    const ranking = opts.ranking
      ? { from: opts.ranking.from, channels: [...opts.ranking.channels], held_out: heldOut ? { folds: [...heldOut.folds], orders: heldOut.orders.map((o) => [...o]) } : null }
      : { from: MEAN_ABS_CHANGE, channels: rankByChange(means.clean, means.adversarial, channels), held_out: null };
    const orderOf = (image: number): readonly number[] => (heldOut ? heldOut.orders[heldOut.folds[image]] : ranking.channels);

    // p_clean and p_target per mode, selection, k and image; random ones summed over draws here, averaged below.
    const pc = new Map<string, Float64Array>();
    const pt = new Map<string, Float64Array>();
    const key = (mode: Mode, sel: Selection, ki: number) => `${mode}/${sel}/${ki}`;
    for (const mode of MODES) for (const sel of SELECTIONS) for (const ki of ks.keys()) { pc.set(key(mode, sel, ki), new Float64Array(n)); pt.set(key(mode, sel, ki), new Float64Array(n)); }
    const rng = createRng(opts.seed).fork('patching');
    const draw = (k: number, d: number, image: number) => randomChannels(rng.fork(`random/k${k}/draw${d}/image${image}`), channels, k);

    for (let chunk = 0; chunk < chunks; chunk++) {
      const start = chunk * batch;
      const end = Math.min(n, start + batch);
      const b = end - start;
      for (const mode of MODES) {
        const from = mode === 'restore' ? captures[chunk].adversarial : captures[chunk].clean;
        const injected = mode === 'restore' ? captures[chunk].clean.activation : captures[chunk].adversarial.activation;
        for (const [ki, k] of ks.entries()) {
          // At k = 0 and k = C every selection is the same set: one run serves them all.
          const same = k === 0 || k === channels;
          let shared: FloatArray | undefined;
          const run = async (sets: (i: number) => readonly number[], label: string): Promise<FloatArray> => {
            let logits = shared;
            if (!logits) {
              const mask = new Float32Array(b * channels); // [B,C]
              for (let i = 0; i < b; i++) for (const ch of sets(start + i)) mask[i * channels + ch] = 1;
              logits = await patched.continue(from, mask, injected);
              if (same) shared = logits;
            }
            tick(`${mode} k=${k} ${label}`);
            return logits;
          };
          const add = (logits: FloatArray, sel: Selection, weight: number) => {
            const c = pc.get(key(mode, sel, ki))!;
            const t = pt.get(key(mode, sel, ki))!;
            for (let i = 0; i < b; i++) {
              const p = softmax(logits.subarray(i * classes, (i + 1) * classes));
              c[start + i] += weight * p[cleanClass[start + i]];
              if (target) t[start + i] += weight * p[target[start + i]];
            }
          };
          add(await run((i) => orderOf(i).slice(0, k), 'ranked'), 'ranked', 1);
          add(await run((i) => topChannels(means.clean.subarray(i * channels, (i + 1) * channels), k), 'most active'), 'active', 1);
          for (let d = 0; d < draws; d++) add(await run((i) => draw(k, d, i), `random ${d + 1}/${draws}`), 'random', 1 / draws);
        }
      }
    }

    const images: PatchedImage[] = [...Array(n).keys()].map((i) => ({
      name: opts.names?.[i] ?? `image-${i}`,
      clean_class: cleanClass[i],
      target: target ? target[i] : null,
      p_clean: { clean: base.clean[i], adversarial: base.adversarial[i] },
      p_target: target ? { clean: base.targetClean[i], adversarial: base.targetAdversarial[i] } : null,
      counted: base.clean[i] - base.adversarial[i] >= minGap,
      target_counted: target ? base.targetAdversarial[i] - base.targetClean[i] >= minGap : null,
    }));
    const interval = (values: ArrayLike<number>, label: string): PatchingInterval => {
      const v = Float64Array.from(values);
      if (v.length === 0) return { mean: null, ci: null, n: 0 };
      const r = bootstrapMean(v, { seed: rng.fork(`bootstrap/${label}`), resamples, level });
      return { mean: r.mean, ci: v.length > 1 ? r.ci : null, n: v.length };
    };
    // (value − from) / (to − from) over the images that count: 0 at `from`, 1 at `to`.
    const fraction = (p: Float64Array, from: Float64Array, to: Float64Array, counted: (im: PatchedImage) => boolean | null, label: string) =>
      interval([...images.keys()].filter((i) => counted(images[i])).map((i) => (p[i] - from[i]) / (to[i] - from[i])), label);

    const restore = curvesOf((sel, ki, k): RestorePoint => {
      const label = `restore/${sel}/${k}`;
      const c = pc.get(key('restore', sel, ki))!;
      const t = pt.get(key('restore', sel, ki))!;
      return {
        k,
        p_clean: interval(c, `${label}/p_clean`),
        recovery: fraction(c, base.adversarial, base.clean, (im) => im.counted, `${label}/recovery`),
        p_target: target ? interval(t, `${label}/p_target`) : null,
        target_lost: target ? fraction(t, base.targetAdversarial, base.targetClean, (im) => im.target_counted, `${label}/target_lost`) : null,
      };
    }, ks);
    const inject = curvesOf((sel, ki, k): InjectPoint => {
      const label = `inject/${sel}/${k}`;
      const c = pc.get(key('inject', sel, ki))!;
      const t = pt.get(key('inject', sel, ki))!;
      return {
        k,
        p_clean: interval(c, `${label}/p_clean`),
        drop: fraction(c, base.clean, base.adversarial, (im) => im.counted, `${label}/drop`),
        p_target: target ? interval(t, `${label}/p_target`) : null,
        target_gain: target ? fraction(t, base.targetClean, base.targetAdversarial, (im) => im.target_counted, `${label}/target_gain`) : null,
      };
    }, ks);
    return {
      layer: patched.layer.name, channels, spatial: patched.spatial, cut: patched.cut, n, targeted: !!target, seed: opts.seed, draws, resamples,
      ci_level: level, min_gap: minGap, ks, ranking, images, restore, inject,
    };
  } finally {
    await patched.release();
  }
}

function curvesOf<P>(point: (sel: Selection, ki: number, k: number) => P, ks: readonly number[]): Record<Selection, P[]> {
  const curve = (sel: Selection) => ks.map((k, ki) => point(sel, ki, k));
  return { ranked: curve('ranked'), random: curve('random'), active: curve('active') };
}

/** A ranking must name every channel once: a partial one would leave k = C undefined. */
function checkRanking(ranking: readonly number[], channels: number): void {
  const seen = new Uint8Array(channels);
  for (const c of ranking) {
    if (!(Number.isInteger(c) && c >= 0 && c < channels)) throw new RangeError(`ranking: channel ${c} is not in [0, ${channels - 1}]`);
    if (seen[c]++) throw new RangeError(`ranking: channel ${c} appears twice`);
  }
  if (ranking.length !== channels) throw new RangeError(`ranking lists ${ranking.length} channels; the layer has ${channels} and the ranking must order all of them`);
}

/** The k largest values' indices (ties: lower index first). */
export function topChannels(values: ArrayLike<number>, k: number): number[] {
  return [...Array(values.length).keys()].sort((a, b) => values[b] - values[a] || a - b).slice(0, k);
}

/** k distinct channels, uniformly (partial Fisher–Yates). */
function randomChannels(rng: Rng, channels: number, k: number): number[] {
  const order = [...Array(channels).keys()];
  for (let j = 0; j < k; j++) {
    const r = rng.uniformInt(j, channels - 1);
    [order[j], order[r]] = [order[r], order[j]];
  }
  return order.slice(0, k);
}
