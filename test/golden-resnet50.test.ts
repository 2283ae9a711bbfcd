// Agreement with PyTorch (float64) on torchvision's ResNet-50 graph: forward, input gradients and PGD.
// The bounds are the issue's: they separate float32 rounding (PyTorch's own float32 run: 1e-6 to 3e-3) from wrong
// math (errors near 1).
import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { devicePgd } from '../src/compute/attacks/device-pgd.ts';
import { pgd } from '../src/compute/attacks/pgd.ts';
import { channel, crossEntropy } from '../src/compute/autodiff/objectives.ts';
import { readNpy, toFloat32 } from '../src/compute/io/npy.ts';
import { DifferentiableModel } from '../src/compute/model/differentiable-model.ts';
import { relativeL2, shared } from './helpers/shared.ts';

const golden = (f: string) => shared('golden', 'resnet50-random', f);
const LABELS = [356, 867];
const TARGETS = [867, 356];
const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

let model: DifferentiableModel;
let x: Float32Array;

async function load(name: string): Promise<Float64Array> {
  return Float64Array.from(toFloat32OrF64(await readNpy(golden(name))));
}
function toFloat32OrF64(a: Awaited<ReturnType<typeof readNpy>>): ArrayLike<number> {
  return a.dtype === 'float64' ? (a.data as Float64Array) : toFloat32(a);
}

function crossEntropyOf(logits: ArrayLike<number>, labels: number[]): number[] {
  const k = logits.length / labels.length;
  return labels.map((label, n) => {
    let max = -Infinity;
    for (let j = 0; j < k; j++) max = Math.max(max, logits[n * k + j]);
    let s = 0;
    for (let j = 0; j < k; j++) s += Math.exp(logits[n * k + j] - max);
    return max + Math.log(s) - logits[n * k + label];
  });
}

function argmaxRows(logits: ArrayLike<number>, n: number): number[] {
  const k = logits.length / n;
  return Array.from({ length: n }, (_, i) => {
    let best = 0;
    for (let j = 1; j < k; j++) if (logits[i * k + j] > logits[i * k + best]) best = j;
    return best;
  });
}

