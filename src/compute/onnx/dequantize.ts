// Quantized ONNX graphs (QLinearConv & co., QDQ pairs, MatMulInteger/ConvInteger) rewritten as float graphs that the
// backward pass can differentiate. A quantized tensor keeps its name and becomes a float tensor holding the values its
// integers stand for, (q − zero_point)·scale; quantized weights and int32 biases become float32 initializers
// (per channel where the scale is per axis); each QLinear op becomes its float op plus the op's requantization.
//
// activations: 'fake-quant' (default) computes what onnxruntime's integer kernels compute, not an approximation of
// it. Convolutions and matrix products run on integer-valued float tensors (q − z) with integer weights, so the
// accumulator is the exact int32 one (float32 sums of integers are exact below 2^24), and requantization is
// onnxruntime's: round(acc · fl(fl(x_scale·w_scale)/y_scale)) clipped to [qmin − z, qmax − z], round half to even as
// ONNX's QuantizeLinear. (Convolving the dequantized floats instead is off by one step at rounding ties, and one
// step through a depthwise 3×3 with large weights is several steps at the next layer: measured on MobileNetV2, that
// version agreed with the int8 model's top-1 on 30 of 32 photos, no better than the unquantized float network.)
// Ops without a long sum (Add, pooling, Concat, Sigmoid) requantize their float result: value/scale → Clip → Round.
// Both Clip and the rounding stay in the graph, so the integers are (q − z) exactly and a value is (q − z)·scale.
// The rounding is written as two additions (roundHalfEven below), which give Round's values (a −0 may come out +0).
//
// activations: 'float' keeps the float ops and drops the rounding, but keeps each requantization's RANGE as a Clip
// to [(qmin − z)·s, (qmax − z)·s]: quantizers fuse ReLU/ReLU6 into the output range (zero point 0 on uint8 is the
// ReLU; the model zoo's MobileNetV2 has no Relu or Clip node left), so dropping it would drop the nonlinearities.
//
// Gradients: rounding's derivative is zero almost everywhere; the backward pass treats it as the identity (the
// straight-through estimator: the two additions differentiate to it, as the Round rule of
// autodiff/vjp/straight-through.ts does) and the Clip keeps its mask, so a fake-quantizer passes the gradient inside
// the int8 range and blocks it where the value saturates (BPDA, Athalye et al. 2018).
//
// Names: the float op replacing a QLinear node is named after it without `_quant` (`Conv_75_quant` → `Conv_75`: the
// pre-activation, in float units in both modes); its requantized output is `<name>.quant` (after the fused
// ReLU/ReLU6, on the int8 grid in 'fake-quant'). In 'fake-quant' `<name>.acc` is the integer accumulator and
// `<name>.quant.round` the integers (q − z). All are layers for `atlas inspect`, objectives and activations.
//
// Anything quantized that is not handled here throws, naming the op and node: a wrong float graph is worse than none.
// On error the graph may be partly rewritten: decode the model again.
import type { Graph } from './graph.ts';
import { DType, attrFloat, attrInt, attrString, num, tensorValues, type NodeProto, type TensorProto } from './proto.ts';

export type ActivationMode = 'fake-quant' | 'float';

export interface DequantizeOptions {
  /** 'fake-quant' (default): activations on the int8 grid, as the quantized model computes them; 'float': not. */
  activations?: ActivationMode;
}

export interface DequantizeResult {
  /** quantized nodes replaced */
  changed: number;
  /** requantization points written (fake-quantizers, or range clips in 'float') */
  requantized: number;
  /** quantized constants turned into float32 initializers */
  folded: number;
  activations: ActivationMode;
}

const MS = 'com.microsoft';

/** Ops rewritten here, with the domain they belong to. */
const SUPPORTED: Record<string, 'onnx' | 'ms'> = {
  QuantizeLinear: 'onnx',
  DequantizeLinear: 'onnx',
  QLinearConv: 'onnx',
  QLinearMatMul: 'onnx',
  MatMulInteger: 'onnx',
  ConvInteger: 'onnx',
  QLinearAdd: 'ms',
  QLinearMul: 'ms',
  QLinearGlobalAveragePool: 'ms',
  QLinearAveragePool: 'ms',
  QLinearConcat: 'ms',
  QLinearLeakyRelu: 'ms',
  QLinearSigmoid: 'ms',
};
/** Also accepted in the com.microsoft domain, where onnxruntime's quantizer writes them with the same meaning. */
const ALSO_MS = new Set(['QuantizeLinear', 'DequantizeLinear', 'QLinearConv']);

/**
 * Float ops that may read a quantized tensor: they only move or select elements (MaxPool selects, and a positive
 * scale commutes with max), so on the dequantized tensor they give the dequantized result, and their outputs keep the
 * input's scale and zero point. Shape and Size read only the shape.
 */
