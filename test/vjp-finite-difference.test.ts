// Every gradient rule against central finite differences of onnxruntime's own forward pass, op by op, on small
// networks built here (test/helpers/tiny-net.ts). Each network ends in a dense layer so every component of the input
// gradient matters, and runs a batch of 2 so batch independence is exercised too: the differentiated scalar is the
// sum over the batch of the per-image objective, and so is the finite difference.
//
// What is compared, for each case: [f(x + h·v) − f(x − h·v)] / 2h against ⟨∇f(x), v⟩ along three random unit
// directions v and along single coordinates (two random ones in each image, and the largest gradient component). The
// step is the one actually taken (x ± h·v rounded to the model's float type), and the error is relative to
// max(|⟨∇f, v⟩|, ‖∇f‖·‖v‖/√D): the second term is the size a directional derivative along v typically has, so a
// component that happens to be ≈ 0 cannot turn rounding noise into a large "relative" error, while a wrong rule
// (an error of the size of the gradient itself) still shows as O(1).
//
// Precision. float64 wherever onnxruntime's CPU provider has double kernels for every op of the forward and backward
// graph: h = 1e-6, rounding ≈ 1e-16·|f|/h ≈ 1e-10 (observed ≤ 2e-8 relative), truncation ≈ h²·|f'''| ≈ 1e-12, so a
// 1e-6 tolerance is strict (ignoring BatchNorm's ε = 1e-3 fails it by 1000×). onnxruntime 1.30 has no double kernel
// for Conv, ConvTranspose (the backward of strided Conv, MaxPool and AveragePool), AveragePool, GlobalAveragePool or
// Erf, so those cases run in float32 with h = 2e-2 on pixels in [0.1, 0.9]: the objective (|f| ≈ 3, the batch sum of
// two 5-class cross-entropies) is computed to a few ulps ≈ 1e-6, so rounding contributes ≈ 1e-6/2h ≈ 3e-5 against
// directional derivatives of ≈ 1e-2 to 1e-1; truncation is ≈ h²·|f'''|/6 ≈ 1e-4 (the networks are piecewise linear up
// to the softmax). Observed worst: 2e-3 over eight input seeds (1.4e-3 for the seed used here), so the tolerance is
// 1e-2; every deliberately broken rule tried against this file (one wrong pooling divisor window, a dropped β, a
// missed broadcast sum, swapped SAME_UPPER/LOWER pads, ...) gave errors of 0.4 to 3.
//
// Kinks. ReLU, Clip, MaxPool and the margin objective are not differentiable everywhere, and a finite difference
// across a kink measures nothing useful. Cases declare guards; at x and at every x ± h·v the guard's discrete
// pattern (which side of its kinks each ReLU/Clip input is on, which element wins each pooling window, which class
// is the runner-up) must be identical, with no ties; a probe that would cross is replaced, and an x with no usable
// probes is redrawn. The tensors guarded are affine in x along the segment in these networks, so equal patterns at
// both ends mean no kink was crossed. Guards also check coverage (a mask that is all ones would test nothing).
import { afterAll, describe, expect, it } from 'vitest';
import {
  channel, diversity, crossEntropy, logit, margin, neuron, scale, sum, type Objective,
} from '../src/compute/autodiff/objectives.ts';
import { DifferentiableModel } from '../src/compute/model/differentiable-model.ts';
import { float, type AttrInput } from '../src/compute/onnx/proto.ts';
import type { ProgramResult } from '../src/compute/runtime/program.ts';
import { ort } from '../src/compute/runtime/session.ts';
import { DOUBLE, FLOAT, head, named, seeded, tinyModel, type TinyNet } from './helpers/tiny-net.ts';

type Dims = [number, number, number];
type Attrs = Record<string, AttrInput>;
type Pixels = Float32Array | Float64Array;

type Guard =
  /** a ReLU's pre-activation: kink at 0 */
  | { kind: 'relu'; layer: string }
  /** a Clip's input: kinks at lo and hi */
  | { kind: 'clip'; layer: string; lo: number; hi: number }
  /** a 2-D MaxPool: `input` is the pool's input layer, `output` the pool; `shared`: some element must win two windows */
  | { kind: 'maxpool'; input: string; output: string; kernel: [number, number]; strides: [number, number]; pads?: [number, number]; dilations?: [number, number]; shared?: boolean };

interface Case {
  name: string;
  dtype: 'float64' | 'float32';
  dims: Dims;
  build: (net: TinyNet, x: string) => string;
  /** default: cross-entropy with LABELS */
  objective?: Objective;
  guards?: Guard[];
  /** run-time objective inputs (direction weights, diversity pair weights) */
  inputs?: Record<string, Float32Array | Float64Array>;
}

const N = 2;
const LABELS = [1, 3];
const SETTINGS = {
  float64: { h: 1e-6, tol: 1e-6, logitsTol: 1e-12 },
  float32: { h: 2e-2, tol: 1e-2, logitsTol: 1e-5 },
} as const;
/** Redraws of the input allowed when it sits too close to a kink; candidates tried per probe slot. */
const MAX_DRAWS = 8;
const MAX_CANDIDATES = 6;

interface Probe { label: string; err: number; analytic: number; numeric: number }
interface CheckResult { probes: Probe[]; draws: number; replaced: number }

const observed: { name: string; dtype: string; worst: number; draws: number; replaced: number }[] = [];
afterAll(() => {
  // FD_REPORT=1 prints the worst relative error of every case (for reviewing tolerances; not needed to pass).
  if (!process.env.FD_REPORT) return;
  for (const o of observed) console.log(`${o.dtype}\t${o.worst.toExponential(2)}\tdraws=${o.draws}\treplaced=${o.replaced}\t${o.name}`);
});

const product = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);
const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));

/** Σ over the batch of the objective, with the guard patterns at the same point. */
interface Evaluation { f: number; pattern: string; problems: string[]; ties: boolean; sharedWinner: boolean }

