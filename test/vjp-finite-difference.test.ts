// Every gradient rule against central finite differences of onnxruntime's own forward pass, op by op, on small
// networks built here. Each network ends in a dense layer so every component of the input gradient matters, and
// runs a batch of 2 so batch independence is exercised too.
//
// Precision: float64 where onnxruntime's CPU provider has double kernels for every op of the graph and its backward
// (h = 1e-5: rounding ≈ 1e-16·|f|/h ≈ 1e-11, truncation ≈ h² ≈ 1e-10, so 1e-6 relative is strict). Conv,
// ConvTranspose and the pools only have float kernels: there h = 1e-2 along a unit-norm direction. These networks
// are piecewise linear up to the final softmax, so truncation is O(h²)·|f'''| ≈ 1e-4 and float32 rounding is
// ≈ 6e-8·|f|/h ≈ 1e-5; a 2e-3 tolerance (relative to ‖∇f‖) is far below what a wrong rule produces (≈ ‖∇f‖).
import { describe, expect, it } from 'vitest';
import {
  channel, crossEntropy, logit, margin, neuron, scale, sum, type Objective,
} from '../src/compute/autodiff/objectives.ts';
import { DifferentiableModel } from '../src/compute/model/differentiable-model.ts';
import { float } from '../src/compute/onnx/proto.ts';
import { DOUBLE, FLOAT, head, named, seeded, tinyModel, type TinyNet } from './helpers/tiny-net.ts';

type Dims = [number, number, number];
interface Case {
  name: string;
  dtype: 'float64' | 'float32';
  dims: Dims;
  build: (net: TinyNet, x: string) => string;
  objective?: Objective;
}

const N = 2;
const LABELS = [1, 3];

async function checkGradient(c: Case): Promise<{ worst: number }> {
  const elem = c.dtype === 'float64' ? DOUBLE : FLOAT;
  const bytes = tinyModel(elem, c.dims, c.build);
  const model = await DifferentiableModel.fromBytes(bytes, { name: 'x', dims: c.dims });
  const objective = c.objective ?? crossEntropy();
  const size = N * c.dims[0] * c.dims[1] * c.dims[2];
  const rand = seeded(7);
  const make = (f: (i: number) => number) => (c.dtype === 'float64' ? Float64Array.from({ length: size }, (_, i) => f(i)) : Float32Array.from({ length: size }, (_, i) => f(i)));
  const x = make(() => 0.1 + 0.8 * rand());
  const f = async (p: Float32Array | Float64Array) => {
    const r = await model.gradient(p, objective, LABELS);
    return Array.from(r.objective).reduce((a, b) => a + b, 0);
  };
  const { grad } = await model.gradient(x, objective, LABELS);
  const gNorm = Math.sqrt(Array.from(grad).reduce((a, g) => a + g * g, 0));
  expect(gNorm).toBeGreaterThan(0);
  const h = c.dtype === 'float64' ? 1e-5 : 1e-2;
  const tol = c.dtype === 'float64' ? 1e-6 : 2e-3;
  // Three random unit directions and three single coordinates.
  const directions: ((i: number) => number)[] = [];
  for (let d = 0; d < 3; d++) {
    const v = Float64Array.from({ length: size }, () => rand() * 2 - 1);
    const norm = Math.sqrt(v.reduce((a, b) => a + b * b, 0));
    directions.push((i) => v[i] / norm);
  }
  for (let d = 0; d < 3; d++) {
    const k = Math.floor(rand() * size);
    directions.push((i) => (i === k ? 1 : 0));
  }
  let worst = 0;
  for (const v of directions) {
    const analytic = Array.from(grad).reduce((a, g, i) => a + g * v(i), 0);
    const numeric = ((await f(make((i) => x[i] + h * v(i)))) - (await f(make((i) => x[i] - h * v(i))))) / (2 * h);
    const err = Math.abs(numeric - analytic) / gNorm;
    worst = Math.max(worst, err);
    expect(err, `directional derivative ${analytic} vs finite difference ${numeric}`).toBeLessThan(tol);
  }
  await model.release();
  return { worst };
}

const conv = (net: TinyNet, x: string, name: string, wDims: number[], attrs: Record<string, number | number[] | string> = {}, bias = true) =>
  named(net, name, 'Conv', bias ? [x, net.weight(`${name}.weight`, wDims, 0.5), net.weight(`${name}.bias`, [wDims[0]], 0.1)] : [x, net.weight(`${name}.weight`, wDims, 0.5)], attrs);

/**
 * Max pooling is only differentiable away from ties. Add to the input a level that differs by at least 1 between any
 * two elements of a 3×3 neighbourhood ((h mod 3, w mod 3) is distinct there; the 9 levels are shuffled per channel):
 * the input's own spread (0.8) never reorders a window, and the levels stay small enough to keep |f| ≈ 1.
 */