const PASS_THROUGH = new Set([
  'Identity', 'Reshape', 'Flatten', 'Transpose', 'Squeeze', 'Unsqueeze', 'MaxPool', 'Concat', 'Split', 'Slice',
  'Gather', 'Expand', 'Tile', 'DepthToSpace', 'SpaceToDepth', 'Resize', 'Shape', 'Size',
]);
const SHAPE_ONLY = new Set(['Shape', 'Size']);

/** Whether an op is a quantization op (QLinear*, (De)QuantizeLinear, *Integer*, com.microsoft Q* ops). */
export function isQuantizedOp(node: NodeProto): boolean {
  const op = node.opType ?? '';
  return /^Q[A-Z]/.test(op) || /[Qq]uantize|Integer/.test(op);
}

/** Whether the graph has quantized ops (and so needs `dequantizeGraph` before it can be differentiated). */
export function isQuantized(graph: Graph): boolean {
  return graph.nodes.some(isQuantizedOp);
}

function isSupported(node: NodeProto): boolean {
  const op = node.opType ?? '';
  const where = SUPPORTED[op];
  if (!where) return false;
  if (node.domain === MS) return where === 'ms' || ALSO_MS.has(op);
  return where === 'onnx' && (!node.domain || node.domain === 'ai.onnx');
}

function describe(node: NodeProto): string {
  const domain = node.domain && node.domain !== 'ai.onnx' ? `${node.domain}:` : '';
  return `${domain}${node.opType} node '${node.name || node.output?.[0] || '?'}'`;
}

function fail(node: NodeProto, why: string): Error {
  return new Error(`cannot dequantize ${describe(node)}: ${why}`);
}

// ---- quantization parameters ----

const UINT16 = 4;
const INT16 = 5;

/** Integer range of each quantized element type. */
/** 1.5·2^23: float32 numbers in [2^23, 2^24) are the integers, so adding it rounds a small x to an integer. */
const ROUNDING_SHIFT = 1.5 * 2 ** 23;

const RANGE: Record<number, [number, number]> = {
  [DType.UINT8]: [0, 255],
  [DType.INT8]: [-128, 127],
  [UINT16]: [0, 65535],
  [INT16]: [-32768, 32767],
  [DType.INT32]: [-2147483648, 2147483647],
};

interface QParams {
  /** one value (per tensor) or one per channel */
  scale: number[];
  zero: number[];
  /** element type of the integers */
  type: number;
}

interface Const {
  values: ArrayLike<number>;
  dims: number[];
  dataType: number;
}

/** How per-channel parameters of a constant line up with it: along an axis, or numpy-broadcast on the last axis. */
type Layout = 'last' | { axis: number };

const f32 = Math.fround;
const sameParams = (a: QParams, b: QParams) =>
  a.scale.length === b.scale.length && a.scale.every((v, i) => f32(v) === f32(b.scale[i])) &&
  a.zero.length === b.zero.length && a.zero.every((v, i) => v === b.zero[i]);

/**
 * Rewrite a quantized graph in place into float ops (see the file comment). A graph without quantized ops is left
 * as it is.
 */