async function evaluate(model: DifferentiableModel, objective: Objective, guards: readonly Guard[], p: Pixels, inputs?: Case['inputs']): Promise<Evaluation> {
  const r = await model.gradient(p, objective, LABELS, inputs);
  const f = Array.from(r.objective).reduce((a, b) => a + b, 0);
  const layers = [...new Set(guards.flatMap((g) => (g.kind === 'maxpool' ? [g.input, g.output] : [g.layer])))];
  const acts: ProgramResult['activations'] = layers.length ? (await model.forward(p, layers)).activations : new Map();
  const parts: string[] = [];
  const problems: string[] = [];
  let ties = false;
  let sharedWinner = false;
  for (const g of guards) {
    if (g.kind === 'relu' || g.kind === 'clip') {
      const a = acts.get(g.layer)!.data;
      const [lo, hi] = g.kind === 'relu' ? [0, Infinity] : [g.lo, g.hi];
      const region = Array.from(a, (v): number => (v < lo ? 0 : v > hi ? 2 : 1));
      if (Array.from(a).some((v) => v === lo || v === hi)) ties = true;
      parts.push(region.join(''));
      // Coverage: a mask that is all ones (or all zeros) would not test the masking at all.
      const want = hi === Infinity ? [0, 1] : lo === -Infinity ? [1, 2] : [0, 1, 2];
      for (const w of want) if (!region.includes(w)) problems.push(`${g.layer}: no element in region ${w} of (${lo}, ${hi})`);
    } else if (g.kind === 'maxpool') {
      const { data: a, dims } = acts.get(g.input)!;
      const [n, c, hIn, wIn] = dims;
      const [, , hOut, wOut] = acts.get(g.output)!.dims;
      const [kh, kw] = g.kernel;
      const [sh, sw] = g.strides;
      const [ph, pw] = g.pads ?? [0, 0];
      const [dh, dw] = g.dilations ?? [1, 1];
      const winners: number[] = [];
      const wins = new Map<number, number>();
      for (let plane = 0; plane < n * c; plane++) {
        for (let oy = 0; oy < hOut; oy++) {
          for (let ox = 0; ox < wOut; ox++) {
            let best = -1;
            let bestV = -Infinity;
            let second = -Infinity;
            for (let i = 0; i < kh; i++) {
              for (let j = 0; j < kw; j++) {
                const y = oy * sh - ph + i * dh;
                const xx = ox * sw - pw + j * dw;
                if (y < 0 || y >= hIn || xx < 0 || xx >= wIn) continue;
                const k = (plane * hIn + y) * wIn + xx;
                if (a[k] > bestV) { second = bestV; bestV = a[k]; best = k; } else if (a[k] > second) second = a[k];
              }
            }
            if (bestV === second) ties = true;
            winners.push(best);
            wins.set(best, (wins.get(best) ?? 0) + 1);
          }
        }
      }
      parts.push(winners.join(','));
      sharedWinner = [...wins.values()].some((k) => k > 1);
      if (g.shared && !sharedWinner) problems.push(`${g.output}: no element wins two overlapping windows`);
    }
  }
  // The margin objective's kink: the runner-up class must not change along the step.
  for (const term of objective) {
    if (term.kind !== 'margin') continue;
    const classes = r.logits.length / N;
    const runners: number[] = [];
    for (let img = 0; img < N; img++) {
      const k = term.class === 'label' ? LABELS[img] : term.class;
      const z = Array.from(r.logits.subarray(img * classes, (img + 1) * classes)).map((v, j) => (j === k ? -Infinity : v));
      const sorted = [...z].sort((u, v) => v - u);
      if (sorted[0] === sorted[1]) ties = true;
      runners.push(z.indexOf(sorted[0]));
    }
    parts.push(runners.join(','));
  }
  return { f, pattern: parts.join('|'), problems, ties, sharedWinner };
}

async function checkGradient(c: Case): Promise<CheckResult> {
  const { h, logitsTol } = SETTINGS[c.dtype];
  const elem = c.dtype === 'float64' ? DOUBLE : FLOAT;
  const model = await DifferentiableModel.fromBytes(tinyModel(elem, c.dims, c.build), { name: 'x', dims: c.dims });
  try {
    const objective = c.objective ?? crossEntropy();
    const guards = c.guards ?? [];
    const per = product(c.dims);
    const size = N * per;
    const make = (f: (i: number) => number): Pixels => (c.dtype === 'float64' ? Float64Array.from({ length: size }, (_, i) => f(i)) : Float32Array.from({ length: size }, (_, i) => f(i)));
    for (let draw = 0; draw < MAX_DRAWS; draw++) {
      const rand = seeded(7 + 1000 * draw);
      const x = make(() => 0.1 + 0.8 * rand());
      const base = await evaluate(model, objective, guards, x, c.inputs);
      // Coverage problems are a badly designed case, not bad luck: fail instead of redrawing.
      expect(base.problems, 'guard coverage').toEqual([]);
      if (base.ties) continue;

      const r = await model.gradient(x, objective, LABELS, c.inputs);
      const grad = r.grad;
      // The program that computes the gradient must compute the model's own forward (it is rewritten: pruned,
      // objective appended, channel scales folded), or its gradient would be right for the wrong function.
      const plain = (await model.forward(x)).logits!;
      const scaleZ = Math.max(1, ...Array.from(plain, Math.abs));
      const zDiff = Math.max(...Array.from(plain, (v, i) => Math.abs(v - r.logits[i])));
      expect(zDiff / scaleZ, 'logits of the gradient program vs the forward program').toBeLessThanOrEqual(logitsTol);
      expect(grad.length).toBe(size);
      expect(Array.from(grad).every(Number.isFinite), 'finite gradient').toBe(true);
      for (let img = 0; img < N; img++) expect(norm(grad.subarray(img * per, (img + 1) * per)), `gradient of image ${img}`).toBeGreaterThan(0);
      const gNorm = norm(grad);

      // Probe slots: three random unit directions (unit norm, so each pixel moves by only ≈ h/√D and the objective
      // moves about as much as for a single coordinate), two random coordinates per image, and the largest gradient
      // component. A candidate whose step would cross a kink is replaced by another for the same slot; if a slot
      // runs out of candidates, x itself sits too close to a kink and is redrawn.
      type Direction = { label: string; v: (i: number) => number };
      const byMagnitude = Array.from(grad.keys()).sort((i, j) => Math.abs(grad[j]) - Math.abs(grad[i]));
      const coordinate = (k: number): Direction => ({ label: `coordinate ${k} (image ${Math.floor(k / per)})`, v: (i) => (i === k ? 1 : 0) });
      const slots: ((attempt: number) => Direction)[] = [
        ...[0, 1, 2].map((d) => () => {
          const v = Float64Array.from({ length: size }, () => 2 * rand() - 1);
          const length = norm(v);
          return { label: `random direction ${d}`, v: (i: number) => v[i] / length };
        }),
        ...[0, 0, 1, 1].map((img) => () => coordinate(img * per + Math.floor(rand() * per))),
        (attempt: number) => coordinate(byMagnitude[attempt]),
      ];
      const probes: Probe[] = [];
      let replaced = 0;
      let stuck = false;
      for (const slot of slots) {
        let done = false;
        for (let attempt = 0; attempt < MAX_CANDIDATES && !done; attempt++) {
          const { label, v } = slot(attempt);
          const plus = make((i) => x[i] + h * v(i));
          const minus = make((i) => x[i] - h * v(i));
          const [fp, fm] = [await evaluate(model, objective, guards, plus, c.inputs), await evaluate(model, objective, guards, minus, c.inputs)];
          if (fp.ties || fm.ties || fp.pattern !== base.pattern || fm.pattern !== base.pattern) { replaced++; continue; }
          let dot = 0;
          let step = 0;
          for (let i = 0; i < size; i++) {
            const s = plus[i] - minus[i];
            dot += grad[i] * s;
            step += s * s;
          }
          const analytic = dot / (2 * h);
          const numeric = (fp.f - fm.f) / (2 * h);
          const typical = (gNorm * Math.sqrt(step)) / (2 * h) / Math.sqrt(size);
          probes.push({ label, err: Math.abs(numeric - analytic) / Math.max(Math.abs(analytic), typical), analytic, numeric });
          done = true;
        }
        if (!done) { stuck = true; break; }
      }
      if (stuck) continue;
      return { probes, draws: draw + 1, replaced };
    }
    throw new Error(`${c.name}: every one of ${MAX_DRAWS} input draws sat within a finite-difference step of a kink`);
  } finally {
    await model.release();
  }
}

/** Run the check and assert every probe is within the dtype's tolerance. */
async function expectGradientMatches(c: Case): Promise<void> {
  const { probes, draws, replaced } = await checkGradient(c);
  const worst = Math.max(...probes.map((p) => p.err));
  observed.push({ name: c.name, dtype: c.dtype, worst, draws, replaced });
  const { tol } = SETTINGS[c.dtype];
  for (const p of probes) {
    expect(p.err, `${p.label}: ⟨∇f, v⟩ = ${p.analytic}, finite difference ${p.numeric}`).toBeLessThan(tol);
  }
}

// ---- network pieces ----

const conv = (n: TinyNet, x: string, name: string, wDims: number[], attrs: Attrs = {}, bias = true) =>
  named(n, name, 'Conv', bias ? [x, n.weight(`${name}.weight`, wDims, 0.5), n.weight(`${name}.bias`, [wDims[0]], 0.1)] : [x, n.weight(`${name}.weight`, wDims, 0.5)], attrs);

