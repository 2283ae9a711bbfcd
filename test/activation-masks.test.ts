// The backward masks of ReLU and Clip at the edges of their bounds, compared exactly with the definition (PyTorch's
// threshold_backward and hardtanh_backward pass the gradient where the output is strictly inside the bounds).
// For onnxruntime's CPU provider, float32 graphs build a one-sided mask as a HardSigmoid step of slope ±2^k
// (src/compute/autodiff/vjp/activation.ts); float64 graphs, two-sided masks and other providers compare. All must
// give the same 0/1 pattern on values at, just inside and just outside the bounds, from the smallest normal float to
// overflow. The finite-difference tests cover the same rules in the interior; here the network is act(x) → dense
// layer and the objective one logit, so ∂logit_c/∂x_i = W[c,i]·mask_i is a single product, exact in either precision,
// and the expected value needs no tolerance.
import { describe, expect, it } from 'vitest';
import { logit } from '../src/compute/autodiff/objectives.ts';
import { DifferentiableModel } from '../src/compute/model/differentiable-model.ts';
import { tensorNumbers } from '../src/compute/onnx/proto.ts';
import { buildProgramGraph } from '../src/compute/runtime/program.ts';
import { DOUBLE, FLOAT, head, named, tinyModel, type TinyNet } from './helpers/tiny-net.ts';

const f32 = Math.fround;
/** the float32 value next to v towards −∞ */
function below(v: number): number {
  if (v === 0) return -(2 ** -149);
  const a = new Float32Array([v]);
  new Int32Array(a.buffer)[0] += v > 0 ? -1 : 1;
  return a[0];
}
/** the float32 value next to v towards +∞ */
function above(v: number): number {
  return -below(-v);
}

const SMALLEST_NORMAL = 2 ** -126;
const SUBNORMAL = 2 ** -149;
const CLASSES = 3;
const CLASS = 1;

interface Case {
  name: string;
  act: (n: TinyNet, x: string) => string;
  lo?: number;
  hi?: number;
  values: number[];
}

const clipMin = (c: number) => (n: TinyNet, x: string) => named(n, 'act', 'Clip', [x, n.b.scalar(c)]);
const clipMax = (c: number) => (n: TinyNet, x: string) => named(n, 'act', 'Clip', [x, '', n.b.scalar(c)]);

const cases: Case[] = [
  {
    name: 'Relu',
    act: (n, x) => named(n, 'act', 'Relu', [x]),
    lo: 0,
    values: [-1, below(0), -0, 0, SMALLEST_NORMAL, above(SMALLEST_NORMAL), 1e-30, 0.5, 1, 7, 1e30, 3e38],
  },
  {
    name: 'Clip(0, 6) (ReLU6)',
    act: (n, x) => named(n, 'act', 'Clip', [x, n.b.scalar(0), n.b.scalar(6)]),
    lo: 0,
    hi: 6,
    values: [-2, -0, 0, SMALLEST_NORMAL, 1e-20, 3, below(6), 6, above(6), 1e30],
  },
  {
    name: 'Clip(−1, 0.1)',
    act: (n, x) => named(n, 'act', 'Clip', [x, n.b.scalar(-1), n.b.scalar(f32(0.1))]),
    lo: -1,
    hi: f32(0.1),
    values: [-3, below(-1), -1, above(-1), 0, below(f32(0.1)), f32(0.1), above(f32(0.1)), 2],
  },
  { name: 'Clip with only a min input, 0', act: clipMin(0), lo: 0, values: [-5, below(0), 0, SMALLEST_NORMAL, 2, 3e38] },
  { name: 'Clip with only a min input, −2.5', act: clipMin(-2.5), lo: -2.5, values: [-1e30, -3, below(-2.5), -2.5, above(-2.5), 0, 1e30] },
  { name: 'Clip with only a min input, −1e38 (slope 2^−1)', act: clipMin(f32(-1e38)), lo: f32(-1e38), values: [-3e38, below(f32(-1e38)), f32(-1e38), above(f32(-1e38)), 0, 3e38] },
  { name: 'Clip with only a max input, 0.3', act: clipMax(f32(0.3)), hi: f32(0.3), values: [-3e38, 0, below(f32(0.3)), f32(0.3), above(f32(0.3)), 1] },
  { name: 'Clip with only a max input, 1000', act: clipMax(1000), hi: 1000, values: [-3e38, -1, 0, below(1000), 1000, above(1000), 1e20] },
  { name: 'Clip with only a max input, 1e38 (slope −2^−1)', act: clipMax(f32(1e38)), hi: f32(1e38), values: [-3e38, 0, below(f32(1e38)), f32(1e38), above(f32(1e38)), 3e38] },
];

