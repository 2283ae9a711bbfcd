// Quantized ONNX graphs evaluated op by op in the test, with exact integer arithmetic: the reference that
// test/dequantize.test.ts holds the fake-quant graphs against. onnxruntime's own int8 kernels cannot be that
// reference: on x86 CPUs without VNNI its u8s8 convolutions sum pairs of products in saturating 16-bit lanes
// (vpmaddubsw), so what they compute depends on the CPU.
//
// What each op computes here. The integers are exact; the float steps are those of the definition each op has in
// onnxruntime (the int8 model's meaning), in float32 with every step exactly rounded:
// - QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger: the int32 accumulator Σ (x − zx)(w − zw) (+ bias),
//   summed in float64, which is exact in any order (|products| < 2^16, sums far below 2^53). Ungrouped products run
//   as one float64 MatMul in onnxruntime (im2col here; its double GEMM is exact for these integers on any CPU, and
//   fast enough for 32 MobileNetV2 photos); grouped (depthwise) ones in plain loops. QLinearConv/QLinearMatMul
//   requantize as onnxruntime's MLAS does on every CPU: fl(fl(acc) · M) with the float32 multiplier
//   M = fl(fl(x_scale · w_scale) / y_scale), rounded half to even, plus the zero point, saturated.
// - QLinearMul likewise: fl(fl((a − za)(b − zb)) · fl(fl(sa · sb) / sc)) + zc in float32, then rounded.
// - QLinearAdd/AveragePool/GlobalAveragePool/Concat/LeakyRelu/Sigmoid: the float op on the dequantized values
//   fl((q − z) · s), its result in float32 (sums exact, then rounded once; Sigmoid from float64), requantized
//   as round(fl(v / s)) + z. With decimal scales (0.03 → 0.02 is ×1.5) many results are exact ties in real numbers
//   that float32 scales turn into near-ties, so the precision of each step is part of the definition.
// - QuantizeLinear: round(fl(x / scale)) + zero point, as ONNX defines it on float32 tensors; DequantizeLinear:
//   fl((q − z) · scale). Float ops (Conv, Relu, GlobalAveragePool, Mul, Cast) compute in float64 and round their
//   output to float32 once.
// - MaxPool on a quantized tensor takes the max of the integers (the scale is positive).
// Only what the tests' graphs use is implemented; anything else throws.
import ort from 'onnxruntime-node';
import type { Graph } from '../../src/compute/onnx/graph.ts';
import { DType, attrFloat, attrInt, attrInts, encodeModel, type NodeProto } from '../../src/compute/onnx/proto.ts';

export interface RefTensor {
  dims: number[];
  /** integers for integer types (a quantized tensor holds q, zero point included); float32 values for FLOAT */
  data: Float64Array;
  type: number;
}

const f32 = Math.fround;
const RANGE: Record<number, [number, number]> = {
  [DType.UINT8]: [0, 255],
  [DType.INT8]: [-128, 127],
  [DType.INT32]: [-2147483648, 2147483647],
};

export function roundHalfToEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const size = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

/**
 * Runs `graph` on float32 `feeds`. Returns the graph outputs, and the tensors named in `keep` (quantized tensors as
 * their integers q); other intermediate tensors are dropped once read for the last time.
 */
export async function runReference(graph: Graph, feeds: Record<string, { data: ArrayLike<number>; dims: number[] }>, keep: Iterable<string> = []): Promise<Map<string, RefTensor>> {
  const env = new Map<string, RefTensor>();
  for (const [name, f] of Object.entries(feeds)) env.set(name, { dims: [...f.dims], data: Float64Array.from(f.data, f32), type: DType.FLOAT });
  const kept = new Set([...keep, ...graph.outputs.map((o) => o.name ?? '')]);
  const lastUse = new Map<string, number>();
  graph.nodes.forEach((n, k) => n.input?.forEach((i) => i && lastUse.set(i, k)));
  let constants = constantsOf.get(graph);
  if (!constants) constantsOf.set(graph, (constants = new Map()));
  const get = (name: string): RefTensor => {
    const known = env.get(name) ?? constants.get(name);
    if (known) return known;
    const c = graph.constant(name);
    if (!c) throw new Error(`reference: tensor '${name}' is neither computed nor a constant`);
    const t: RefTensor = { dims: c.dims, data: Float64Array.from(c.values as ArrayLike<number | bigint>, (v) => Number(v)), type: c.dataType };
    constants.set(name, t);
    return t;
  };
  for (const [k, node] of graph.nodes.entries()) {
    if (node.opType === 'Constant') continue;
    const ins = (node.input ?? []).map((i) => (i ? get(i) : undefined));
    const outs = await evaluate(node, ins);
    outs.forEach((t, j) => env.set(node.output![j], t));
    for (const i of node.input ?? []) if (i && lastUse.get(i) === k && !kept.has(i)) env.delete(i);
  }
  return env;
}