/** Inference BatchNorm with seeded γ, β, mean (or given γ, β) and a fixed positive variance per channel. */
const batchNorm = (n: TinyNet, x: string, name: string, channels: number, affine?: { gamma: number[]; beta: number[] }) =>
  named(n, name, 'BatchNormalization', [
    x,
    affine ? n.constant(`${name}.gamma`, [channels], affine.gamma) : n.weight(`${name}.gamma`, [channels], 2),
    affine ? n.constant(`${name}.beta`, [channels], affine.beta) : n.weight(`${name}.beta`, [channels]),
    n.weight(`${name}.mean`, [channels], 0.2),
    n.constant(`${name}.var`, [channels], Array.from({ length: channels }, (_, k) => 0.5 + k)),
  ], { epsilon: float(1e-3) });

/**
 * Max pooling is only differentiable away from ties, and uniform random pixels put two values of some window within
 * a float32 finite-difference step of each other. So a level is added whose values differ by at least 1 between any
 * two elements of a window ((h mod 3, w mod 3) is distinct within 3 consecutive rows and columns, and within rows
 * i, i+2 of a dilation-2 window; the 9 levels are shuffled per channel): the input's own spread (0.8) never reorders a
 * window, and the gradient still flows to the input through the Add. The node is named `pool.in` for the guard.
 */
const separated = (n: TinyNet, x: string, [c, h, w]: Dims) => {
  const rand = seeded(11);
  const levels: number[] = [];
  for (let ch = 0; ch < c; ch++) {
    const perm = [...Array(9).keys()].map((k) => [rand(), k]).sort((a, b) => a[0] - b[0]).map(([, k]) => k);
    for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) levels.push(perm[(i % 3) * 3 + (j % 3)] - 4);
  }
  return named(n, 'pool.in', 'Add', [x, n.constant('levels', [1, c, h, w], levels)]);
};

/** Output size of a window op along one axis (ONNX rules, ceil_mode included). */
function outSize(size: number, k: number, s: number, pb = 0, pe = 0, d = 1, ceil = false): number {
  const span = size + pb + pe - ((k - 1) * d + 1);
  let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  // A ceil-mode window must start inside the input or its begin padding.
  if (ceil && (out - 1) * s >= size + pb) out--;
  return out;
}

interface PoolSpec { kernel: [number, number]; strides: [number, number]; pads?: [number, number, number, number]; ceil?: boolean; dilations?: [number, number] }

function maxPoolCase(name: string, dims: Dims, p: PoolSpec, shared = false): Case {
  const [c, h, w] = dims;
  const pads = p.pads ?? [0, 0, 0, 0];
  const dil = p.dilations ?? [1, 1];
  const ho = outSize(h, p.kernel[0], p.strides[0], pads[0], pads[2], dil[0], p.ceil);
  const wo = outSize(w, p.kernel[1], p.strides[1], pads[1], pads[3], dil[1], p.ceil);
  const attrs: Attrs = { kernel_shape: p.kernel, strides: p.strides, pads };
  if (p.ceil) attrs.ceil_mode = 1;
  if (p.dilations) attrs.dilations = p.dilations;
  return {
    name, dtype: 'float32', dims,
    build: (n, x) => head(n, named(n, 'pool', 'MaxPool', [separated(n, x, dims)], attrs), c * ho * wo),
    guards: [{ kind: 'maxpool', input: 'pool.in', output: 'pool', kernel: p.kernel, strides: p.strides, pads: [pads[0], pads[1]], dilations: dil, shared }],
  };
}

function avgPoolCase(name: string, dims: Dims, p: PoolSpec, includePad: 0 | 1): Case {
  const [c, h, w] = dims;
  const pads = p.pads ?? [0, 0, 0, 0];
  const ho = outSize(h, p.kernel[0], p.strides[0], pads[0], pads[2], 1, p.ceil);
  const wo = outSize(w, p.kernel[1], p.strides[1], pads[1], pads[3], 1, p.ceil);
  const attrs: Attrs = { kernel_shape: p.kernel, strides: p.strides, pads, count_include_pad: includePad };
  if (p.ceil) attrs.ceil_mode = 1;
  return { name, dtype: 'float32', dims, build: (n, x) => head(n, named(n, 'pool', 'AveragePool', [x], attrs), c * ho * wo) };
}

/** A conv case: `out` is the conv's output [C,H,W] (checked by onnxruntime when the head's weights are sized). */
function convCase(name: string, dims: Dims, wDims: number[], attrs: Attrs, out: Dims, bias = true): Case {
  return { name, dtype: 'float32', dims, build: (n, x) => head(n, conv(n, x, 'c', wDims, attrs, bias), product(out)) };
}

/** x − 0.5 (named `pre`): centred so that a following kink sees both signs. */
const centred = (n: TinyNet, x: string) => named(n, 'pre', 'Sub', [x, n.b.scalar(0.5)]);
const square = (n: TinyNet, x: string) => n.b.op('Mul', [x, x]);
/** 1 + x², a denominator bounded away from zero */
const onePlusSquare = (n: TinyNet, x: string) => n.b.op('Add', [n.b.scalar(1), square(n, x)]);

// ---- the cases ----

