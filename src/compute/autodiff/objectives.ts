// What is differentiated, as algebra (after Lucent's objectives): each objective is a weighted list of terms, each
// term a per-image value [N] read off one tensor. Terms add and scale; the differentiated scalar is the sum over the
// batch of the weighted sum of terms, so every image's gradient is independent of the batch it runs in — except
// under `diversity`, whose whole point is to couple the images of a batch.
// Each term emits its value and, analytically, the gradient of that value with respect to the tensor it reads; the
// backward pass continues from there.
import type { GraphBuilder } from '../onnx/builder.ts';

export type Term =
  /** cross-entropy of each image's label (the `labels` feed): the attack loss */
  | { kind: 'ce'; weight: number }
  /** the logit of a class, or of each image's label */
  | { kind: 'logit'; weight: number; class: number | 'label' }
  /** z_k − max_{j≠k} z_j: positive exactly when class k is the top-1 */
  | { kind: 'margin'; weight: number; class: number | 'label' }
  /** spatial mean of one channel of a layer */
  | { kind: 'channel'; weight: number; layer: string; channel: number }
  /** one channel at one spatial position */
  | { kind: 'neuron'; weight: number; layer: string; channel: number; y: number; x: number }
  /**
   * Σ_c w[n,c]·(spatial mean of channel c), with w [N,C] fed at run time under `input`: a different channel or
   * direction for every image of a batch (feature visualization renders several neurons at once)
   */
  | { kind: 'direction'; weight: number; layer: string; input: string }
  /** Σ w[n,c,y,x]·a[n,c,y,x], with w [N,C,H,W] fed at run time: neurons at positions, one per image */
  | { kind: 'map'; weight: number; layer: string; input: string }
  /**
   * Lucent's diversity: minus the cosine similarity between the Gram matrices of a layer across the images of a
   * batch. `input` is a run-time [B,B] pair weight (Lucent: 1/B off the diagonal, 0 on it), so one batch may hold
   * several groups of images that only repel their own group.
   */
  | { kind: 'diversity'; weight: number; layer: string; input: string; batch: number };

export type Objective = readonly Term[];

export const crossEntropy = (): Objective => [{ kind: 'ce', weight: 1 }];
export const logit = (k: number | 'label'): Objective => [{ kind: 'logit', weight: 1, class: k }];
export const margin = (k: number | 'label'): Objective => [{ kind: 'margin', weight: 1, class: k }];
export const channel = (layer: string, c: number): Objective => [{ kind: 'channel', weight: 1, layer, channel: c }];
export const neuron = (layer: string, c: number, y: number, x: number): Objective => [{ kind: 'neuron', weight: 1, layer, channel: c, y, x }];
/** A per-image direction in a layer's channel space, fed at run time as `input` [N,C]. */
export const direction = (layer: string, input: string): Objective => [{ kind: 'direction', weight: 1, layer, input }];
/** A per-image weighting of a layer's whole map, fed at run time as `input` [N,C,H,W]. */
export const map = (layer: string, input: string): Objective => [{ kind: 'map', weight: 1, layer, input }];
export const diversity = (layer: string, input: string, batch: number): Objective => [{ kind: 'diversity', weight: 1, layer, input, batch }];
export const scale = (o: Objective, w: number): Objective => o.map((t) => ({ ...t, weight: t.weight * w }));
export const sum = (...os: Objective[]): Objective => os.flat();

export const usesLabels = (o: Objective): boolean =>
  o.some((t) => t.kind === 'ce' || ((t.kind === 'logit' || t.kind === 'margin') && t.class === 'label'));

export interface ObjectiveEnv {
  b: GraphBuilder;
  opset: number;
  logits: string;
  /** int64 [N] feed with each image's class; created on first use */
  labels: () => string;
  /** resolve a layer name to its tensor */
  tensorOf: (layer: string) => string;
  dims: (tensor: string) => number[];
  /** a float graph input [N, ...dims] fed at run time */
  input: (name: string, dims: readonly number[]) => string;
}

export interface BuiltObjective {
  /** per-image objective [N] */
  value: string;
  /** d(Σ_batch objective)/d(tensor) for the tensors the terms read */
  seeds: Map<string, string[]>;
}