/** Constants as float64 tensors, per graph, so that running a graph on several batches reads its weights once. */
const constantsOf = new WeakMap<Graph, Map<string, RefTensor>>();

/** Scale and zero point per element of a tensor: per tensor, or per index along `axis`. */
function params(dims: readonly number[], scale: RefTensor, zero: RefTensor | undefined, axis: number): (i: number) => [number, number] {
  const n = scale.data.length;
  if (n === 1) {
    const z = zero ? zero.data[0] : 0;
    return () => [scale.data[0], z];
  }
  const ax = axis < 0 ? axis + dims.length : axis;
  if (dims[ax] !== n) throw new Error(`reference: ${n} per-axis parameters for dims [${dims}] on axis ${ax}`);
  const inner = size(dims.slice(ax + 1));
  return (i) => {
    const k = Math.floor(i / inner) % n;
    return [scale.data[k], zero ? zero.data[zero.data.length === 1 ? 0 : k] : 0];
  };
}

function saturate(v: number, type: number): number {
  const [lo, hi] = RANGE[type];
  return Math.min(hi, Math.max(lo, v));
}

/** Float32 values requantized to the output's integers: round(fl(v / s)) + z, saturated. */
function requantizeValues(values: Float64Array, dims: number[], s: RefTensor, z: RefTensor | undefined): RefTensor {
  const type = z?.type ?? DType.UINT8;
  const data = new Float64Array(values.length);
  for (let i = 0; i < data.length; i++) data[i] = saturate(roundHalfToEven(f32(values[i] / s.data[0])) + (z ? z.data[0] : 0), type);
  return { dims, data, type };
}

/** The float32 values fl((q − z)·s) of a per-tensor quantized tensor. */
function dequantized(q: RefTensor, s: RefTensor, z: RefTensor | undefined): Float64Array {
  const zp = z ? z.data[0] : 0;
  const out = new Float64Array(q.data.length);
  for (let i = 0; i < out.length; i++) out[i] = f32((q.data[i] - zp) * s.data[0]);
  return out;
}