const CONV: Case[] = [
  convCase('Conv 3×3 pad 1', [3, 8, 8], [4, 3, 3, 3], { pads: [1, 1, 1, 1] }, [4, 8, 8]),
  convCase('Conv 3×3 stride 2 pad 1 on an even size (output_padding 1)', [3, 8, 8], [4, 3, 3, 3], { pads: [1, 1, 1, 1], strides: [2, 2] }, [4, 4, 4]),
  convCase('Conv 3×3 stride 2 pad 1 on an odd size (output_padding 0)', [3, 9, 9], [4, 3, 3, 3], { pads: [1, 1, 1, 1], strides: [2, 2] }, [4, 5, 5]),
  convCase('Conv 2×2 stride 2 on an odd size (last row dropped, output_padding 1)', [3, 9, 9], [4, 3, 2, 2], { strides: [2, 2] }, [4, 4, 4]),
  convCase('Conv stride 2 on 7×10 (output_padding 0 along H, 1 along W)', [3, 7, 10], [4, 3, 3, 3], { pads: [1, 1, 1, 1], strides: [2, 2] }, [4, 4, 5]),
  convCase('Conv groups=2', [4, 7, 7], [6, 2, 3, 3], { pads: [1, 1, 1, 1], group: 2 }, [6, 7, 7]),
  convCase('Conv groups=2 stride 2', [4, 8, 8], [6, 2, 3, 3], { pads: [1, 1, 1, 1], group: 2, strides: [2, 2] }, [6, 4, 4]),
  convCase('Conv depthwise (groups=C)', [4, 7, 7], [4, 1, 3, 3], { pads: [1, 1, 1, 1], group: 4 }, [4, 7, 7]),
  convCase('Conv depthwise stride 2 (MobileNet)', [4, 8, 8], [4, 1, 3, 3], { pads: [1, 1, 1, 1], group: 4, strides: [2, 2] }, [4, 4, 4]),
  convCase('Conv depthwise with channel multiplier 2', [3, 6, 6], [6, 1, 3, 3], { pads: [1, 1, 1, 1], group: 3 }, [6, 6, 6]),
  convCase('Conv dilation 2', [3, 9, 9], [4, 3, 3, 3], { pads: [2, 2, 2, 2], dilations: [2, 2] }, [4, 9, 9]),
  convCase('Conv dilation 2 stride 2', [3, 9, 9], [4, 3, 3, 3], { pads: [1, 1, 1, 1], dilations: [2, 2], strides: [2, 2] }, [4, 4, 4]),
  convCase('Conv asymmetric pads', [3, 8, 8], [4, 3, 3, 3], { pads: [0, 1, 2, 1] }, [4, 8, 8]),
  convCase('Conv asymmetric pads stride 2', [3, 8, 8], [4, 3, 3, 3], { pads: [0, 1, 2, 0], strides: [2, 2] }, [4, 4, 4]),
  convCase('Conv 1×1 without bias', [3, 6, 6], [5, 3, 1, 1], {}, [5, 6, 6], false),
  convCase('Conv 1×1 stride 2 (output_padding 1)', [3, 8, 8], [4, 3, 1, 1], { strides: [2, 2] }, [4, 4, 4]),
  convCase('Conv 1×1 pad 1 (pad beyond the kernel: transposed-conv fallback at stride 1)', [3, 5, 5], [4, 3, 1, 1], { pads: [1, 1, 1, 1] }, [4, 7, 7]),
  convCase('Conv 3×1 kernel, strides [2,1]', [3, 8, 8], [4, 3, 3, 1], { pads: [1, 0, 1, 0], strides: [2, 1] }, [4, 4, 8]),
  convCase('Conv auto_pad SAME_UPPER', [3, 8, 8], [4, 3, 3, 3], { auto_pad: 'SAME_UPPER' }, [4, 8, 8]),
  convCase('Conv auto_pad SAME_UPPER 4×4 kernel (pads 1 before, 2 after)', [3, 7, 7], [4, 3, 4, 4], { auto_pad: 'SAME_UPPER' }, [4, 7, 7]),
  convCase('Conv auto_pad SAME_UPPER stride 2', [3, 8, 8], [4, 3, 3, 3], { auto_pad: 'SAME_UPPER', strides: [2, 2] }, [4, 4, 4]),
  convCase('Conv auto_pad SAME_LOWER stride 2', [3, 8, 8], [4, 3, 3, 3], { auto_pad: 'SAME_LOWER', strides: [2, 2] }, [4, 4, 4]),
  convCase('Conv auto_pad VALID stride 2', [3, 8, 8], [4, 3, 3, 3], { auto_pad: 'VALID', strides: [2, 2] }, [4, 3, 3]),
  convCase('Conv 7×7 stride 2 pad 3 (ResNet stem)', [3, 12, 12], [4, 3, 7, 7], { pads: [3, 3, 3, 3], strides: [2, 2] }, [4, 6, 6]),
  {
    name: 'Conv → BatchNorm → Relu → Conv (BN scale folded into the backward conv)', dtype: 'float32', dims: [3, 6, 6],
    build: (n, x) => {
      const bn = batchNorm(n, conv(n, x, 'c1', [4, 3, 3, 3], { pads: [1, 1, 1, 1] }, false), 'bn', 4);
      return head(n, conv(n, named(n, 'r', 'Relu', [bn]), 'c2', [3, 4, 3, 3], { pads: [1, 1, 1, 1] }), 3 * 36);
    },
    guards: [{ kind: 'relu', layer: 'bn' }],
  },
  {
    name: 'grouped Conv → BatchNorm (BN scale folded into a grouped backward conv)', dtype: 'float32', dims: [4, 6, 6],
    build: (n, x) => head(n, batchNorm(n, conv(n, x, 'c1', [6, 2, 3, 3], { pads: [1, 1, 1, 1], group: 2 }), 'bn', 6), 6 * 36),
  },
  {
    name: 'MobileNet block: depthwise Conv stride 2 → BatchNorm → Clip(0,6) → 1×1 Conv → BatchNorm', dtype: 'float32', dims: [4, 8, 8],
    build: (n, x) => {
      // Large γ and β = 3 spread the BN output over [0, 6] and past both ends, so both of Clip's kinks are exercised.
      const dw = batchNorm(n, conv(n, x, 'dw', [4, 1, 3, 3], { pads: [1, 1, 1, 1], group: 4, strides: [2, 2] }, false), 'dw.bn', 4, { gamma: [12, -12, 16, 20], beta: [3, 3, 3, 3] });
      const act = named(n, 'dw.relu6', 'Clip', [dw, n.b.scalar(0), n.b.scalar(6)]);
      return head(n, batchNorm(n, conv(n, act, 'pw', [6, 4, 1, 1], {}, false), 'pw.bn', 6), 6 * 16);
    },
    guards: [{ kind: 'clip', layer: 'dw.bn', lo: 0, hi: 6 }],
  },
  {
    name: 'Mul by a per-channel constant [1,C,1,1] feeding a Conv (folded into the forward conv)', dtype: 'float32', dims: [3, 6, 6],
    build: (n, x) => head(n, conv(n, named(n, 'scale', 'Mul', [x, n.weight('k', [1, 3, 1, 1], 2)]), 'c', [4, 3, 3, 3], { pads: [1, 1, 1, 1] }), 4 * 36),
  },
  {
    name: 'Add (ResNet residual: x + Relu(Conv(x)))', dtype: 'float32', dims: [3, 6, 6],
    build: (n, x) => head(n, named(n, 'res', 'Add', [x, named(n, 'res.relu', 'Relu', [conv(n, x, 'res.conv', [3, 3, 3, 3], { pads: [1, 1, 1, 1] })])]), 3 * 36),
    guards: [{ kind: 'relu', layer: 'res.conv' }],
  },
  {
    name: 'Concat along channels of two Conv branches (Inception)', dtype: 'float32', dims: [3, 6, 6],
    build: (n, x) => {
      const a = conv(n, x, 'b1', [2, 3, 1, 1], {});
      const b = conv(n, x, 'b3', [3, 3, 3, 3], { pads: [1, 1, 1, 1] });
      return head(n, named(n, 'cat', 'Concat', [a, b], { axis: 1 }), 5 * 36);
    },
  },
];