/** act(x) → the shared dense head, and its weights [CLASSES,k] as numbers */
function network(elemType: number, act: Case['act'], k: number): { bytes: Uint8Array; weights: number[] } {
  let weights: number[] = [];
  const bytes = tinyModel(elemType, [1, 1, k], (n, x) => {
    const logits = head(n, act(n, x), k, CLASSES);
    weights = tensorNumbers(n.graph.initializers.get('head.weight')!);
    return logits;
  });
  return { bytes, weights };
}

async function gradient(elemType: number, act: Case['act'], values: number[]): Promise<{ grad: number[]; weights: number[]; ops: string[] }> {
  const { bytes, weights } = network(elemType, act, values.length);
  const model = await DifferentiableModel.fromBytes(bytes, { name: 'x', dims: [1, 1, values.length] });
  const px = elemType === FLOAT ? Float32Array.from(values) : Float64Array.from(values);
  const { grad } = await model.gradient(px, logit(CLASS));
  const ops = buildProgramGraph(model.prepared, { objective: logit(CLASS) }).nodes.map((n) => n.opType ?? '');
  await model.release();
  return { grad: Array.from(grad!, (g) => g + 0), weights, ops };
}

describe('ReLU and Clip masks at their bounds', () => {
  for (const c of cases) {
    for (const [dtype, elemType] of [['float32', FLOAT], ['float64', DOUBLE]] as const) {
      it(`${c.name}, ${dtype}`, async () => {
        const { grad, weights, ops } = await gradient(elemType, c.act, c.values);
        const k = c.values.length;
        const inside = (v: number) => {
          const y = Math.min(Math.max(v, c.lo ?? -Infinity), c.hi ?? Infinity);
          return (c.lo === undefined || y > c.lo) && (c.hi === undefined || y < c.hi);
        };
        const expected = c.values.map((v, i) => (inside(v) ? weights[CLASS * k + i] : 0) + 0);
        expect(grad).toEqual(expected);
        // the values reach gradients passed and blocked
        expect(expected.filter((e) => e === 0).length).toBeGreaterThan(1);
        expect(expected.filter((e) => e !== 0).length).toBeGreaterThan(1);
        // and the path under test is the one built: one step for a one-sided float32 mask, compares otherwise
        const oneSided = (c.lo === undefined) !== (c.hi === undefined);
        if (dtype === 'float32' && oneSided) {
          expect(ops).toContain('HardSigmoid');
          expect(ops.filter((op) => op === 'Greater' || op === 'Less')).toEqual([]);
        } else {
          expect(ops).not.toContain('HardSigmoid');
        }
      });
    }
  }

  it('a subnormal ReLU output gets 2^126·y of its gradient in float32 (the documented deviation), all of it in float64', async () => {
    const values = [SUBNORMAL, 2 ** -130, 1];
    const relu = (n: TinyNet, x: string) => named(n, 'act', 'Relu', [x]);
    const single = await gradient(FLOAT, relu, values);
    const double = await gradient(DOUBLE, relu, values);
    const k = values.length;
    expect(single.grad).toEqual([single.weights[CLASS * k] * 2 ** -23, single.weights[CLASS * k + 1] * 2 ** -4, single.weights[CLASS * k + 2]]);
    expect(double.grad).toEqual(values.map((_, i) => double.weights[CLASS * k + i]));
  });

  it('other providers get compares: the step relies on IEEE overflow, which WGSL does not promise', async () => {
    const { bytes } = network(FLOAT, (n, x) => named(n, 'act', 'Relu', [x]), 4);
    const model = await DifferentiableModel.fromBytes(bytes, { name: 'x', dims: [1, 1, 4] });
    const ops = (ep: 'cpu' | 'webgpu') => buildProgramGraph(model.prepared, { objective: logit(CLASS) }, ep).nodes.map((n) => n.opType ?? '');
    expect(ops('cpu')).toContain('HardSigmoid');
    expect(ops('webgpu')).not.toContain('HardSigmoid');
    expect(ops('webgpu')).toContain('Greater');
    await model.release();
  });
});