describe('ResNet-50 graph against PyTorch float64', () => {
  beforeAll(async () => {
    const bytes = await readFile(shared('models', 'resnet50-random.onnx'));
    model = await DifferentiableModel.fromBytes(bytes, { name: 'input', dims: [3, 224, 224], normalization: IMAGENET });
    x = toFloat32(await readNpy(golden('input.npy')));
  });

  it('forward: logits and activations', async () => {
    const r = await model.forward(x, ['layer3.2.conv3', 'layer4.2']);
    expect(relativeL2(r.logits!, await load('logits.npy'))).toBeLessThan(1e-4);
    expect(relativeL2(r.activations.get('layer3.2.conv3')!.data, await load('act_layer3.2.conv3.npy'))).toBeLessThan(1e-4);
    const block = r.activations.get('layer4.2')!;
    const [n, c, h, w] = block.dims;
    const means = new Float64Array(n * c);
    for (let i = 0; i < n * c; i++) {
      let s = 0;
      for (let j = 0; j < h * w; j++) s += block.data[i * h * w + j];
      means[i] = s / (h * w);
    }
    expect(relativeL2(means, await load('act_layer4.2_mean.npy'))).toBeLessThan(1e-4);
  });

  it('input gradient of the summed cross-entropy', async () => {
    const r = await model.gradient(x, crossEntropy(), LABELS);
    const err = relativeL2(r.grad, await load('grad_ce.npy'));
    console.log(`grad_ce relative L2 error ${err.toExponential(2)}`);
    // Measured 2.95e-3 on AVX-512 and 2.58e-3 under qemu's Haswell (AVX2), PyTorch's own float32 run 3e-3: float32
    // rounding, which each CPU's kernels do their own way. 1e-2 leaves 3×; wrong math gives errors near 1.
    expect(err).toBeLessThan(1e-2);
    const ce = crossEntropyOf(await load('logits.npy'), LABELS);
    r.objective.forEach((v, i) => expect(v).toBeCloseTo(ce[i], 3));
  });

  it('input gradient of the spatial mean of layer3.2.conv3 channel 471', async () => {
    const r = await model.gradient(x, channel('layer3.2.conv3', 471));
    const err = relativeL2(r.grad, await load('grad_channel_layer3.2.conv3_471.npy'));
    console.log(`channel gradient relative L2 error ${err.toExponential(2)}`);
    // Measured 9.6e-4 on AVX-512: the same 1e-2 leaves 10×.
    expect(err).toBeLessThan(1e-2);
  });

  it('PGD, the first step: the sign of PyTorch\'s gradient on all but a few near-zero components', async () => {
    // One step is not chaotic: x + α·sign(∂CE/∂x) from the float64 gradient, clipped to [0, 1]. Only components whose
    // float32 gradient is within rounding of zero may take the other sign (measured: 99.973 % of pixels equal on
    // AVX-512, 99.958 % under qemu's Haswell; a step of 2/255, or of the opposite sign, would leave equal only the
    // pixels that clip at 0 or 1).
    const run = await devicePgd(model, x, [2, 3, 224, 224], Int32Array.from(LABELS), { norm: 'linf', eps: 4 / 255, alpha: 1 / 255, steps: 1, targeted: false });
    const g = await load('grad_ce.npy');
    let equal = 0;
    for (let i = 0; i < g.length; i++) if (Math.abs(run.adv[i] - Math.min(1, Math.max(0, x[i] + Math.sign(g[i]) / 255))) < 1e-5) equal++;
    expect(equal / g.length).toBeGreaterThan(0.999);
  });

  for (const [kind, targeted, labels, where] of [
    ['untargeted', false, LABELS, 'host'], ['targeted', true, TARGETS, 'host'],
    ['untargeted', false, LABELS, 'graph'], ['targeted', true, TARGETS, 'graph'],
  ] as const) {
    it(`PGD ${kind}, 5 steps of 1/255 within 4/255, update on the ${where}, reproduces PyTorch`, async () => {
      const opts = { norm: 'linf', eps: 4 / 255, alpha: 1 / 255, steps: 5, targeted } as const;
      // 'host' is pgd.ts's loop; 'graph' is the attack path of the pipeline and CLI (the step inside onnxruntime).
      const run = where === 'graph'
        ? await devicePgd(model, x, [2, 3, 224, 224], Int32Array.from(labels), opts)
        : await pgd(
          async (xs, ls) => {
            const r = await model.gradient(xs, crossEntropy(), ls);
            return { loss: r.objective as Float32Array, grad: r.grad as Float32Array, logits: r.logits as Float32Array };
          },
          x, [2, 3, 224, 224], Int32Array.from(labels), opts,
        );
      const ref = await load(`pgd_${kind}.npy`);
      const refLogits = await load(`pgd_${kind}_logits.npy`);
      expect(argmaxRows(run.logits, 2)).toEqual(argmaxRows(refLogits, 2));
      const ours = crossEntropyOf(run.logits, [...labels]);
      const theirs = crossEntropyOf(refLogits, [...labels]);
      ours.forEach((v, i) => expect(Math.abs(v - theirs[i]) / theirs[i]).toBeLessThan(0.005));
      let equal = 0;
      for (let i = 0; i < ref.length; i++) if (Math.abs(run.adv[i] - ref[i]) < 1e-5) equal++;
      const fraction = equal / ref.length;
      console.log(`PGD ${kind} (${where}): ${(100 * fraction).toFixed(1)} % of pixels equal, CE ${ours.map((v) => v.toFixed(4))} vs ${theirs.map((v) => v.toFixed(4))}`);
      // After 5 steps this measures chaos more than correctness. The first step's gradient signs agree on 99.97 % of
      // pixels (tested above); the 0.03 % that flip (|g| ~ 1e-6, float32 ReLU masks) move the trajectory, which is
      // chaotic on this random network: two float32 runs of our own that differ only in onnxruntime's kernels
      // (optimization level all vs basic) agree on 66 % of pixels after 5 steps, PyTorch's float32 run on 77 %, and
      // which float32 kernels a CPU has (AVX-512 or AVX2) is such a difference. Measured (graph update): 73.2 %
      // untargeted and 68.2 % targeted on AVX-512 (AMD EPYC Zen 5), 72.8 % and 66.0 % under qemu's Haswell (AVX2).
      // Wrong math lands far lower: the opposite sign 9 %, 4 steps instead of 5 at most 38 %, α = 2/255 at most 33 %.
      // The bound, 55 %, lies 11 points below the lowest correct float32 run (66 %) and 17 above the best wrong one
      // (see README, "Known gaps").
      expect(fraction).toBeGreaterThanOrEqual(0.55);
    });
  }
});