const POOL: Case[] = [
  maxPoolCase('MaxPool 3×3 stride 2 pad 1 (overlapping windows, as in ResNet), even size', [3, 8, 8], { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, true),
  maxPoolCase('MaxPool 3×3 stride 2 pad 1 (overlapping windows), odd size', [3, 9, 9], { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, true),
  maxPoolCase('MaxPool 2×2 stride 2', [3, 8, 8], { kernel: [2, 2], strides: [2, 2] }),
  maxPoolCase('MaxPool 2×2 stride 2 ceil_mode=1 on an odd size', [3, 7, 7], { kernel: [2, 2], strides: [2, 2], ceil: true }),
  maxPoolCase('MaxPool 3×3 stride 2 pad 1 ceil_mode=1 (last window overhangs the padding)', [3, 8, 8], { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil: true }, true),
  maxPoolCase('MaxPool 2×2 dilation 2 stride 1', [3, 8, 8], { kernel: [2, 2], strides: [1, 1], dilations: [2, 2] }, true),
  // Windows wider than the image: a window position in the padding has the same offset code (dy·W + dx) as a real
  // one, so both light up and the ConvTranspose must crop the one in the padding.
  maxPoolCase('MaxPool 3×3 stride 1 pad 1 on a 2×2 image', [3, 2, 2], { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1] }, true),
  avgPoolCase('AveragePool 2×2 stride 2', [3, 8, 8], { kernel: [2, 2], strides: [2, 2] }, 0),
  avgPoolCase('AveragePool 3×3 stride 2 pad 1, count_include_pad=0', [3, 7, 7], { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, 0),
  avgPoolCase('AveragePool 3×3 stride 2 pad 1, count_include_pad=1', [3, 7, 7], { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, 1),
  avgPoolCase('AveragePool asymmetric pads, count_include_pad=1', [3, 7, 7], { kernel: [3, 3], strides: [2, 2], pads: [0, 1, 1, 0] }, 1),
  avgPoolCase('AveragePool 3×3 stride 2 ceil_mode=1', [3, 8, 8], { kernel: [3, 3], strides: [2, 2], ceil: true }, 0),
  avgPoolCase('AveragePool ceil_mode=1 with pads, count_include_pad=0', [3, 8, 8], { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil: true }, 0),
  avgPoolCase('AveragePool ceil_mode=1 with pads, count_include_pad=1 (overhang past the padding not counted)', [3, 8, 8], { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil: true }, 1),
  { name: 'GlobalAveragePool', dtype: 'float32', dims: [4, 5, 5], build: (n, x) => head(n, named(n, 'pool', 'GlobalAveragePool', [x]), 4) },
  {
    name: 'GlobalAveragePool of a non-square map after a Conv', dtype: 'float32', dims: [3, 5, 7],
    build: (n, x) => head(n, named(n, 'pool', 'GlobalAveragePool', [conv(n, x, 'c', [6, 3, 3, 3], { pads: [1, 1, 1, 1] })]), 6),
  },
];

const D3: Dims = [3, 4, 4];
const F3 = 48;
const ELEMENTWISE: Case[] = [
  { name: 'Relu', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'act', 'Relu', [centred(n, x)]), F3), guards: [{ kind: 'relu', layer: 'pre' }] },
  {
    name: 'Clip(0,6) with min and max inputs (ReLU6)', dtype: 'float64', dims: D3,
    build: (n, x) => head(n, named(n, 'act', 'Clip', [named(n, 'pre', 'Mul', [n.b.op('Sub', [x, n.b.scalar(0.3)]), n.b.scalar(12)]), n.b.scalar(0), n.b.scalar(6)]), F3),
    guards: [{ kind: 'clip', layer: 'pre', lo: 0, hi: 6 }],
  },
  {
    name: 'Clip with only a min input', dtype: 'float64', dims: D3,
    build: (n, x) => head(n, named(n, 'act', 'Clip', [centred(n, x), n.b.scalar(0)]), F3),
    guards: [{ kind: 'clip', layer: 'pre', lo: 0, hi: Infinity }],
  },
  {
    name: 'Clip with only a max input (min omitted as \'\')', dtype: 'float64', dims: D3,
    build: (n, x) => head(n, named(n, 'act', 'Clip', [centred(n, x), '', n.b.scalar(0.1)]), F3),
    guards: [{ kind: 'clip', layer: 'pre', lo: -Infinity, hi: 0.1 }],
  },
  { name: 'BatchNormalization (inference, constant params)', dtype: 'float64', dims: D3, build: (n, x) => head(n, batchNorm(n, x, 'bn', 3), F3) },
  { name: 'Add (same shape, both operands input-dependent)', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'add', 'Add', [x, square(n, x)]), F3) },
  { name: 'Add (broadcast against a [1,C,1,1] constant)', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'add', 'Add', [square(n, x), n.weight('k', [1, 3, 1, 1])]), F3) },
  {
    name: 'Add (broadcast of an input-dependent [N,C,1,1] operand)', dtype: 'float64', dims: D3,
    build: (n, x) => head(n, named(n, 'add', 'Add', [x, square(n, n.b.op('ReduceMean', [x], { axes: [2, 3], keepdims: 1 }))]), F3),
  },
  {
    name: 'Add (residual x + f(x), both branches input-dependent)', dtype: 'float64', dims: D3,
    build: (n, x) => head(n, named(n, 'res', 'Add', [x, n.b.op('Relu', [named(n, 'res.pre', 'Mul', [centred(n, x), n.weight('k', [1, 3, 4, 4], 2)])])]), F3),
    guards: [{ kind: 'relu', layer: 'res.pre' }],
  },
  { name: 'Mul (both operands input-dependent)', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'mul', 'Mul', [x, n.b.op('Sub', [x, n.b.scalar(0.3)])]), F3) },
  { name: 'Mul (broadcast constant [1,C,1,1])', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'mul', 'Mul', [square(n, x), n.weight('k', [1, 3, 1, 1], 2)]), F3) },
  {
    name: 'Mul (squeeze-excitation: x ⊙ Sigmoid(mean over H,W), broadcast [N,C,1,1])', dtype: 'float64', dims: D3,
    build: (n, x) => head(n, named(n, 'mul', 'Mul', [x, n.b.op('Sigmoid', [n.b.op('Mul', [n.b.op('ReduceMean', [x], { axes: [2, 3], keepdims: 1 }), n.weight('se', [1, 3, 1, 1], 4)])])]), F3),
  },
  { name: 'Sub (both operands input-dependent)', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'sub', 'Sub', [square(n, x), x]), F3) },
  { name: 'Sub (broadcast constant [1,C,1,1] minus the input)', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'sub', 'Sub', [n.weight('k', [1, 3, 1, 1]), square(n, x)]), F3) },
  { name: 'Div (input-dependent numerator and denominator 1 + x²)', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'div', 'Div', [x, onePlusSquare(n, x)]), F3) },
  { name: 'Div (constant over an input-dependent denominator)', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'div', 'Div', [n.weight('k', [1, 3, 4, 4]), onePlusSquare(n, x)]), F3) },
  {
    name: 'Div by a broadcast input-dependent [N,1,1,1] denominator (1 + mean x², layer-norm-like)', dtype: 'float64', dims: D3,
    build: (n, x) => head(n, named(n, 'div', 'Div', [x, n.b.op('Add', [n.b.scalar(1), n.b.op('ReduceMean', [square(n, x)], { axes: [1, 2, 3], keepdims: 1 })])]), F3),
  },
  { name: 'Neg', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'neg', 'Neg', [square(n, x)]), F3) },
  { name: 'Sigmoid', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'act', 'Sigmoid', [n.b.op('Mul', [centred(n, x), n.b.scalar(4)])]), F3) },
  { name: 'Tanh', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'act', 'Tanh', [n.b.op('Mul', [centred(n, x), n.b.scalar(4)])]), F3) },
  { name: 'Softmax over channels (axis 1)', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'sm', 'Softmax', [n.b.op('Mul', [x, n.b.scalar(4)])], { axis: 1 }), F3) },
  { name: 'Softmax over the last axis (default axis)', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'sm', 'Softmax', [n.b.op('Mul', [x, n.b.scalar(4)])]), F3) },
  { name: 'LogSoftmax over channels', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'lsm', 'LogSoftmax', [n.b.op('Mul', [x, n.b.scalar(4)])], { axis: 1 }), F3) },
  { name: 'Identity', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'id', 'Identity', [square(n, x)]), F3) },
  { name: 'Dropout (inference: the identity)', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'drop', 'Dropout', [square(n, x)]), F3) },
];