export function dequantizeGraph(graph: Graph, opts: DequantizeOptions = {}): DequantizeResult {
  const mode = opts.activations ?? 'fake-quant';
  const fake = mode === 'fake-quant';
  const result: DequantizeResult = { changed: 0, requantized: 0, folded: 0, activations: mode };
  if (!isQuantized(graph)) return result;
  for (const node of graph.nodes) {
    if (isQuantizedOp(node) && !isSupported(node)) {
      throw fail(node, `quantized op ${node.opType}${node.domain ? ` (domain ${node.domain})` : ''} is not supported ` +
        `(supported: ${Object.keys(SUPPORTED).join(', ')}; and ${[...PASS_THROUGH].join(', ')} on quantized tensors)`);
    }
  }

  const source = [...graph.nodes];
  const constantNodes = new Map<string, NodeProto>();
  for (const n of source) if (n.opType === 'Constant' && n.output?.[0]) constantNodes.set(n.output[0], n);
  graph.nodes = [];
  /** quantized tensors (now float tensors of their values) and the parameters of their integers */
  const quantized = new Map<string, QParams>();
  /** 'fake-quant': the tensor of integers (q − z) behind a quantized tensor, where one was computed */
  const integersOf = new Map<string, string>();
  /** int32 outputs of MatMulInteger/ConvInteger, now float tensors holding the same integers */
  const accumulators = new Set<string>();
  /** inputs of replaced nodes: the initializers among them that nothing reads any more are dropped */
  const touched = new Set<string>();
  const cache = new Map<string, string>();

  // ---- constants and parameters ----

  const readConst = (name: string): Const | undefined => {
    if (!name) return undefined;
    const t = graph.initializers.get(name) ?? constantNodes.get(name)?.attribute?.find((a) => a.name === 'value')?.t ?? undefined;
    return t ? { values: readValues(t), dims: (t.dims ?? []).map(num), dataType: t.dataType ?? 0 } : undefined;
  };
  const readParams = (node: NodeProto, scaleName: string, zeroName: string | undefined, fallbackType: number = DType.UINT8): QParams => {
    const s = readConst(scaleName);
    if (!s) throw fail(node, `scale '${scaleName}' is not a constant (dynamic quantization is not supported)`);
    if (s.dataType !== DType.FLOAT) throw fail(node, `scale '${scaleName}' has data type ${s.dataType}; only float32 scales are supported`);
    const z = zeroName ? readConst(zeroName) : undefined;
    if (zeroName && !z) throw fail(node, `zero point '${zeroName}' is not a constant`);
    const type = z?.dataType ?? fallbackType;
    if (!RANGE[type]) throw fail(node, `quantized element type ${type} is not supported (uint8, int8, uint16, int16 and int32 are)`);
    const scale = Array.from(s.values);
    if (scale.some((v) => !(v > 0) || !Number.isFinite(v))) throw fail(node, `scale '${scaleName}' must be positive and finite`);
    const zero = z ? Array.from(z.values) : [0];
    if (zero.length !== scale.length && zero.length !== 1 && scale.length !== 1) throw fail(node, `zero point '${zeroName}' and scale '${scaleName}' differ in size`);
    const n = Math.max(scale.length, zero.length);
    return { scale: scale.length === n ? scale : new Array<number>(n).fill(scale[0]), zero: zero.length === n ? zero : new Array<number>(n).fill(zero[0]), type };
  };
  const perTensor = (node: NodeProto, p: QParams, what: string): { s: number; z: number } => {
    if (p.scale.length !== 1) throw fail(node, `${what} has per-axis quantization parameters; only per-tensor ones are supported on computed tensors`);
    return { s: p.scale[0], z: p.zero[0] };
  };
  const floatInit = (base: string, dims: readonly number[], values: ArrayLike<number>): string => {
    result.folded++;
    return graph.addInitializer(base, DType.FLOAT, dims, values);
  };
  const scalar = (base: string, v: number): string => graph.addInitializer(base, DType.FLOAT, [], [v]);
  /** Per-channel factors shaped [1, C, 1, …] of the given rank (so onnxruntime's ConvMulFusion never folds them). */
  const channelConst = (base: string, values: readonly number[], rank: number, axis: number): string => {
    const dims = Array.from({ length: rank }, (_, k) => (k === axis && values.length > 1 ? values.length : 1));
    return graph.addInitializer(base, DType.FLOAT, dims, values);
  };

  // ---- emitting nodes ----

  // Names of the replaced nodes may be reused (once each), and so may the names baseName() hands out.
  const reusable = new Set(source.filter(isQuantizedOp).map((n) => n.name ?? '').filter(Boolean));
  const uniqueName = (name: string): string => (reusable.delete(name) ? name : graph.fresh(name));

  /** Append a node named `name` (made unique) computing `output` (fresh when omitted); returns the output. */
  const emit = (name: string, opType: string, inputs: readonly string[], attrs: NodeProto['attribute'] = [], output?: string): string => {
    const nodeName = uniqueName(name);
    const out = output ?? graph.fresh(nodeName);
    graph.nodes.push({ name: nodeName, opType, input: [...inputs], output: [out], attribute: attrs });
    return out;
  };

  /**
   * The float values of quantized input `name` as a consumer declaring parameters `p` reads them: a dequantized
   * initializer for a constant; for a computed tensor the tensor itself, or an affine map of it when the consumer
   * reads its integers with other parameters than its producer wrote them with.
   */
  const valueOf = (node: NodeProto, name: string, p: QParams, layout: Layout, base: string): string => {
    touched.add(name);
    const known = quantized.get(name);
    if (known) {
      if (sameParams(known, p)) return name;
      const a = perTensor(node, known, `input '${name}'`);
      const b = perTensor(node, p, `input '${name}'`);
      // q = x/s + z read as (q − z')·s' = x·(s'/s) + (z − z')·s'
      let y = emit(`${base}.input.rescale`, 'Mul', [name, scalar(`${base}.input.ratio`, b.s / a.s)]);
      if (a.z !== b.z) y = emit(`${base}.input.shift`, 'Add', [y, scalar(`${base}.input.offset`, (a.z - b.z) * b.s)]);
      return y;
    }
    const c = quantizedConst(node, name, p);
    const key = JSON.stringify(['value', name, p, layout]);
    let out = cache.get(key);
    if (!out) cache.set(key, (out = floatInit(`${name}_dequantized`, c.dims, dequantizeValues(node, c, p, layout))));
    return out;
  };

  /**
   * The integers (q − z') of quantized input `name` read with zero point z' as float values: from the fake-quantizer
   * that made them, else Round(value/scale) (no Round in 'float' mode, which has no grid).
   */
  const integersIn = (node: NodeProto, name: string, p: QParams, layout: Layout, base: string): string => {
    touched.add(name);
    const known = quantized.get(name);
    if (known) {
      const { s, z } = perTensor(node, known, `input '${name}'`);
      const zp = perTensor(node, p, `input '${name}'`).z;
      let k = integersOf.get(name);
      if (!k) {
        k = emit(`${base}.input.steps`, 'Div', [name, scalar(`${base}.input.scale`, s)]);
        if (fake) k = roundHalfEven(`${base}.input.round`, k);
      }
      return z === zp ? k : emit(`${base}.input.shift`, 'Add', [k, scalar(`${base}.input.offset`, z - zp)]);
    }
    const c = quantizedConst(node, name, p);
    const key = JSON.stringify(['integers', name, p.zero, layout]);
    let out = cache.get(key);
    if (!out) cache.set(key, (out = floatInit(`${name}_integers`, c.dims, dequantizeValues(node, c, { ...p, scale: p.scale.map(() => 1) }, layout))));
    return out;
  };

  const quantizedConst = (node: NodeProto, name: string, p: QParams): Const => {
    if (accumulators.has(name)) throw fail(node, `input '${name}' is an int32 accumulator, not a quantized tensor`);
    const c = readConst(name);
    if (!c) throw fail(node, `quantized input '${name}' is neither a constant nor the output of a supported quantized op (a quantized graph input?)`);
    if (c.dataType !== p.type) throw fail(node, `constant '${name}' has data type ${c.dataType} but its zero point has ${p.type}`);
    return c;
  };

  /**
   * Requantize into quantized tensor `out` (named `name`). 'fake-quant': `steps` is the value in units of the output
   * scale; Clip to the integer range, Round, and the value is integers·scale. 'float': `steps` is the value itself,
   * clipped to the range the integers cover.
   */
  const requantize = (node: NodeProto, steps: string, out: string, p: QParams, name: string, plusZero = false): void => {
    const { s, z } = perTensor(node, p, `output '${out}'`);
    const [qmin, qmax] = RANGE[p.type];
    result.requantized++;
    quantized.set(out, p);
    if (!fake) {
      emit(name, 'Clip', [steps, scalar(`${name}.min`, (qmin - z) * s), scalar(`${name}.max`, (qmax - z) * s)], [], out);
      return;
    }
    // plusZero: `steps` already holds value/scale + zero (in float, which decides exact ties), as QLinearMul's kernel
    const shift = plusZero ? z : 0;
    const clipped = emit(`${name}.clip`, 'Clip', [steps, scalar(`${name}.min`, qmin - z + shift), scalar(`${name}.max`, qmax - z + shift)]);
    let integers = roundHalfEven(`${name}.round`, clipped);
    if (shift) integers = emit(`${name}.integers`, 'Sub', [integers, scalar(`${name}.zero`, shift)]);
    integersOf.set(out, integers);
    emit(name, 'Mul', [integers, scalar(`${name}.scale`, s)], [], out);
  };
  /**
   * Round half to even, as ONNX's Round, for the |x| < 2^22 this graph rounds (int8 steps): x + 1.5·2^23 lands where
   * float32's spacing is 1, so the addition itself rounds, and subtracting 1.5·2^23 again is exact. Two vectorized
   * additions cost a fraction of onnxruntime's Round kernel, which was 31 % of the int8 model's forward pass. Their
   * derivative is the identity: the straight-through estimator the Round rule gives (straight-through.ts).
   */
  const roundHalfEven = (name: string, x: string): string => {
    const shift = scalar(`${name}.shift`, ROUNDING_SHIFT);
    return emit(name, 'Sub', [emit(`${name}.shifted`, 'Add', [x, shift]), shift]);
  };
  /** Requantize a float result: 'fake-quant' divides by the output scale first. */
  const requantizeValue = (node: NodeProto, value: string, out: string, p: QParams, name: string): void => {
    const steps = fake ? emit(`${name}.steps`, 'Div', [value, scalar(`${name}.scale`, perTensor(node, p, `output '${out}'`).s)]) : value;
    requantize(node, steps, out, p, name);
  };

  /** `Conv_75_quant` → `Conv_75` (a name without the suffix is kept; a nameless node gets one), for the next emit. */
  const baseName = (node: NodeProto): string => {
    const base = uniqueName(node.name ? node.name.replace(/_quant$/, '') : `${(node.opType ?? '').replace(/^QLinear/, '')}_${graph.nodes.length}`);
    reusable.add(base);
    return base;
  };
  /** The pre-activation's tensor: `594_quantized` → `594_preact`, as the float MobileNetV2 names it. */
  const preactName = (out: string): string => graph.fresh(`${out.replace(/_quantized$/, '')}_preact`);
  const attrsWithout = (node: NodeProto, ...names: string[]) => (node.attribute ?? []).filter((a) => !names.includes(a.name ?? ''));
  const requireChannelsFirst = (node: NodeProto) => {
    if (attrInt(node, 'channels_last', 0)) throw fail(node, 'channels_last=1 (NHWC) is not supported');
  };

  /** A float op on the inputs' values, named `base` (the pre-activation), then requantized into the node's output. */
  const floatOpThenRequantize = (node: NodeProto, opType: string, inputs: string[], out: QParams, attrs: NodeProto['attribute'] = [], base = baseName(node)) => {
    const value = emit(base, opType, inputs, attrs, preactName(node.output![0]));
    requantizeValue(node, value, node.output![0], out, `${base}.quant`);
  };

  /**
   * Conv/MatMul on integers: the exact accumulator `<base>.acc`, the float pre-activation `<base>` = acc·x_scale·w_scale,
   * and requantization with onnxruntime's multiplier fl(fl(x_scale·w_scale)/y_scale).
   */
  const integerProduct = (node: NodeProto, base: string, opType: 'Conv' | 'MatMul', inputs: string[], xs: number, ws: number[], yp: QParams, rank: number, axis: number, attrs: NodeProto['attribute'] = []) => {
    const acc = emit(`${base}.acc`, opType, inputs, attrs);
    const ys = perTensor(node, yp, `output '${node.output![0]}'`).s;
    const inScale = ws.map((w) => f32(f32(xs) * f32(w)));
    emit(base, 'Mul', [acc, channelConst(`${base}.scale`, inScale, rank, axis)], [], preactName(node.output![0]));
    const multiplier = inScale.map((a) => f32(a / f32(ys)));
    const steps = emit(`${base}.quant.steps`, 'Mul', [acc, channelConst(`${base}.quant.multiplier`, multiplier, rank, axis)]);
    requantize(node, steps, node.output![0], yp, `${base}.quant`);
  };

  for (const node of source) {
    const opType = node.opType ?? '';
    const ins = node.input ?? [];
    const outs = node.output ?? [];
    if (!isQuantizedOp(node)) {
      passThrough(node);
      continue;
    }
    result.changed++;
    for (const i of ins) if (i) touched.add(i);
    switch (opType) {
      case 'QuantizeLinear': {
        if (attrInt(node, 'block_size', 0) > 0) throw fail(node, 'blocked quantization is not supported');
        const p = readParams(node, ins[1], ins[2], attrInt(node, 'output_dtype', 0) || DType.UINT8);
        const axis = attrInt(node, 'axis', 1);
        const x = readConst(ins[0]);
        if (x) {
          // A float weight quantized in the graph (QDQ): folded here, in both modes (weights are int8 in either).
          if (x.dataType !== DType.FLOAT) throw fail(node, `constant input '${ins[0]}' must be float32`);
          const q = quantizeValues(node, x, p, { axis });
          graph.initializers.set(outs[0], makeFloat(outs[0], x.dims, dequantizeValues(node, { ...x, values: q }, p, { axis })));
          result.folded++;
          quantized.set(outs[0], p);
          break;
        }
        if (accumulators.has(ins[0]) || quantized.has(ins[0])) throw fail(node, `input '${ins[0]}' is already quantized`);
        const name = node.name || 'QuantizeLinear';
        const steps = fake ? emit(`${name}.steps`, 'Div', [ins[0], scalar(`${name}.scale`, perTensor(node, p, `output '${outs[0]}'`).s)]) : ins[0];
        requantize(node, steps, outs[0], p, name);
        break;
      }
      case 'DequantizeLinear': {
        if (attrInt(node, 'block_size', 0) > 0) throw fail(node, 'blocked quantization is not supported');
        const known = quantized.get(ins[0]);
        const c = known ? undefined : readConst(ins[0]);
        const p = readParams(node, ins[1], ins[2], c?.dataType ?? known?.type ?? DType.UINT8);
        const layout = { axis: attrInt(node, 'axis', 1) };
        if (c) {
          // Quantized weights and biases of the QDQ format: a float32 initializer under the output's name.
          const values = dequantizeValues(node, quantizedConst(node, ins[0], p), p, layout);
          graph.initializers.set(outs[0], makeFloat(outs[0], c.dims, values));
          result.folded++;
          break;
        }
        emit(node.name || 'DequantizeLinear', 'Identity', [valueOf(node, ins[0], p, layout, node.name || 'DequantizeLinear')], [], outs[0]);
        break;
      }
      case 'QLinearConv': {
        requireChannelsFirst(node);
        const xp = readParams(node, ins[1], ins[2]);
        const wp = readParams(node, ins[4], ins[5], DType.INT8);
        const yp = readParams(node, ins[6], ins[7]);
        const base = baseName(node);
        const w = quantizedConst(node, ins[3], wp);
        const xs = perTensor(node, xp, `input '${ins[0]}'`).s;
        const attrs = attrsWithout(node, 'channels_last');
        const bias = ins[8] ? readConst(ins[8]) : undefined;
        if (ins[8] && !bias) throw fail(node, `bias '${ins[8]}' is not a constant`);
        if (fake) {
          const inputs = [integersIn(node, ins[0], xp, 'last', base), floatInit(`${base}.acc.weight`, w.dims, dequantizeValues(node, w, { ...wp, scale: wp.scale.map(() => 1) }, { axis: 0 }))];
          if (bias) inputs.push(floatInit(`${base}.acc.bias`, bias.dims, Float32Array.from(bias.values)));
          integerProduct(node, base, 'Conv', inputs, xs, wp.scale, yp, w.dims.length, 1, attrs);
          break;
        }
        const inputs = [valueOf(node, ins[0], xp, 'last', base), floatInit(`${base}.weight`, w.dims, dequantizeValues(node, w, wp, { axis: 0 }))];
        if (bias) {
          // int32 bias: zero point 0, scale x_scale·w_scale[m]
          const bp: QParams = { scale: wp.scale.map((v) => f32(xs * v)), zero: wp.scale.map(() => 0), type: DType.INT32 };
          inputs.push(floatInit(`${base}.bias`, bias.dims, dequantizeValues(node, bias, bp, { axis: 0 })));
        }
        floatOpThenRequantize(node, 'Conv', inputs, yp, attrs, base);
        break;
      }
      case 'QLinearMatMul': {
        const ap = readParams(node, ins[1], ins[2]);
        const bp = readParams(node, ins[4], ins[5]);
        const yp = readParams(node, ins[6], ins[7]);
        const base = baseName(node);
        if (fake) {
          const a = integersIn(node, ins[0], ap, 'last', base);
          const b = integersIn(node, ins[3], bp, 'last', base);
          const rank = Math.max(2, readConst(ins[3])?.dims.length ?? 2);
          integerProduct(node, base, 'MatMul', [a, b], perTensor(node, ap, `input '${ins[0]}'`).s, bp.scale, yp, rank, rank - 1);
          break;
        }
        floatOpThenRequantize(node, 'MatMul', [valueOf(node, ins[0], ap, 'last', base), valueOf(node, ins[3], bp, 'last', base)], yp, [], base);
        break;
      }
      case 'QLinearAdd':
      case 'QLinearMul': {
        const base = baseName(node);
        const ap = readParams(node, ins[1], ins[2]);
        const bp = readParams(node, ins[4], ins[5]);
        const yp = readParams(node, ins[6], ins[7]);
        const a = valueOf(node, ins[0], ap, 'last', base);
        const b = valueOf(node, ins[3], bp, 'last', base);
        if (!fake || opType === 'QLinearAdd') {
          // (onnxruntime adds with fixed-point multipliers on x86: a tie may round the other way there)
          floatOpThenRequantize(node, opType === 'QLinearAdd' ? 'Add' : 'Mul', [a, b], yp, [], base);
          break;
        }
        // onnxruntime's kernel: the integer product times fl(fl(a_scale·b_scale)/y_scale), plus the zero point in float
        const out = outs[0];
        emit(base, 'Mul', [a, b], [], preactName(out));
        const product = emit(`${base}.quant.product`, 'Mul', [integersIn(node, ins[0], ap, 'last', base), integersIn(node, ins[3], bp, 'last', base)]);
        const { s: ys, z: yz } = perTensor(node, yp, `output '${out}'`);
        const ratio = f32(f32(f32(perTensor(node, ap, `input '${ins[0]}'`).s) * f32(perTensor(node, bp, `input '${ins[3]}'`).s)) / f32(ys));
        const scaled = emit(`${base}.quant.scaled`, 'Mul', [product, scalar(`${base}.quant.multiplier`, ratio)]);
        const steps = yz ? emit(`${base}.quant.steps`, 'Add', [scaled, scalar(`${base}.quant.zero_point`, yz)]) : scaled;
        requantize(node, steps, out, yp, `${base}.quant`, true);
        break;
      }
      case 'QLinearGlobalAveragePool':
      case 'QLinearAveragePool': {
        requireChannelsFirst(node);
        const base = baseName(node);
        const x = valueOf(node, ins[0], readParams(node, ins[1], ins[2]), 'last', base);
        floatOpThenRequantize(node, opType.replace(/^QLinear/, ''), [x], readParams(node, ins[3], ins[4]), attrsWithout(node, 'channels_last'), base);
        break;
      }
      case 'QLinearConcat': {
        // inputs: Y_scale, Y_zero_point, then X, X_scale, X_zero_point for each input
        const base = baseName(node);
        const xs: string[] = [];
        for (let k = 2; k < ins.length; k += 3) xs.push(valueOf(node, ins[k], readParams(node, ins[k + 1], ins[k + 2]), 'last', base));
        floatOpThenRequantize(node, 'Concat', xs, readParams(node, ins[0], ins[1]), attrsWithout(node, 'channels_last'), base);
        break;
      }
      case 'QLinearSigmoid': {
        const base = baseName(node);
        floatOpThenRequantize(node, 'Sigmoid', [valueOf(node, ins[0], readParams(node, ins[1], ins[2]), 'last', base)], readParams(node, ins[3], ins[4]), [], base);
        break;
      }
      case 'QLinearLeakyRelu': {
        // Relu(x) − α·Relu(−x): LeakyRelu from ops the backward pass knows.
        const base = baseName(node);
        const x = valueOf(node, ins[0], readParams(node, ins[1], ins[2]), 'last', base);
        const negative = emit(`${base}.negative`, 'Mul', [
          emit(`${base}.relu_neg`, 'Relu', [emit(`${base}.neg`, 'Neg', [x])]),
          scalar(`${base}.alpha`, attrFloat(node, 'alpha', 0.01)),
        ]);
        floatOpThenRequantize(node, 'Sub', [emit(`${base}.relu`, 'Relu', [x]), negative], readParams(node, ins[3], ins[4]), [], base);
        break;
      }
      case 'MatMulInteger':
      case 'ConvInteger': {
        // int32 = (A − a_zero)(B − b_zero): the integers of both inputs, their product kept as float values (exact
        // below 2^24). A Cast to float reading it becomes an Identity; the model's own Mul by the scales follows.
        const isConv = opType === 'ConvInteger';
        const base = baseName(node);
        const integers = (k: number, zero: string | undefined, layout: Layout): string => {
          const t = ins[k];
          const z = zero ? readConst(zero) : undefined;
          if (zero && !z) throw fail(node, `zero point '${zero}' is not a constant`);
          const zeros = z ? Array.from(z.values) : [0];
          const type = z?.dataType ?? quantized.get(t)?.type ?? readConst(t)?.dataType ?? DType.UINT8;
          const known = quantized.get(t);
          const p: QParams = { scale: known ? known.scale : zeros.map(() => 1), zero: zeros, type };
          return integersIn(node, t, p, layout, base);
        };
        const a = integers(0, ins[2], 'last');
        const b = integers(1, ins[3], isConv ? { axis: 0 } : 'last');
        emit(base, isConv ? 'Conv' : 'MatMul', [a, b], isConv ? node.attribute ?? [] : [], outs[0]);
        accumulators.add(outs[0]);
        break;
      }
      default:
        throw fail(node, 'internal: a supported op without a rewrite');
    }
  }

  /** A float op reading quantized tensors: kept for element-moving ops, an error otherwise. */
  function passThrough(node: NodeProto): void {
    const ins = node.input ?? [];
    const opType = node.opType ?? '';
    const isCastToFloat = opType === 'Cast' && !node.domain && attrInt(node, 'to', 0) === DType.FLOAT;
    const accumulator = ins.find((i) => i && accumulators.has(i));
    if (accumulator) {
      if (isCastToFloat) {
        graph.nodes.push({ ...node, opType: 'Identity', attribute: [] });
        return;
      }
      throw fail(node, `reads the int32 accumulator '${accumulator}'; only a Cast to float may`);
    }
    const q = ins.map((i) => (i ? quantized.get(i) : undefined));
    const first = q.findIndex(Boolean);
    if (first < 0) {
      graph.nodes.push(node);
      return;
    }
    const p = q[first]!;
    if (isCastToFloat) {
      // the integers q themselves, as floats
      const base = node.name || 'Cast';
      touched.add(ins[first]);
      emit(base, 'Identity', [integersIn(node, ins[first], { ...p, zero: p.zero.map(() => 0) }, 'last', base)], [], node.output![0]);
      return;
    }
    if (!PASS_THROUGH.has(opType) || (node.domain && node.domain !== 'ai.onnx')) {
      throw fail(node, `it reads the quantized tensor '${ins[first]}', and ${opType} is not an op that may run on the ` +
        `dequantized values unchanged (those are ${[...PASS_THROUGH].join(', ')})`);
    }
    if (opType === 'Resize' && attrString(node, 'mode', 'nearest') !== 'nearest') {
      throw fail(node, `Resize mode '${attrString(node, 'mode', 'nearest')}' on a quantized tensor rounds its result; only 'nearest' is supported`);
    }
    const data = opType === 'Concat' ? q : q.slice(0, 1);
    if (data.some((d) => !d || !sameParams(d, p)) || q.slice(data.length).some(Boolean)) {
      throw fail(node, 'its quantized inputs must be its data inputs, with one scale and zero point');
    }
    perTensor(node, p, `input '${ins[first]}'`);
    graph.nodes.push(node);
    if (SHAPE_ONLY.has(opType)) return;
    (node.output ?? []).forEach((o, k) => {
      if (o && !(opType === 'MaxPool' && k === 1)) quantized.set(o, p);
    });
  }

  // Graph outputs that were quantized now hold float values.
  for (const o of graph.outputs) {
    const name = o.name ?? '';
    if (quantized.has(name) || accumulators.has(name)) o.type = { tensorType: { ...o.type?.tensorType, elemType: DType.FLOAT } };
  }
  // Quantized initializers and Constant nodes that nothing reads any more go.
  const read = new Set<string>(graph.outputs.map((o) => o.name ?? ''));
  for (const n of graph.nodes) for (const i of n.input ?? []) if (i) read.add(i);
  for (const name of touched) if (!read.has(name)) graph.initializers.delete(name);
  graph.nodes = graph.nodes.filter((n) => !(n.opType === 'Constant' && touched.has(n.output?.[0] ?? '') && !read.has(n.output?.[0] ?? '')));
  return result;
}