async function evaluate(node: NodeProto, ins: (RefTensor | undefined)[]): Promise<RefTensor[]> {
  const op = node.opType ?? '';
  const x = ins[0]!;
  switch (op) {
    case 'QuantizeLinear': {
      const type = ins[2]?.type ?? DType.UINT8;
      const at = params(x.dims, ins[1]!, ins[2], attrInt(node, 'axis', 1));
      const data = new Float64Array(x.data.length);
      for (let i = 0; i < data.length; i++) {
        const [s, z] = at(i);
        data[i] = saturate(roundHalfToEven(f32(x.data[i] / s)) + z, type);
      }
      return [{ dims: x.dims, data, type }];
    }
    case 'DequantizeLinear': {
      const at = params(x.dims, ins[1]!, ins[2], attrInt(node, 'axis', 1));
      return [{ dims: x.dims, data: Float64Array.from(x.data, (q, i) => { const [s, z] = at(i); return f32((q - z) * s); }), type: DType.FLOAT }];
    }
    case 'QLinearConv': {
      const [, xs, xz, w, ws, wz, ys, yz, b] = ins;
      const acc = await convolve(node, x, xz!.data[0], w!, wz!, b);
      return [requantizeAccumulator(acc, 1, xs!, ws!, ys!, yz!)];
    }
    case 'QLinearMatMul': {
      const [, as, az, bm, bs, bz, ys, yz] = ins;
      const acc = await matmul(x, az!.data[0], bm!, bz!);
      return [requantizeAccumulator(acc, acc.dims.length - 1, as!, bs!, ys!, yz!)];
    }
    case 'ConvInteger':
      return [await convolve(node, x, ins[2] ? ins[2].data[0] : 0, ins[1]!, ins[3])];
    case 'MatMulInteger':
      return [await matmul(x, ins[2] ? ins[2].data[0] : 0, ins[1]!, ins[3])];
    case 'QLinearAdd': {
      const [, as, az, b, bs, bz, cs, cz] = ins;
      const a = dequantized(x, as!, az);
      const bv = dequantized(b!, bs!, bz);
      const { dims, pick } = broadcast(x.dims, b!.dims);
      const sum = new Float64Array(size(dims));
      for (let i = 0; i < sum.length; i++) {
        const [ia, ib] = pick(i);
        sum[i] = f32(a[ia] + bv[ib]);
      }
      return [requantizeValues(sum, dims, cs!, cz)];
    }
    case 'QLinearMul': {
      const [, as, az, b, bs, bz, cs, cz] = ins;
      const { dims, pick } = broadcast(x.dims, b!.dims);
      const multiplier = f32(f32(f32(as!.data[0]) * f32(bs!.data[0])) / f32(cs!.data[0]));
      const zc = cz ? cz.data[0] : 0;
      const data = new Float64Array(size(dims));
      for (let i = 0; i < data.length; i++) {
        const [ia, ib] = pick(i);
        const product = (x.data[ia] - (az ? az.data[0] : 0)) * (b!.data[ib] - (bz ? bz.data[0] : 0));
        data[i] = saturate(roundHalfToEven(f32(f32(f32(product) * multiplier) + zc)), cz?.type ?? DType.UINT8);
      }
      return [{ dims, data, type: cz?.type ?? DType.UINT8 }];
    }
    case 'QLinearGlobalAveragePool': {
      if (attrInt(node, 'channels_last', 0)) throw new Error('reference: channels_last');
      const [n, c] = x.dims;
      const hw = size(x.dims.slice(2));
      const v = dequantized(x, ins[1]!, ins[2]);
      const mean = new Float64Array(n * c);
      for (let i = 0; i < n * c; i++) {
        let s = 0;
        for (let j = 0; j < hw; j++) s += v[i * hw + j];
        mean[i] = f32(s / hw);
      }
      return [requantizeValues(mean, [n, c, ...x.dims.slice(2).map(() => 1)], ins[3]!, ins[4])];
    }
    case 'GlobalAveragePool': {
      const [n, c] = x.dims;
      const hw = size(x.dims.slice(2));
      const out = new Float64Array(n * c);
      for (let i = 0; i < n * c; i++) {
        let s = 0;
        for (let j = 0; j < hw; j++) s += x.data[i * hw + j];
        out[i] = f32(s / hw);
      }
      return [{ dims: [n, c, ...x.dims.slice(2).map(() => 1)], data: out, type: DType.FLOAT }];
    }
    case 'QLinearAveragePool': {
      const { dims, windows } = poolWindows(node, x.dims);
      const v = dequantized(x, ins[1]!, ins[2]);
      const out = Float64Array.from(windows, (idx) => f32(idx.reduce((a, k) => a + v[k], 0) / idx.length));
      return [requantizeValues(out, dims, ins[3]!, ins[4])];
    }
    case 'MaxPool': {
      if (node.output!.length > 1 && node.output![1]) throw new Error('reference: MaxPool indices');
      const { dims, windows } = poolWindows(node, x.dims);
      return [{ dims, data: Float64Array.from(windows, (idx) => Math.max(...idx.map((k) => x.data[k]))), type: x.type }];
    }
    case 'QLinearConcat': {
      // Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) per input
      const parts: { v: Float64Array; dims: number[] }[] = [];
      for (let k = 2; k < ins.length; k += 3) parts.push({ v: dequantized(ins[k]!, ins[k + 1]!, ins[k + 2]), dims: ins[k]!.dims });
      const { dims, data } = concat(parts.map((p) => ({ dims: p.dims, data: p.v })), attrInt(node, 'axis', 0));
      return [requantizeValues(data, dims, ins[0]!, ins[1])];
    }
    case 'QLinearLeakyRelu': {
      const alpha = f32(attrFloat(node, 'alpha', 0.01));
      const v = dequantized(x, ins[1]!, ins[2]).map((u) => (u >= 0 ? u : f32(alpha * u)));
      return [requantizeValues(v, x.dims, ins[3]!, ins[4])];
    }
    case 'QLinearSigmoid': {
      const v = dequantized(x, ins[1]!, ins[2]).map((u) => f32(1 / (1 + Math.exp(-u))));
      return [requantizeValues(v, x.dims, ins[3]!, ins[4])];
    }
    case 'Conv': {
      const acc = await convolve(node, x, 0, ins[1]!, undefined, ins[2]);
      return [{ ...acc, data: acc.data.map(f32), type: DType.FLOAT }];
    }
    case 'Relu':
      return [{ ...x, data: x.data.map((v) => Math.max(0, v)) }];
    case 'Mul': {
      const b = ins[1]!;
      const { dims, pick } = broadcast(x.dims, b.dims);
      const data = new Float64Array(size(dims));
      for (let i = 0; i < data.length; i++) {
        const [ia, ib] = pick(i);
        data[i] = f32(x.data[ia] * b.data[ib]);
      }
      return [{ dims, data, type: DType.FLOAT }];
    }
    case 'Cast': {
      if (attrInt(node, 'to', 0) !== DType.FLOAT) throw new Error('reference: Cast to a type other than float');
      return [{ ...x, data: x.data.map(f32), type: DType.FLOAT }];
    }
    case 'Flatten': {
      const axis = attrInt(node, 'axis', 1);
      return [{ ...x, dims: [size(x.dims.slice(0, axis)), size(x.dims.slice(axis))] }];
    }
    case 'Reshape': {
      const shape = Array.from(ins[1]!.data);
      const dims = shape.map((d, k) => (d === 0 ? x.dims[k] : d));
      const known = dims.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      return [{ ...x, dims: dims.map((d) => (d === -1 ? x.data.length / known : d)) }];
    }
    case 'Shape':
      return [{ dims: [x.dims.length], data: Float64Array.from(x.dims), type: DType.INT64 }];
    case 'Gather': {
      if (attrInt(node, 'axis', 0) !== 0 || x.dims.length !== 1) throw new Error('reference: Gather other than on a 1-D tensor');
      const idx = ins[1]!;
      return [{ dims: idx.dims, data: idx.data.map((i) => x.data[i < 0 ? i + x.dims[0] : i]), type: x.type }];
    }
    case 'Unsqueeze': {
      const axes = ins[1] ? Array.from(ins[1].data) : attrInts(node, 'axes')!;
      const dims = [...x.dims];
      for (const a of [...axes].sort((p, q) => p - q)) dims.splice(a < 0 ? a + dims.length + 1 : a, 0, 1);
      return [{ ...x, dims }];
    }
    case 'Concat': {
      const { dims, data } = concat(ins.map((t) => ({ dims: t!.dims, data: t!.data })), attrInt(node, 'axis', 0));
      return [{ dims, data, type: x.type }];
    }
    default:
      throw new Error(`reference: op ${node.domain ? `${node.domain}:` : ''}${op} is not implemented`);
  }
}