const SHAPE: Case[] = [
  { name: 'Flatten (axis 1) into a Gemm', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'flat', 'Flatten', [square(n, x)], { axis: 1 }), F3) },
  {
    name: 'Flatten (axis 2, batch and channels merged) then Reshape back', dtype: 'float64', dims: D3,
    build: (n, x) => head(n, named(n, 'back', 'Reshape', [named(n, 'flat', 'Flatten', [square(n, x)], { axis: 2 }), n.b.int64Const('shape', [-1, F3])]), F3),
  },
  { name: 'Reshape (0 and −1 in the shape)', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'rs', 'Reshape', [square(n, x), n.b.int64Const('shape', [0, 6, -1])]), F3) },
  {
    name: 'Unsqueeze then Squeeze (axes as inputs)', dtype: 'float64', dims: D3,
    build: (n, x) => head(n, named(n, 'sq', 'Squeeze', [n.b.op('Mul', [n.b.op('Unsqueeze', [x, n.b.int64Const('axes', [2])]), n.weight('k', [1, 3, 1, 4, 4])]), n.b.int64Const('axes', [2])]), F3),
  },
  { name: 'Transpose (NCHW → NHWC)', dtype: 'float64', dims: [2, 3, 4], build: (n, x) => head(n, named(n, 't', 'Transpose', [n.b.op('Mul', [x, n.weight('k', [1, 2, 3, 4])])], { perm: [0, 2, 3, 1] }), 24) },
  {
    name: 'Transpose with the default perm (all axes reversed) and back', dtype: 'float64', dims: [2, 3, 4],
    build: (n, x) => head(n, named(n, 't2', 'Transpose', [n.b.op('Mul', [named(n, 't1', 'Transpose', [x]), n.weight('k', [4, 3, 2, 1])])]), 24),
  },
  { name: 'Concat along channels of two input-dependent branches', dtype: 'float64', dims: [2, 3, 3], build: (n, x) => head(n, named(n, 'cat', 'Concat', [n.b.op('Mul', [x, n.weight('k', [1, 2, 3, 3])]), square(n, x)], { axis: 1 }), 36) },
  {
    name: 'Concat along H with a non-differentiable (shape-expanded constant) input in the middle', dtype: 'float64', dims: [2, 3, 3],
    build: (n, x) => {
      const b = n.b;
      const batch = b.op('Slice', [b.op('Shape', [x]), b.int64Const('start', [0]), b.int64Const('end', [1])]);
      const filler = b.op('Expand', [n.weight('filler', [1, 2, 2, 3]), b.op('Concat', [batch, b.int64Const('rest', [2, 2, 3])], { axis: 0 })]);
      return head(n, named(n, 'cat', 'Concat', [x, filler, square(n, x)], { axis: 2 }), 2 * 8 * 3);
    },
  },
  { name: 'Concat of the same tensor twice (negative axis)', dtype: 'float64', dims: [2, 3, 3], build: (n, x) => head(n, named(n, 'cat', 'Concat', [square(n, x), square(n, x)], { axis: -3 }), 36) },
  { name: 'ReduceMean over C and W, keepdims=0', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'rm', 'ReduceMean', [square(n, x)], { axes: [1, 3], keepdims: 0 }), 4) },
  { name: 'ReduceSum (axes as an input, keepdims=1)', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'rs', 'ReduceSum', [square(n, x), n.b.int64Const('axes', [2])], { keepdims: 1 }), 12) },
];

// Gemm on a [N,K] input: A is the flattened input (transposed first when transA=1), B a weight in the layout trans
// asks for; α and β ≠ 1 so a rule that drops either is caught.
const K = 12;
const M = 6;
const gemmVariant = (transA: 0 | 1, transB: 0 | 1): Case => ({
  name: `Gemm transA=${transA} transB=${transB}, α=0.7 β=1.3, constant C [M] (broadcast)`, dtype: 'float64', dims: [2, 2, 3],
  build: (n, x) => {
    const flat = n.b.op('Tanh', [n.b.op('Flatten', [x], { axis: 1 })]); // [N,K]
    const a = transA ? n.b.op('Transpose', [flat], { perm: [1, 0] }) : flat;
    const w = n.weight('w', transB ? [M, K] : [K, M], 0.5);
    return head(n, n.b.op('Tanh', [named(n, 'fc', 'Gemm', [a, w, n.weight('c', [M])], { transA, transB, alpha: float(0.7), beta: float(1.3) })]), M);
  },
});

const LINEAR: Case[] = [
  {
    name: 'Gemm transB=1 (torchvision classifier) between two nonlinearities', dtype: 'float64', dims: D3,
    build: (n, x) => head(n, n.b.op('Tanh', [named(n, 'fc', 'Gemm', [n.b.op('Flatten', [square(n, x)], { axis: 1 }), n.weight('fc.weight', [M, F3], 0.3), n.weight('fc.bias', [M])], { transB: 1 })]), M),
  },
  gemmVariant(0, 0), gemmVariant(0, 1), gemmVariant(1, 0), gemmVariant(1, 1),
  {
    name: 'Gemm with the input as B and an input-dependent C (transA=1, transB=1, α and β ≠ 1)', dtype: 'float64', dims: [2, 2, 3],
    build: (n, x) => {
      const flat = n.b.op('Flatten', [x], { axis: 1 }); // [N,K]
      const c = n.b.op('Transpose', [n.b.op('Mul', [flat, flat])], { perm: [1, 0] }); // [K,N], depends on the input
      // y = 0.6·Wᵀ·flatᵀ + 1.4·C: A = W [K,K] read transposed, B = flat [N,K] read transposed → [K,N]
      const y = named(n, 'fc', 'Gemm', [n.weight('w', [K, K], 0.5), flat, c], { transA: 1, transB: 1, alpha: float(0.6), beta: float(1.4) });
      return head(n, n.b.op('Transpose', [y], { perm: [1, 0] }), K);
    },
  },
  {
    name: 'MatMul (batched, both operands input-dependent)', dtype: 'float64', dims: [2, 3, 3],
    build: (n, x) => head(n, named(n, 'mm', 'MatMul', [x, n.b.op('Transpose', [square(n, x)], { perm: [0, 1, 3, 2] })]), 18),
  },
  { name: 'MatMul by a constant [W,K] (broadcast over N and C)', dtype: 'float64', dims: [2, 3, 4], build: (n, x) => head(n, named(n, 'mm', 'MatMul', [square(n, x), n.weight('w', [4, 5])]), 30) },
  { name: 'MatMul of a constant [C,H\',H] by the input', dtype: 'float64', dims: [2, 3, 4], build: (n, x) => head(n, named(n, 'mm', 'MatMul', [n.weight('w', [2, 5, 3]), square(n, x)]), 40) },
  {
    name: 'MatMul with an input-dependent operand broadcast over channels ([N,C,H,W]·[N,1,W,H])', dtype: 'float64', dims: [2, 3, 3],
    build: (n, x) => head(n, named(n, 'mm', 'MatMul', [x, n.b.op('Transpose', [n.b.op('ReduceMean', [square(n, x)], { axes: [1], keepdims: 1 })], { perm: [0, 1, 3, 2] })]), 18),
  },
];

describe('op gradients against central finite differences', () => {
  it.each([...CONV, ...POOL, ...ELEMENTWISE, ...SHAPE, ...LINEAR])('$name ($dtype)', async (c) => {
    await expectGradientMatches(c);
  });
});

// ---- objectives ----

// float32: the realistic body (Conv → Relu → dense head).
const convBody = (n: TinyNet, x: string) => head(n, named(n, 'block.relu', 'Relu', [conv(n, x, 'block.conv', [4, 3, 3, 3], { pads: [1, 1, 1, 1] })]), 4 * 36);
// float64: the same structure with double kernels only: a 1×1 "conv" written as NHWC MatMul (channel mixing).
const mixBody = (n: TinyNet, x: string) => {
  const nhwc = n.b.op('Transpose', [x], { perm: [0, 2, 3, 1] });
  const mixed = named(n, 'block.conv', 'Transpose', [n.b.op('MatMul', [nhwc, n.weight('mix', [3, 4])])], { perm: [0, 3, 1, 2] });
  const pre = named(n, 'block.pre', 'Sub', [mixed, n.constant('offset', [1, 4, 1, 1], [0.2, 0, -0.1, 0.1])]);
  return head(n, named(n, 'block.relu', 'Relu', [pre]), 4 * 36);
};