// ---- values ----

/** For element i of a tensor of `dims`, the index of its scale and zero point. */
function paramIndex(node: NodeProto, dims: readonly number[], count: number, layout: Layout): (i: number) => number {
  if (count === 1) return () => 0;
  if (layout === 'last') {
    // a 1-D parameter broadcast against the last axis (QLinearMatMul's per-column B)
    const last = dims[dims.length - 1];
    if (last !== count) throw fail(node, `${count} per-channel parameters do not match the last dimension of [${dims}]`);
    return (i) => i % count;
  }
  const axis = layout.axis < 0 ? layout.axis + dims.length : layout.axis;
  if (dims[axis] !== count) throw fail(node, `${count} per-axis parameters do not match dimension ${axis} of [${dims}]`);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  return (i) => Math.floor(i / inner) % count;
}

/** (q − zero)·scale as float32, per tensor or per channel. */
function dequantizeValues(node: NodeProto, c: Const, p: QParams, layout: Layout): Float32Array {
  const at = paramIndex(node, c.dims, p.scale.length, layout);
  const out = new Float32Array(c.values.length);
  for (let i = 0; i < out.length; i++) {
    const k = at(i);
    out[i] = (c.values[i] - p.zero[k]) * f32(p.scale[k]);
  }
  return out;
}