const separated = (n: TinyNet, x: string, [c, h, w]: Dims) => {
  const rand = seeded(11);
  const levels: number[] = [];
  for (let ch = 0; ch < c; ch++) {
    const perm = [...Array(9).keys()].sort(() => rand() - 0.5);
    for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) levels.push(perm[(i % 3) * 3 + (j % 3)] - 4);
  }
  return n.b.op('Add', [x, n.graph.addInitializer('levels', FLOAT, [1, c, h, w], levels)]);
};

const CASES: Case[] = [
  // ---- Conv (float kernels only) ----
  { name: 'Conv 3×3 pad 1', dtype: 'float32', dims: [3, 8, 8], build: (n, x) => head(n, conv(n, x, 'c', [4, 3, 3, 3], { pads: [1, 1, 1, 1] }), 4 * 64) },
  { name: 'Conv stride 2 on an odd size (output_padding)', dtype: 'float32', dims: [3, 9, 9], build: (n, x) => head(n, conv(n, x, 'c', [4, 3, 3, 3], { pads: [1, 1, 1, 1], strides: [2, 2] }), 4 * 25) },
  { name: 'Conv stride 2 that drops a trailing row', dtype: 'float32', dims: [3, 8, 8], build: (n, x) => head(n, conv(n, x, 'c', [4, 3, 3, 3], { strides: [2, 2] }), 4 * 9) },
  { name: 'Conv groups=2', dtype: 'float32', dims: [4, 7, 7], build: (n, x) => head(n, conv(n, x, 'c', [6, 2, 3, 3], { pads: [1, 1, 1, 1], group: 2 }), 6 * 49) },
  { name: 'Conv depthwise', dtype: 'float32', dims: [4, 7, 7], build: (n, x) => head(n, conv(n, x, 'c', [4, 1, 3, 3], { pads: [1, 1, 1, 1], group: 4 }), 4 * 49) },
  { name: 'Conv depthwise stride 2', dtype: 'float32', dims: [4, 7, 7], build: (n, x) => head(n, conv(n, x, 'c', [4, 1, 3, 3], { pads: [1, 1, 1, 1], group: 4, strides: [2, 2] }), 4 * 16) },
  { name: 'Conv dilation 2', dtype: 'float32', dims: [3, 9, 9], build: (n, x) => head(n, conv(n, x, 'c', [4, 3, 3, 3], { pads: [2, 2, 2, 2], dilations: [2, 2] }), 4 * 81) },
  { name: 'Conv asymmetric pads', dtype: 'float32', dims: [3, 8, 8], build: (n, x) => head(n, conv(n, x, 'c', [4, 3, 3, 3], { pads: [0, 1, 2, 1] }), 4 * 8 * 8) },
  { name: 'Conv 1×1 without bias', dtype: 'float32', dims: [3, 6, 6], build: (n, x) => head(n, conv(n, x, 'c', [5, 3, 1, 1], {}, false), 5 * 36) },
  { name: 'Conv auto_pad SAME_UPPER stride 2', dtype: 'float32', dims: [3, 8, 8], build: (n, x) => head(n, conv(n, x, 'c', [4, 3, 3, 3], { auto_pad: 'SAME_UPPER', strides: [2, 2] }), 4 * 16) },
  { name: 'Conv 7×7 stride 2 pad 3 (ResNet stem)', dtype: 'float32', dims: [3, 12, 12], build: (n, x) => head(n, conv(n, x, 'c', [4, 3, 7, 7], { pads: [3, 3, 3, 3], strides: [2, 2] }), 4 * 36) },
  {
    name: 'Conv → BatchNorm → Relu → Conv (BN scale folded into the backward conv)', dtype: 'float32', dims: [3, 6, 6],
    build: (n, x) => {
      const c1 = conv(n, x, 'c1', [4, 3, 3, 3], { pads: [1, 1, 1, 1] }, false);
      const bn = named(n, 'bn', 'BatchNormalization', [c1, n.weight('g', [4], 2), n.weight('b', [4]), n.weight('m', [4], 0.2), n.graph.addInitializer('v', FLOAT, [4], [0.5, 1, 2, 4])], { epsilon: float(1e-5) });
      return head(n, conv(n, named(n, 'r', 'Relu', [bn]), 'c2', [3, 4, 3, 3], { pads: [1, 1, 1, 1] }), 3 * 36);
    },
  },
  // ---- pools (float kernels; their backward uses ConvTranspose) ----
  { name: 'MaxPool 3×3 stride 2 pad 1 (overlapping windows)', dtype: 'float32', dims: [3, 9, 9], build: (n, x) => head(n, named(n, 'p', 'MaxPool', [separated(n, x, [3, 9, 9])], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }), 3 * 25) },
  { name: 'MaxPool 2×2 stride 2', dtype: 'float32', dims: [3, 8, 8], build: (n, x) => head(n, named(n, 'p', 'MaxPool', [separated(n, x, [3, 8, 8])], { kernel_shape: [2, 2], strides: [2, 2] }), 3 * 16) },
  { name: 'MaxPool ceil_mode on an odd size', dtype: 'float32', dims: [3, 7, 7], build: (n, x) => head(n, named(n, 'p', 'MaxPool', [separated(n, x, [3, 7, 7])], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 }), 3 * 16) },
  { name: 'AveragePool pads, count_include_pad=0', dtype: 'float32', dims: [3, 7, 7], build: (n, x) => head(n, named(n, 'p', 'AveragePool', [x], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }), 3 * 16) },
  { name: 'AveragePool pads, count_include_pad=1', dtype: 'float32', dims: [3, 7, 7], build: (n, x) => head(n, named(n, 'p', 'AveragePool', [x], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 1 }), 3 * 16) },
  { name: 'AveragePool ceil_mode', dtype: 'float32', dims: [3, 8, 8], build: (n, x) => head(n, named(n, 'p', 'AveragePool', [x], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }), 3 * 16) },
  { name: 'GlobalAveragePool', dtype: 'float32', dims: [4, 5, 5], build: (n, x) => head(n, named(n, 'p', 'GlobalAveragePool', [x]), 4) },
  // ---- elementwise and linear ops (double kernels) ----
  { name: 'Relu', dtype: 'float64', dims: [3, 4, 4], build: (n, x) => head(n, named(n, 'r', 'Relu', [n.b.op('Sub', [x, n.b.scalar(0.5)])]), 48) },
  { name: 'Clip(0,6) with min/max inputs (ReLU6)', dtype: 'float64', dims: [3, 4, 4], build: (n, x) => head(n, named(n, 'r', 'Clip', [n.b.op('Mul', [n.b.op('Sub', [x, n.b.scalar(0.3)]), n.b.scalar(12)]), n.b.scalar(0), n.b.scalar(6)]), 48) },
  {
    name: 'BatchNormalization (inference)', dtype: 'float64', dims: [3, 4, 4],
    build: (n, x) => head(n, named(n, 'bn', 'BatchNormalization', [x, n.weight('g', [3], 2), n.weight('b', [3]), n.weight('m', [3], 0.2), n.graph.addInitializer('v', DOUBLE, [3], [0.5, 1.5, 3])], { epsilon: float(1e-3) }), 48),
  },
  { name: 'Add (same shape)', dtype: 'float64', dims: [3, 4, 4], build: (n, x) => head(n, named(n, 'a', 'Add', [x, n.b.op('Mul', [x, x])]), 48) },
  { name: 'Add (broadcast constant [1,C,1,1])', dtype: 'float64', dims: [3, 4, 4], build: (n, x) => head(n, named(n, 'a', 'Add', [x, n.weight('k', [1, 3, 1, 1])]), 48) },
  {
    name: 'Add (residual x + f(x), both branches input-dependent)', dtype: 'float64', dims: [3, 4, 4],
    build: (n, x) => head(n, named(n, 'a', 'Add', [x, n.b.op('Relu', [n.b.op('Mul', [n.b.op('Sub', [x, n.b.scalar(0.5)]), n.weight('k', [1, 3, 4, 4])])])]), 48),
  },
  { name: 'Mul (both operands input-dependent)', dtype: 'float64', dims: [3, 4, 4], build: (n, x) => head(n, named(n, 'm', 'Mul', [x, n.b.op('Sub', [x, n.b.scalar(0.3)])]), 48) },
  { name: 'Mul (input by a broadcast operand that depends on the input)', dtype: 'float64', dims: [3, 4, 4], build: (n, x) => head(n, named(n, 'm', 'Mul', [x, n.b.op('ReduceMean', [x], { axes: [2, 3], keepdims: 1 })]), 48) },
  { name: 'ReduceMean keepdims=0', dtype: 'float64', dims: [3, 4, 4], build: (n, x) => head(n, named(n, 'rm', 'ReduceMean', [n.b.op('Mul', [x, x])], { axes: [1, 3], keepdims: 0 }), 4) },
  { name: 'ReduceSum (axes as input)', dtype: 'float64', dims: [3, 4, 4], build: (n, x) => head(n, named(n, 'rs', 'ReduceSum', [n.b.op('Mul', [x, x]), n.b.int64Const('axes', [2])], { keepdims: 1 }), 12) },
  { name: 'Sub (both input-dependent)', dtype: 'float64', dims: [3, 4, 4], build: (n, x) => head(n, named(n, 's', 'Sub', [n.b.op('Mul', [x, x]), x]), 48) },
  { name: 'Div (input-dependent denominator 1 + x²)', dtype: 'float64', dims: [3, 4, 4], build: (n, x) => head(n, named(n, 'd', 'Div', [x, n.b.op('Add', [n.b.scalar(1), n.b.op('Mul', [x, x])])]), 48) },
  { name: 'Flatten then Reshape', dtype: 'float64', dims: [3, 4, 4], build: (n, x) => head(n, named(n, 'rs', 'Reshape', [n.b.op('Flatten', [x], { axis: 1 }), n.b.int64Const('shape', [0, 6, 8])]), 48) },
  { name: 'Identity', dtype: 'float64', dims: [2, 3, 3], build: (n, x) => head(n, named(n, 'i', 'Identity', [x]), 18) },
  { name: 'Concat along channels', dtype: 'float64', dims: [2, 3, 3], build: (n, x) => head(n, named(n, 'cat', 'Concat', [x, n.b.op('Mul', [x, x])], { axis: 1 }), 36) },
  { name: 'Transpose', dtype: 'float64', dims: [2, 3, 4], build: (n, x) => head(n, named(n, 't', 'Transpose', [x], { perm: [0, 3, 1, 2] }), 24) },
  { name: 'Sigmoid', dtype: 'float64', dims: [2, 3, 3], build: (n, x) => head(n, named(n, 's', 'Sigmoid', [n.b.op('Mul', [x, n.b.scalar(3)])]), 18) },
  { name: 'Tanh', dtype: 'float64', dims: [2, 3, 3], build: (n, x) => head(n, named(n, 's', 'Tanh', [x]), 18) },
  { name: 'Softmax over channels', dtype: 'float64', dims: [3, 3, 3], build: (n, x) => head(n, named(n, 's', 'Softmax', [n.b.op('Mul', [x, n.b.scalar(4)])], { axis: 1 }), 27) },
  {
    name: 'Gemm transA=1, transB=0, alpha and beta ≠ 1, input-dependent C', dtype: 'float64', dims: [2, 2, 3],
    build: (n, x) => {
      const flat = n.b.op('Flatten', [x], { axis: 1 }); // [N,12]
      const t = n.b.op('Transpose', [flat], { perm: [1, 0] }); // [12,N]
      const c = n.b.op('Gemm', [flat, n.weight('w2', [5, 12])], { transB: 1 }); // [N,5], input-dependent C
      const y = named(n, 'g', 'Gemm', [t, n.weight('w', [12, 5]), c], { transA: 1, alpha: float(0.7), beta: float(1.3) }); // tᵀ·w: [N,5]
      return y;
    },
  },
  {
    name: 'Gemm transB=1 then transA=0,transB=0 on an input-dependent B', dtype: 'float64', dims: [2, 2, 3],
    build: (n, x) => {
      const flat = n.b.op('Flatten', [x], { axis: 1 }); // [N,12]
      const h1 = named(n, 'g1', 'Gemm', [flat, n.weight('w', [6, 12]), n.weight('c', [6])], { transB: 1, alpha: float(1.5) }); // [N,6]
      const sq = n.b.op('Gemm', [n.b.op('Transpose', [h1], { perm: [1, 0] }), h1]); // [6,6], B depends on input
      const back = n.b.op('Gemm', [h1, sq]); // [N,6]
      return n.b.op('Gemm', [back, n.weight('w3', [6, 5])]);
    },
  },
  {
    name: 'MatMul (batched, both operands input-dependent)', dtype: 'float64', dims: [2, 3, 3],
    build: (n, x) => head(n, named(n, 'mm', 'MatMul', [x, n.b.op('Transpose', [x], { perm: [0, 1, 3, 2] })]), 18),
  },
];

describe('gradients against central finite differences', () => {
  it.each(CASES)('$name ($dtype)', async (c) => {
    await checkGradient(c);
  });
});

describe('objectives against central finite differences', () => {
  const body = (n: TinyNet, x: string) => {
    const c1 = conv(n, x, 'block.conv', [4, 3, 3, 3], { pads: [1, 1, 1, 1] });
    return head(n, named(n, 'block.relu', 'Relu', [c1]), 4 * 36);
  };
  const objectives: [string, Objective][] = [
    ['logit of class 2', logit(2)],
    ['logit margin of class 4', margin(4)],
    ['logit of each image\'s label', logit('label')],
    ['channel mean of block.conv', channel('block.conv', 1)],
    ['one neuron of block.relu', neuron('block.relu', 2, 3, 4)],
    ['weighted sum: CE − 0.5·channel', sum(crossEntropy(), scale(channel('block.conv', 1), -0.5))],
  ];
  it.each(objectives)('%s', async (_name, objective) => {
    await checkGradient({ name: _name, dtype: 'float32', dims: [3, 6, 6], build: body, objective });
  });
});