const OBJECTIVES: [string, Objective][] = [
  ['cross-entropy with labels', crossEntropy()],
  ['logit of class 2', logit(2)],
  ['logit of each image\'s label', logit('label')],
  ['margin of class 4', margin(4)],
  ['margin of each image\'s label, negated', scale(margin('label'), -1)],
  ['channel mean of block.conv', channel('block.conv', 1)],
  ['channel mean of block.relu', channel('block.relu', 2)],
  ['channel of a [N,K] layer (head)', channel('head', 3)],
  ['one neuron of block.relu', neuron('block.relu', 2, 3, 4)],
  ['one corner neuron of block.conv', neuron('block.conv', 0, 0, 5)],
  ['weighted sum: CE − 0.5·channel(block.conv, 1)', sum(crossEntropy(), scale(channel('block.conv', 1), -0.5))],
  ['two terms on one tensor: channel 0 + 2·channel 3 of block.conv', sum(channel('block.conv', 0), scale(channel('block.conv', 3), 2))],
  ['three layers at once: logit(0) + neuron(block.relu) − 0.3·CE', sum(logit(0), neuron('block.relu', 1, 2, 2), scale(crossEntropy(), -0.3))],
];

describe('objectives against central finite differences', () => {
  it.each(OBJECTIVES)('%s (float32, Conv body)', async (name, objective) => {
    await expectGradientMatches({ name, dtype: 'float32', dims: [3, 6, 6], build: convBody, objective, guards: [{ kind: 'relu', layer: 'block.conv' }] });
  });
  it.each(OBJECTIVES)('%s (float64, MatMul body)', async (name, objective) => {
    await expectGradientMatches({ name, dtype: 'float64', dims: [3, 6, 6], build: mixBody, objective, guards: [{ kind: 'relu', layer: 'block.pre' }] });
  });
});

// Lucent's diversity couples the images of a batch (N = 2 here, pair weight 1/N off the diagonal as Lucent), so its
// gradient for one image depends on the other: the finite differences move both images at once.
describe('diversity (Gram-matrix cosine) against central finite differences', () => {
  const pairs = [0, 0.5, 0.5, 0];
  it.each([
    ['diversity of block.relu', diversity('block.relu', 'pairs', N)],
    ['channel(block.relu, 1) + 100·diversity(block.relu)', sum(channel('block.relu', 1), scale(diversity('block.relu', 'pairs', N), 100))],
  ] as [string, Objective][])('%s (float64, MatMul body; float32, Conv body)', async (name, objective) => {
    await expectGradientMatches({ name, dtype: 'float64', dims: [3, 6, 6], build: mixBody, objective, guards: [{ kind: 'relu', layer: 'block.pre' }], inputs: { pairs: Float64Array.from(pairs) } });
    await expectGradientMatches({ name, dtype: 'float32', dims: [3, 6, 6], build: convBody, objective, guards: [{ kind: 'relu', layer: 'block.conv' }], inputs: { pairs: Float32Array.from(pairs) } });
  });
});

// ---- which ops are on the path ----

describe('ops on and off the differentiated path', () => {
  // Between the input and the logits: the gradient cannot be computed and the error must say which node is to blame.
  it.each([
    ['Erf', {}],
    ['LRN', { size: 3 }],
  ] as [string, Attrs][])('an unsupported %s on the path is an error naming the op and the node', async (op, attrs) => {
    const bytes = tinyModel(FLOAT, [2, 3, 3], (n, x) => head(n, named(n, 'odd.op', op, [conv(n, x, 'c', [2, 2, 1, 1])], attrs), 18));
    const model = await DifferentiableModel.fromBytes(bytes, { name: 'x', dims: [2, 3, 3] });
    const px = new Float32Array(36).fill(0.3);
    // The forward pass is fine: only differentiation needs a rule.
    expect((await model.forward(px)).logits).toHaveLength(10);
    await expect(model.gradient(px, crossEntropy(), LABELS)).rejects.toThrow(new RegExp(`cannot differentiate ${op} node 'odd\\.op': no gradient rule for op '${op}'\\. Supported ops: .*Conv`));
    // Also when the objective reads a layer after it.
    await expect(model.gradient(px, channel('head', 0))).rejects.toThrow(/cannot differentiate .* node 'odd\.op'/);
    await model.release();
  });

  // Off the path the unsupported op must be ignored, and the gradient must still be right (checked numerically).
  const offPath: Case[] = [
    {
      name: 'an Erf on a side branch that only feeds a second model output', dtype: 'float32', dims: [2, 3, 3],
      build: (n, x) => {
        n.outputs.push(named(n, 'side.erf', 'Erf', [x]));
        return head(n, n.b.op('Mul', [x, x]), 18);
      },
    },
    {
      name: 'an Erf after the layer the objective reads', dtype: 'float32', dims: [2, 3, 3],
      build: (n, x) => head(n, named(n, 'late.erf', 'Erf', [conv(n, x, 'block.conv', [3, 2, 3, 3], { pads: [1, 1, 1, 1] })]), 27),
      objective: sum(channel('block.conv', 1), scale(neuron('block.conv', 2, 1, 0), 0.5)),
    },
    {
      // float32: onnxruntime has no double Erf kernel.
      name: 'an Erf whose output only feeds Shape → Gather → Concat → Reshape (int path, as exporters write flatten)', dtype: 'float32', dims: [2, 3, 3],
      build: (n, x) => {
        const b = n.b;
        const batch = b.op('Gather', [b.op('Shape', [named(n, 'side.erf', 'Erf', [x])]), b.int64Const('zero', [0])], { axis: 0 });
        const flat = b.op('Reshape', [square(n, x), b.op('Concat', [batch, b.int64Const('rest', [-1])], { axis: 0 })]);
        return named(n, 'head', 'Gemm', [flat, n.weight('head.weight', [5, 18], 0.3)], { transB: 1 });
      },
    },
  ];
  it.each(offPath)('$name is ignored ($dtype)', async (c) => {
    await expectGradientMatches(c);
  });
});

// ---- bad objectives ----