/** ONNX QuantizeLinear on constants: saturate(round_half_even(x / scale) + zero), the division in float32. */
function quantizeValues(node: NodeProto, c: Const, p: QParams, layout: Layout): Float64Array {
  const at = paramIndex(node, c.dims, p.scale.length, layout);
  const [qmin, qmax] = RANGE[p.type];
  const out = new Float64Array(c.values.length);
  for (let i = 0; i < out.length; i++) {
    const k = at(i);
    out[i] = Math.min(qmax, Math.max(qmin, roundHalfEven(f32(c.values[i] / f32(p.scale[k]))) + p.zero[k]));
  }
  return out;
}

export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function makeFloat(name: string, dims: readonly number[], values: Float32Array): TensorProto {
  return { name, dataType: DType.FLOAT, dims: [...dims], rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

/** Tensor values as numbers, uint16/int16 included (proto.ts does not read those). */
function readValues(t: TensorProto): ArrayLike<number> {
  const raw = t.rawData && t.rawData.byteLength > 0 ? t.rawData : undefined;
  if (t.dataType === UINT16 || t.dataType === INT16) {
    if (!raw) return Array.from(t.int32Data ?? [], Number);
    const copy = new ArrayBuffer(raw.byteLength);
    new Uint8Array(copy).set(raw);
    return t.dataType === UINT16 ? new Uint16Array(copy) : new Int16Array(copy);
  }
  const v = tensorValues(t);
  return v instanceof BigInt64Array ? Array.from(v, Number) : (v as ArrayLike<number>);
}