/** fl(fl(acc) · fl(fl(xs·ws[m]) / ys)), rounded half to even, + zero point, saturated; `axis` carries ws's channel. */
function requantizeAccumulator(acc: RefTensor, axis: number, xs: RefTensor, ws: RefTensor, ys: RefTensor, yz: RefTensor): RefTensor {
  const multipliers = Array.from(ws.data, (w) => f32(f32(f32(xs.data[0]) * f32(w)) / f32(ys.data[0])));
  const inner = size(acc.dims.slice(axis + 1));
  const channels = acc.dims[axis];
  const outer = acc.data.length / (inner * channels);
  const values = acc.data;
  const [lo, hi] = RANGE[yz.type];
  const z = yz.data[0];
  const data = new Float64Array(acc.data.length);
  for (let o = 0, i = 0; o < outer; o++) {
    for (let ch = 0; ch < channels; ch++) {
      const m = multipliers[multipliers.length === 1 ? 0 : ch];
      for (let p = 0; p < inner; p++, i++) {
        const v = f32(f32(values[i]) * m);
        let r = Math.round(v);
        if (r - v === 0.5 && r % 2 !== 0) r -= 1; // half to even
        r += z;
        data[i] = r < lo ? lo : r > hi ? hi : r;
      }
    }
  }
  return { dims: acc.dims, data, type: yz.type };
}

