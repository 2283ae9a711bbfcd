// The backward masks of ReLU and Clip at the edges of their bounds, compared exactly with the definition (PyTorch's
// threshold_backward and hardtanh_backward pass the gradient where the output is strictly inside the bounds).
// float32 graphs build a one-sided mask as a HardSigmoid step of slope ±2^k (src/compute/autodiff/vjp/activation.ts),
// float64 graphs and two-sided masks from compares; all must give the same 0/1 pattern on values at, just inside and just outside the
// bounds, from the smallest normal float to overflow. The finite-difference tests cover the same rules in the
// interior; here the network is act(x) → dense layer and the objective one logit, so ∂logit_c/∂x_i = W[c,i]·mask_i
// is a single product, exact in either precision, and the expected value needs no tolerance.
import { describe, expect, it } from 'vitest';
import { logit } from '../src/compute/autodiff/objectives.ts';
import { DifferentiableModel } from '../src/compute/model/differentiable-model.ts';
import { tensorNumbers } from '../src/compute/onnx/proto.ts';
import { DOUBLE, FLOAT, named, tinyModel, type TinyNet } from './helpers/tiny-net.ts';

const f32 = Math.fround;
/** the float32 neighbours of v */
function below(v: number): number {
  const a = new Float32Array([v]);
  const u = new Int32Array(a.buffer);
  u[0] += v > 0 ? -1 : v < 0 ? 1 : -0x7fffffff; // from ±0 towards −smallest subnormal
  return a[0];
}
function above(v: number): number {
  return -below(-v);
}

const SMALLEST_NORMAL = 2 ** -126;
const CLASSES = 3;
const CLASS = 1;

interface Case {
  name: string;
  act: (n: TinyNet, x: string) => string;
  lo?: number;
  hi?: number;
  values: number[];
}

const cases: Case[] = [
  {
    name: 'Relu',
    act: (n, x) => named(n, 'act', 'Relu', [x]),
    lo: 0,
    values: [-1, -0, 0, SMALLEST_NORMAL, above(SMALLEST_NORMAL), 1e-30, 0.5, 1, 7, 1e30, 3e38],
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
  {
    name: 'Clip with only a min input',
    act: (n, x) => named(n, 'act', 'Clip', [x, n.b.scalar(-2.5)]),
    lo: -2.5,
    values: [-1e30, -3, below(-2.5), -2.5, above(-2.5), 0, 1e30],
  },
  {
    name: 'Clip with only a max input (min omitted as \'\')',
    act: (n, x) => named(n, 'act', 'Clip', [x, '', n.b.scalar(1000)]),
    hi: 1000,
    values: [-3e38, -1, 0, below(1000), 1000, above(1000), 1e20],
  },
];

describe('ReLU and Clip masks at their bounds', () => {
  for (const c of cases) {
    for (const [dtype, elemType] of [['float32', FLOAT], ['float64', DOUBLE]] as const) {
      it(`${c.name}, ${dtype}`, async () => {
        const k = c.values.length;
        let weights: Float64Array | undefined;
        const bytes = tinyModel(elemType, [1, 1, k], (n, x) => {
          const w = n.weight('head.weight', [CLASSES, k], 1);
          weights = Float64Array.from(tensorNumbers(n.graph.initializers.get(w)!));
          const flat = n.b.op('Flatten', [c.act(n, x)], { axis: 1 });
          return named(n, 'head', 'Gemm', [flat, w], { transB: 1 });
        });
        const model = await DifferentiableModel.fromBytes(bytes, { name: 'x', dims: [1, 1, k] });
        const px = dtype === 'float32' ? Float32Array.from(c.values) : Float64Array.from(c.values);
        const { grad } = await model.gradient(px, logit(CLASS));
        await model.release();
        const w = (i: number) => weights![CLASS * k + i];
        const inside = (v: number) => (c.lo === undefined || Math.min(Math.max(v, c.lo), c.hi ?? Infinity) > c.lo) && (c.hi === undefined || Math.max(Math.min(v, c.hi), c.lo ?? -Infinity) < c.hi);
        const expected = c.values.map((v, i) => (inside(v) ? w(i) : 0));
        expect(Array.from(grad!, (g) => g + 0)).toEqual(expected.map((e) => e + 0));
        // the cases reach both sides of every bound
        expect(expected.filter((e) => e === 0).length).toBeGreaterThan(1);
        expect(expected.filter((e) => e !== 0).length).toBeGreaterThan(1);
      });
    }
  }
});