export function buildObjective(objective: Objective, env: ObjectiveEnv): BuiltObjective {
  if (objective.length === 0) throw new Error('empty objective');
  const { b } = env;
  const seeds = new Map<string, string[]>();
  const addSeed = (tensor: string, g: string) => {
    const list = seeds.get(tensor);
    if (list) list.push(g); else seeds.set(tensor, [g]);
  };
  let value: string | undefined;
  for (const term of objective) {
    b.scope = `objective/${term.kind}`;
    const { value: v, seed, tensor } = buildTerm(term, env);
    const weighted = term.weight === 1 ? v : b.op('Mul', [v, b.scalar(term.weight)]);
    value = value ? b.op('Add', [value, weighted]) : weighted;
    addSeed(tensor, term.weight === 1 ? seed : b.op('Mul', [seed, b.scalar(term.weight)]));
  }
  return { value: value!, seeds };
}

function buildTerm(term: Term, env: ObjectiveEnv): { value: string; seed: string; tensor: string } {
  const { b } = env;
  if (term.kind === 'ce' || term.kind === 'logit' || term.kind === 'margin') {
    const z = env.logits;
    const classes = env.dims(z)[1];
    const oneHotOf = (indices: string) => oneHot(b, indices, classes);
    const labelled = (k: number | 'label'): { index: string; hot: string } => {
      if (k === 'label') return { index: env.labels(), hot: oneHotOf(env.labels()) };
      checkIndex(k, classes, 'class');
      const row = new Array(classes).fill(0);
      row[k] = 1;
      return { index: b.op('Expand', [b.int64Const('class', [k]), b.op('Gather', [b.op('Shape', [z]), b.int64Const('batch_axis', [0])])]), hot: b.op('Expand', [b.floatConst('one_hot', [1, classes], row), b.op('Shape', [z])]) };
    };
    const pick = (index: string) =>
      b.op('Reshape', [b.op('GatherElements', [z, b.op('Unsqueeze', [index, b.int64Const('axes', [1])])], { axis: 1 }), b.int64Const('flat', [-1])]);
    if (term.kind === 'ce') {
      const { index, hot } = labelled('label');
      const lse = reduce(env, 'ReduceLogSumExp', z, [1]);
      return { value: b.op('Sub', [lse, pick(index)]), seed: b.op('Sub', [b.op('Softmax', [z], { axis: 1 }), hot]), tensor: z };
    }
    const { index, hot } = labelled(term.class);
    if (term.kind === 'logit') return { value: pick(index), seed: hot, tensor: z };
    // margin: mask the class out of the max with a large negative offset
    const masked = b.op('Sub', [z, b.op('Mul', [hot, b.scalar(1e9)])]);
    const runnerUp = b.op('ArgMax', [masked], { axis: 1, keepdims: 0 });
    const value = b.op('Sub', [pick(index), reduce(env, 'ReduceMax', masked, [1])]);
    return { value, seed: b.op('Sub', [hot, oneHotOf(runnerUp)]), tensor: z };
  }
  const a = env.tensorOf(term.layer);
  const dims = env.dims(a);
  if (dims.length < 2) throw new Error(`layer '${term.layer}' has shape [${dims}]: it has no channel axis`);
  const [, channels, ...spatial] = dims;
  if (term.kind === 'direction') {
    const w = env.input(term.input, [channels]);
    const axes = spatial.map((_, k) => k + 2);
    const means = axes.length ? reduce(env, 'ReduceMean', a, axes) : a;
    const value = b.op('ReduceSum', [b.op('Mul', [means, w]), b.int64Const('axes', [1])], { keepdims: 0 });
    const area = spatial.reduce((p, d) => p * d, 1);
    const perCell = b.op('Mul', [w, b.scalar(1 / area)]);
    const seed = axes.length ? b.op('Expand', [b.op('Unsqueeze', [perCell, b.int64Const('axes', axes)]), b.op('Shape', [a])]) : perCell;
    return { value, seed, tensor: a };
  }
  if (term.kind === 'map') {
    const w = env.input(term.input, dims.slice(1));
    const value = b.op('ReduceSum', [b.op('Mul', [a, w]), b.int64Const('axes', dims.slice(1).map((_, k) => k + 1))], { keepdims: 0 });
    return { value, seed: w, tensor: a };
  }
  if (term.kind === 'diversity') return buildDiversity(term, a, dims, env);
  checkIndex(term.channel, channels, `channel of layer '${term.layer}'`);
  const area = spatial.reduce((p, d) => p * d, 1);
  const chan = b.op('Gather', [a, b.int64Const('channel', [term.channel], [])], { axis: 1 }); // [N, ...spatial]
  if (term.kind === 'channel') {
    const mask = new Array(channels).fill(0);
    mask[term.channel] = 1 / area;
    const maskDims = [1, channels, ...spatial.map(() => 1)];
    const value = spatial.length === 0 ? chan : reduce(env, 'ReduceMean', chan, spatial.map((_, k) => k + 1));
    return { value, seed: b.op('Expand', [b.floatConst('channel_mask', maskDims, mask), b.op('Shape', [a])]), tensor: a };
  }
  if (spatial.length !== 2) throw new Error(`neuron objectives need a [N,C,H,W] layer; '${term.layer}' has shape [${dims}]`);
  const [h, w] = spatial;
  checkIndex(term.y, h, `row of layer '${term.layer}'`);
  checkIndex(term.x, w, `column of layer '${term.layer}'`);
  const mask = new Array(channels * h * w).fill(0);
  mask[(term.channel * h + term.y) * w + term.x] = 1;
  const row = b.op('Gather', [chan, b.int64Const('y', [term.y], [])], { axis: 1 });
  const value = b.op('Gather', [row, b.int64Const('x', [term.x], [])], { axis: 1 });
  return { value, seed: b.op('Expand', [b.floatConst('neuron_mask', [1, channels, h, w], mask), b.op('Shape', [a])]), tensor: a };
}