/** Σ (x − xz)(w − wz[m]) + b[m] over each window, exactly (NCHW, 2-D, groups, strides, pads, dilations). */
async function convolve(node: NodeProto, x: RefTensor, xz: number, w: RefTensor, wz: RefTensor | undefined, b?: RefTensor): Promise<RefTensor> {
  if (x.dims.length !== 4) throw new Error('reference: only 2-D convolutions');
  const [n, c, h, wd] = x.dims;
  const [m, cg, kh, kw] = w.dims;
  const group = attrInt(node, 'group', 1);
  const [sh, sw] = attrInts(node, 'strides') ?? [1, 1];
  const [dh, dw] = attrInts(node, 'dilations') ?? [1, 1];
  const [pt, pl, pb, pr] = attrInts(node, 'pads') ?? [0, 0, 0, 0];
  const autoPad = node.attribute?.find((a) => a.name === 'auto_pad');
  if (autoPad && autoPad.s && new TextDecoder().decode(autoPad.s) !== 'NOTSET') throw new Error('reference: auto_pad');
  if (cg * group !== c) throw new Error(`reference: ${c} input channels, ${cg} per group, ${group} groups`);
  const oh = Math.floor((h + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((wd + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
  const taps = kh * kw;
  const weights = new Float64Array(w.data.length);
  for (let i = 0; i < weights.length; i++) weights[i] = w.data[i] - (wz ? wz.data[wz.data.length === 1 ? 0 : Math.floor(i / (cg * taps))] : 0);
  // Each input plane, zero point subtracted, inside a border of zeros (the padding, whose integer is x − xz = 0).
  const ph = h + pt + pb, pw = wd + pl + pr;
  const unpadded = pt + pl + pb + pr === 0 && xz === 0;
  const padded = unpadded ? x.data : new Float64Array(n * c * ph * pw);
  for (let plane = 0; plane < (unpadded ? 0 : n * c); plane++) {
    for (let y = 0; y < h; y++) {
      const from = (plane * h + y) * wd, to = (plane * ph + y + pt) * pw + pl;
      for (let k = 0; k < wd; k++) padded[to + k] = x.data[from + k] - xz;
    }
  }
  const p = oh * ow;
  let out: Float64Array;
  if (group === 1) {
    // im2col: [n, c·kh·kw, oh·ow], then weights [m, c·kh·kw] × columns in one float64 MatMul
    const pointwise = taps === 1 && sh === 1 && sw === 1 && pt + pl + pb + pr === 0;
    let cols = padded;
    if (!pointwise) {
      cols = new Float64Array(n * c * taps * p);
      for (let plane = 0; plane < n * c; plane++) {
        for (let ky = 0; ky < kh; ky++) {
          for (let kx = 0; kx < kw; kx++) {
            const row = (plane * taps + ky * kw + kx) * p;
            for (let oy = 0; oy < oh; oy++) {
              const src = (plane * ph + oy * sh + ky * dh) * pw + kx * dw;
              for (let ox = 0; ox < ow; ox++) cols[row + oy * ow + ox] = padded[src + ox * sw];
            }
          }
        }
      }
    }
    out = await exactMatMul(weights, [m, c * taps], cols, [n, c * taps, p]);
  } else {
    out = new Float64Array(n * m * p);
    const perGroup = m / group;
    for (let img = 0; img < n; img++) {
      for (let o = 0; o < m; o++) {
        const base = (img * m + o) * p;
        const g = Math.floor(o / perGroup);
        for (let ci = 0; ci < cg; ci++) {
          const plane = (img * c + g * cg + ci) * ph * pw;
          for (let ky = 0; ky < kh; ky++) {
            for (let kx = 0; kx < kw; kx++) {
              const wv = weights[((o * cg + ci) * kh + ky) * kw + kx];
              if (wv === 0) continue;
              for (let oy = 0; oy < oh; oy++) {
                const src = plane + (oy * sh + ky * dh) * pw + kx * dw;
                const dst = base + oy * ow;
                for (let ox = 0; ox < ow; ox++) out[dst + ox] += wv * padded[src + ox * sw];
              }
            }
          }
        }
      }
    }
  }
  if (b) {
    for (let plane = 0; plane < n * m; plane++) {
      const bias = b.data[plane % m];
      for (let i = plane * p; i < (plane + 1) * p; i++) out[i] += bias;
    }
  }
  return { dims: [n, m, oh, ow], data: out, type: DType.INT32 };
}

/** [.., K] × [K, J] on the integers (a − az)(b − bz[j]), exactly. */
async function matmul(a: RefTensor, az: number, b: RefTensor, bz: RefTensor | undefined): Promise<RefTensor> {
  if (b.dims.length !== 2) throw new Error('reference: MatMul with a 2-D right operand only');
  const [k, j] = b.dims;
  const rows = a.data.length / k;
  const left = Float64Array.from(a.data, (v) => v - az);
  const right = Float64Array.from(b.data, (v, i) => v - (bz ? bz.data[bz.data.length === 1 ? 0 : i % j] : 0));
  const out = await exactMatMul(left, [rows, k], right, [k, j]);
  return { dims: [...a.dims.slice(0, -1), j], data: out, type: DType.INT32 };
}

let doubleMatMul: Promise<ort.InferenceSession> | undefined;

/** onnxruntime's float64 MatMul (numpy broadcasting): exact on integer operands; a float Conv gets float64 rounding. */
async function exactMatMul(a: Float64Array, aDims: number[], b: Float64Array, bDims: number[]): Promise<Float64Array> {
  doubleMatMul ??= ort.InferenceSession.create(encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'exact_matmul',
      node: [{ opType: 'MatMul', input: ['a', 'b'], output: ['y'] }],
      input: ['a', 'b'].map((name) => ({ name, type: { tensorType: { elemType: DType.DOUBLE } } })),
      output: [{ name: 'y', type: { tensorType: { elemType: DType.DOUBLE } } }],
    },
  }), { intraOpNumThreads: 2 });
  const session = await doubleMatMul;
  const r = await session.run({ a: new ort.Tensor('float64', a, aDims), b: new ort.Tensor('float64', b, bDims) });
  return r.y.data as Float64Array;
}

/** numpy broadcasting of two shapes: the output shape and, per output element, the two input indices. */
function broadcast(a: number[], b: number[]): { dims: number[]; pick: (i: number) => [number, number] } {
  const rank = Math.max(a.length, b.length);
  const pa = [...new Array<number>(rank - a.length).fill(1), ...a];
  const pb = [...new Array<number>(rank - b.length).fill(1), ...b];
  const dims = pa.map((d, k) => Math.max(d, pb[k]));
  if (pa.some((d, k) => d !== dims[k] && d !== 1) || pb.some((d, k) => d !== dims[k] && d !== 1)) throw new Error(`reference: cannot broadcast [${a}] and [${b}]`);
  const strides = (p: number[]) => {
    const s = new Array<number>(rank).fill(0);
    let acc = 1;
    for (let k = rank - 1; k >= 0; k--) {
      s[k] = p[k] === 1 ? 0 : acc;
      acc *= p[k];
    }
    return s;
  };
  const sa = strides(pa);
  const sb = strides(pb);
  return {
    dims,
    pick: (i) => {
      let ia = 0, ib = 0, rest = i;
      for (let k = rank - 1; k >= 0; k--) {
        const coord = rest % dims[k];
        rest = Math.floor(rest / dims[k]);
        ia += coord * sa[k];
        ib += coord * sb[k];
      }
      return [ia, ib];
    },
  };
}

/** Flat input indices of each output element's window, for 2-D pooling without padding. */
function poolWindows(node: NodeProto, dims: number[]): { dims: number[]; windows: number[][] } {
  const [kh, kw] = attrInts(node, 'kernel_shape')!;
  const [sh, sw] = attrInts(node, 'strides') ?? [1, 1];
  if ((attrInts(node, 'pads') ?? []).some((p) => p !== 0)) throw new Error('reference: padded pooling');
  const [n, c, h, w] = dims;
  const oh = Math.floor((h - kh) / sh) + 1;
  const ow = Math.floor((w - kw) / sw) + 1;
  const windows: number[][] = [];
  for (let p = 0; p < n * c; p++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const idx: number[] = [];
        for (let ky = 0; ky < kh; ky++) for (let kx = 0; kx < kw; kx++) idx.push(p * h * w + (oy * sh + ky) * w + ox * sw + kx);
        windows.push(idx);
      }
    }
  }
  return { dims: [n, c, oh, ow], windows };
}

function concat(parts: { dims: number[]; data: Float64Array }[], axis: number): { dims: number[]; data: Float64Array } {
  const rank = parts[0].dims.length;
  const ax = axis < 0 ? axis + rank : axis;
  const outer = size(parts[0].dims.slice(0, ax));
  const dims = [...parts[0].dims];
  dims[ax] = parts.reduce((a, p) => a + p.dims[ax], 0);
  const data = new Float64Array(size(dims));
  let offset = 0;
  for (let o = 0; o < outer; o++) {
    for (const p of parts) {
      const chunk = size(p.dims.slice(ax));
      data.set(p.data.subarray(o * chunk, (o + 1) * chunk), offset);
      offset += chunk;
    }
  }
  return { dims, data };
}