describe('objective errors', () => {
  const bytes = () => tinyModel(FLOAT, [3, 6, 6], convBody);
  it.each([
    ['a channel index past the end', channel('block.conv', 4), /channel of layer 'block\.conv' 4 is out of range: must be an integer in \[0, 3\]/],
    ['a negative channel index', channel('block.relu', -1), /channel of layer 'block\.relu' -1 is out of range/],
    ['a fractional channel index', channel('block.conv', 1.5), /channel of layer 'block\.conv' 1\.5 is out of range/],
    ['a neuron row past the end', neuron('block.conv', 0, 6, 0), /row of layer 'block\.conv' 6 is out of range: must be an integer in \[0, 5\]/],
    ['a neuron on a layer without spatial axes', neuron('head', 0, 0, 0), /neuron objectives need a \[N,C,H,W\] layer; 'head'/],
    ['a class past the end', logit(5), /class 5 is out of range: must be an integer in \[0, 4\]/],
    ['an unknown layer', channel('block.nope', 0), /no layer named 'block\.nope' \(did you mean: .*block\.conv/],
  ] as [string, Objective, RegExp][])('%s is a clear error', async (_what, objective, message) => {
    const model = await DifferentiableModel.fromBytes(bytes(), { name: 'x', dims: [3, 6, 6] });
    await expect(model.gradient(new Float32Array(2 * 108).fill(0.5), objective, LABELS)).rejects.toThrow(message);
    await model.release();
  });
});

// ---- batch independence ----

describe('batch independence', () => {
  const nets: [string, 'float32' | 'float64', Dims, (n: TinyNet, x: string) => string, number][] = [
    ['Conv, BatchNorm, Relu, MaxPool, AveragePool', 'float32', [3, 8, 8], (n, x) => {
      const r = named(n, 'r', 'Relu', [batchNorm(n, conv(n, x, 'c', [4, 3, 3, 3], { pads: [1, 1, 1, 1] }, false), 'bn', 4)]);
      const p = named(n, 'mp', 'MaxPool', [r], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
      return head(n, named(n, 'ap', 'AveragePool', [conv(n, p, 'c2', [4, 4, 3, 3], { pads: [1, 1, 1, 1], strides: [2, 2] })], { kernel_shape: [2, 2], strides: [2, 2] }), 4);
    }, 1e-6],
    ['MatMul, BatchNorm, Relu, Softmax, Concat, Div', 'float64', [3, 4, 4], (n, x) => {
      const r = named(n, 'r', 'Relu', [batchNorm(n, mixBody3(n, x), 'bn', 3)]);
      const s = named(n, 's', 'Softmax', [r], { axis: 1 });
      return head(n, named(n, 'cat', 'Concat', [s, n.b.op('Div', [x, onePlusSquare(n, r)])], { axis: 1 }), 96);
    }, 1e-13],
  ];
  it.each(nets)('an image has the same gradient alone and in a batch of 2: %s (%s)', async (_name, dtype, dims, build, tol) => {
    const model = await DifferentiableModel.fromBytes(tinyModel(dtype === 'float64' ? DOUBLE : FLOAT, dims, build), { name: 'x', dims });
    const per = product(dims);
    const rand = seeded(5);
    const make = (len: number, f: (i: number) => number): Pixels => (dtype === 'float64' ? Float64Array.from({ length: len }, (_, i) => f(i)) : Float32Array.from({ length: len }, (_, i) => f(i)));
    const a = make(per, () => rand());
    const b = make(per, () => rand());
    const pair = (first: Pixels, second: Pixels) => { const p = make(2 * per, () => 0); p.set(first); p.set(second, per); return p; };
    for (const objective of [crossEntropy(), sum(channel('r', 1), scale(margin('label'), 0.5))]) {
      const alone = await model.gradient(b, objective, [2]);
      const after = await model.gradient(pair(a, b), objective, [4, 2]);
      const before = await model.gradient(pair(b, a), objective, [2, 4]);
      const gNorm = norm(alone.grad);
      expect(gNorm).toBeGreaterThan(0);
      const diff = (g: ArrayLike<number>, offset: number) => Math.max(...Array.from(alone.grad, (v, i) => Math.abs(v - g[offset + i]))) / (gNorm / Math.sqrt(per));
      expect(diff(after.grad, per), 'second in a batch').toBeLessThan(tol);
      expect(diff(before.grad, 0), 'first in a batch').toBeLessThan(tol);
      expect(Math.abs(after.objective[1] - alone.objective[0])).toBeLessThan(tol * Math.max(1, Math.abs(alone.objective[0])));
      expect(Math.abs(before.objective[0] - alone.objective[0])).toBeLessThan(tol * Math.max(1, Math.abs(alone.objective[0])));
      // And the other image really is different, so the comparison is not between two copies of one gradient.
      expect(diff(after.grad, 0)).toBeGreaterThan(1e-3);
    }
    await model.release();
  });
});

/** A channel-mixing layer [N,3,H,W] → [N,3,H,W] from double kernels only (Transpose, MatMul). */
function mixBody3(n: TinyNet, x: string): string {
  const nhwc = n.b.op('Transpose', [x], { perm: [0, 2, 3, 1] });
  return n.b.op('Transpose', [n.b.op('MatMul', [nhwc, n.weight('mix3', [3, 3])])], { perm: [0, 3, 1, 2] });
}

// ---- the check itself can fail ----

describe('the finite-difference check', () => {
  // The tolerances above are only meaningful if a slightly wrong gradient fails them. Feed the comparison a gradient
  // that is wrong in a realistic way and make sure it is rejected.
  it('rejects a float64 gradient with one image scaled by 1 + 1e-4, and one with the two images swapped', async () => {
    const c: Case = { name: 'meta', dtype: 'float64', dims: D3, build: (n, x) => head(n, named(n, 'act', 'Tanh', [square(n, x)]), F3) };
    const model = await DifferentiableModel.fromBytes(tinyModel(DOUBLE, c.dims, c.build), { name: 'x', dims: c.dims });
    const rand = seeded(3);
    const x = Float64Array.from({ length: 2 * F3 }, () => 0.1 + 0.8 * rand());
    const { grad } = await model.gradient(x, crossEntropy(), LABELS);
    const h = SETTINGS.float64.h;
    const f = async (p: Float64Array) => Array.from((await model.gradient(p, crossEntropy(), LABELS)).objective).reduce((s, v) => s + v, 0);
    const v = Float64Array.from({ length: 2 * F3 }, () => 2 * rand() - 1);
    const numeric = ((await f(x.map((xi, i) => xi + h * v[i]))) - (await f(x.map((xi, i) => xi - h * v[i])))) / (2 * h);
    const typical = (norm(grad) * norm(v)) / Math.sqrt(2 * F3);
    const relErr = (g: ArrayLike<number>) => {
      const analytic = Array.from(g).reduce((s, gi, i) => s + gi * v[i], 0);
      return Math.abs(numeric - analytic) / Math.max(Math.abs(analytic), typical);
    };
    expect(relErr(grad)).toBeLessThan(SETTINGS.float64.tol);
    expect(relErr(grad.map((g, i) => (i >= F3 ? g * (1 + 1e-4) : g)))).toBeGreaterThan(SETTINGS.float64.tol);
    expect(relErr(Float64Array.from(grad, (_, i) => grad[(i + F3) % (2 * F3)]))).toBeGreaterThan(SETTINGS.float32.tol);
    await model.release();
  });
});

// ---- regressions: bugs these tests found in src/, kept so they stay fixed ----

describe('regressions', () => {
  // Was a bug (src/compute/autodiff/fold-channel-scales.ts): foldChannelScales folded *any* Mul(g, k[1,C,1,1]) feeding a Conv
  // into the conv's weights and rewired the conv to read g, including a forward Mul that broadcasts g from 1 channel
  // to C: onnxruntime then failed ("Input channels C is not equal to kernel channels * group"). Now only the Muls the
  // backward pass emitted are folded.
  it('Mul broadcasting one channel to three, feeding a Conv (float32)', async () => {
    await expectGradientMatches({
      name: 'Mul [N,1,H,W] ⊙ [1,3,1,1] → Conv', dtype: 'float32', dims: [1, 6, 6],
      build: (n, x) => head(n, conv(n, named(n, 'gray2rgb', 'Mul', [x, n.weight('k', [1, 3, 1, 1], 2)]), 'c', [4, 3, 3, 3], { pads: [1, 1, 1, 1] }), 4 * 36),
    });
  });

  // Was a bug (src/compute/onnx/opset.ts): upgradeOpset lifted opset 11/12 models to 13 by rewriting the import only, but
  // Softmax (and LogSoftmax, Hardmax) changed meaning at 13: before, axis=1 flattened [N,C,H,W] to [N, C·H·W] and
  // normalised over all of it; from 13 it normalises over axis 1 alone (and the default axis went from 1 to −1). A
  // lifted model computes a different function than the file, so every gradient is the gradient of the wrong model.
  it('an opset-11 Softmax(axis=1) on [N,C,H,W] keeps its meaning when the model is lifted to opset 13', async () => {
    const dims: Dims = [3, 2, 2];
    const bytes = tinyModel(FLOAT, dims, (n, x) => head(n, named(n, 'sm', 'Softmax', [x], { axis: 1 }), 12), 1, 11);
    const px = Float32Array.from({ length: 24 }, (_, i) => (i * 0.37) % 1);
    const session = await ort.InferenceSession.create(bytes);
    const direct = Object.values(await session.run({ x: new ort.Tensor('float32', px, [2, ...dims]) }))[0].data as Float32Array;
    await session.release();
    const model = await DifferentiableModel.fromBytes(bytes, { name: 'x', dims });
    const lifted = (await model.forward(px)).logits!;
    await model.release();
    for (let i = 0; i < direct.length; i++) expect(lifted[i]).toBeCloseTo(direct[i], 5);
  });
});