/**
 * value_i = −Σ_j M_ij ⟨Ĝ_i, Ĝ_j⟩ with G_i = A_i·A_iᵀ (A_i the [C,P] activations of image i) and Ĝ = G/‖G‖_F.
 * Its gradient, written out because the objective seeds are analytic (M symmetric):
 *   H_i = dV/dĜ_i = −2 Σ_j M_ij Ĝ_j,  K_i = dV/dG_i = (H_i − ⟨H_i, Ĝ_i⟩ Ĝ_i) / ‖G_i‖,  dV/dA_i = 2 K_i A_i.
 */
function buildDiversity(term: Extract<Term, { kind: 'diversity' }>, a: string, dims: number[], env: ObjectiveEnv): { value: string; seed: string; tensor: string } {
  const { b } = env;
  const [, channels, ...spatial] = dims;
  if (spatial.length === 0) throw new Error(`diversity needs a layer with spatial axes; '${term.layer}' has shape [${dims}]`);
  const m = env.input(term.input, [term.batch]); // [B,B]
  const flat = b.op('Reshape', [a, b.int64Const('ncp', [0, channels, -1])]); // [B,C,P]
  const gram = b.op('MatMul', [flat, b.op('Transpose', [flat], { perm: [0, 2, 1] })]); // [B,C,C]
  const norm = b.op('Sqrt', [reduce(env, 'ReduceSum', b.op('Mul', [gram, gram]), [1, 2], 1)]); // [B,1,1]
  const unit = b.op('Div', [gram, norm]);
  const rows = b.op('Reshape', [unit, b.int64Const('rows', [0, channels * channels])]); // [B,C²]
  const cosine = b.op('MatMul', [rows, b.op('Transpose', [rows], { perm: [1, 0] })]); // [B,B]
  const value = b.op('Neg', [reduce(env, 'ReduceSum', b.op('Mul', [cosine, m]), [1])]);
  const h = b.op('Reshape', [b.op('Mul', [b.op('MatMul', [m, rows]), b.scalar(-2)]), b.int64Const('ncc', [0, channels, channels])]);
  const along = reduce(env, 'ReduceSum', b.op('Mul', [h, unit]), [1, 2], 1);
  const k = b.op('Div', [b.op('Sub', [h, b.op('Mul', [along, unit])]), norm]);
  const seed = b.op('Reshape', [b.op('Mul', [b.op('MatMul', [k, flat]), b.scalar(2)]), b.op('Shape', [a])]);
  return { value, seed, tensor: a };
}

/**
 * [N] class indices → [N,K] one-hot in the model's float type. Built from Equal+Cast rather than OneHot because
 * onnxruntime has no double-valued OneHot kernel.
 */
export function oneHot(b: GraphBuilder, indices: string, depth: number): string {
  const classes = b.int64Const('classes', [...Array(depth).keys()], [1, depth]);
  return b.op('Cast', [b.op('Equal', [b.op('Unsqueeze', [indices, b.int64Const('axes', [1])]), classes])], { to: b.floatType });
}

/** Reductions took `axes` as an attribute before opset 18 and as an input from 18 on. */
function reduce(env: ObjectiveEnv, op: string, x: string, axes: number[], keepdims = 0): string {
  const { b } = env;
  // ReduceSum moved its axes to an input at opset 13, the other reductions at 18.
  return env.opset >= (op === 'ReduceSum' ? 13 : 18)
    ? b.op(op, [x, b.int64Const('axes', axes)], { keepdims })
    : b.op(op, [x], { axes, keepdims });
}

function checkIndex(i: number, size: number, what: string): void {
  if (!Number.isInteger(i) || i < 0 || i >= size) throw new Error(`${what} ${i} is out of range: must be an integer in [0, ${size - 1}]`);
}
