// Execution providers: which start here, that `auto` and the fallback choose as documented, that every provider that
// exists on this machine computes the CPU's gradients (relative L2 ≤ 1e-3) and runs the in-graph PGD step with the
// batch left in device memory, that node placement is read from onnxruntime's own log, and that batch size changes a
// CPU result by no more than float32 reordering (the reason memory-sized batches stay out of cache keys).
// WebGPU runs in CI on Mesa's software Vulkan (lavapipe, installed by .ci/run); CUDA runs only where its provider
// libraries and a GPU exist. A provider that does not start here is reported as skipped, with onnxruntime's reason.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { devicePgd } from '../src/compute/attacks/device-pgd.ts';
import { pgdStep } from '../src/compute/attacks/pgd-graph.ts';
import { pgd, type PgdOptions } from '../src/compute/attacks/pgd.ts';
import { channel, crossEntropy } from '../src/compute/autodiff/objectives.ts';
import { deviceRenderNeurons, stepFeeds } from '../src/compute/featurevis/device-render.ts';
import { paramDims, renderStep } from '../src/compute/featurevis/render-graph.ts';
import { drawSamplings, samplingStages, targetObjective } from '../src/compute/featurevis/render.ts';
import { standardTransforms } from '../src/compute/featurevis/transform.ts';
import { loadImage } from '../src/compute/io/image.ts';
import { readNpy, toFloat32 } from '../src/compute/io/npy.ts';
import { loadClassifier, type Classifier } from '../src/compute/model/classifier.ts';
import { placementNotice } from '../src/compute/model/provider-choice.ts';
import { DifferentiableModel } from '../src/compute/model/differentiable-model.ts';
import { GRAD_TOLERANCE, probeProvider, resolveProvider, type ProviderStatus } from '../src/compute/runtime/execution-provider.ts';
import { bytesPerImage, chooseBatch } from '../src/compute/runtime/memory.ts';
import { describePlacement, nodePlacement, parsePlacementLog } from '../src/compute/runtime/placement.ts';
import { buildProgramGraph } from '../src/compute/runtime/program.ts';
import { ort, type ExecutionProvider } from '../src/compute/runtime/session.ts';
import { createRng } from '../src/compute/random.ts';
import { relativeL2, shared } from './helpers/shared.ts';
import { FLOAT, head, tinyModel } from './helpers/tiny-net.ts';

const MODEL = shared('models', 'mobilenetv2.onnx');
const STATUS = new Map<ExecutionProvider, ProviderStatus>();
for (const ep of ['cpu', 'webgpu', 'cuda'] as const) STATUS.set(ep, await probeProvider(ep));
const GPU_PROVIDERS = (['webgpu', 'cuda'] as const);
console.log(`providers here: ${[...STATUS.values()].map((s) => (s.available ? `${s.ep} ✓` : `${s.ep} ✗ (${s.reason})`)).join('; ')}`);

/** Deterministic pixels in [0,1], far from the clip bounds. */
function pixels(n: number, per: number): Float32Array {
  return Float32Array.from({ length: n * per }, (_, i) => 0.5 + 0.35 * Math.sin(i * 0.37 + (i % 7)));
}

describe('choosing a provider', () => {
  const fake = (available: ExecutionProvider[]) => async (ep: ExecutionProvider): Promise<ProviderStatus> =>
    available.includes(ep) || ep === 'cpu' ? { ep, available: true } : { ep, available: false, reason: `no ${ep} here` };
  const trialWith = (ms: Record<string, number>, err: Record<string, number> = {}) => async (ep: ExecutionProvider) =>
    ({ ep, ms: ms[ep], gradError: err[ep] ?? 0, grad: new Float32Array(1) });

  it('the CPU is always there and computes the probe convolution', () => {
    expect(STATUS.get('cpu')).toEqual({ ep: 'cpu', available: true });
  });

  it('an explicit provider that cannot start falls back to the CPU with a one-line notice naming the reason', async () => {
    const r = await resolveProvider('cuda', undefined, fake([]));
    expect(r.ep).toBe('cpu');
    expect(r.notices).toEqual(['cuda is not available here (no cuda here); running on the CPU']);
    expect((await resolveProvider('webgpu', undefined, fake(['webgpu']))).ep).toBe('webgpu');
  });

  it('auto picks the fastest provider whose gradient agrees with the CPU, and says what it measured', async () => {
    const fast = await resolveProvider('auto', trialWith({ cpu: 50, webgpu: 10, cuda: 4 }), fake(['webgpu', 'cuda']));
    expect(fast.ep).toBe('cuda');
    expect(fast.notices[0]).toMatch(/^auto: picked cuda \(forward\+backward cuda 4 ms, webgpu 10 ms, cpu 50 ms\)$/);
    // A software adapter slower than the CPU loses.
    expect((await resolveProvider('auto', trialWith({ cpu: 50, webgpu: 700 }), fake(['webgpu']))).ep).toBe('cpu');
    // A provider whose gradient is off is never picked, however fast.
    const wrong = await resolveProvider('auto', trialWith({ cpu: 50, webgpu: 10 }, { webgpu: 10 * GRAD_TOLERANCE }), fake(['webgpu']));
    expect(wrong.ep).toBe('cpu');
    expect(wrong.notices[0]).toContain('webgpu: gradient differs from the CPU\'s by 1.0e-2');
    const none = await resolveProvider('auto', trialWith({ cpu: 50 }), fake([]));
    expect(none).toEqual({ ep: 'cpu', notices: ['auto: cpu (cuda: no cuda here; webgpu: no webgpu here)'] });
  });
});

describe('memory-sized batches', () => {
  it('fit the free memory, between 1 and the cap, and say why', () => {
    const mib = 2 ** 20;
    expect(chooseBatch(100 * mib, { free: 1000 * mib, source: 'test' }).batch).toBe(5);
    expect(chooseBatch(100 * mib, { free: 10 * mib, source: 'test' }).batch).toBe(1);
    const capped = chooseBatch(1 * mib, { free: 100_000 * mib, source: 'test' }, { max: 16 });
    expect(capped.batch).toBe(16);
    expect(capped.reason).toContain('capped at 16');
    expect(chooseBatch(1 * mib, undefined).reason).toBe('batch 8 (device memory unknown)');
  });

  it('do not change a CPU result beyond float32 rounding: batch 1 and batch 8 give the same gradient', async () => {
    const classifier = await loadClassifier(MODEL);
    const [c, h, w] = classifier.inputDims;
    const per = c * h * w;
    const x = pixels(8, per);
    const labels = [1, 9, 17, 25, 33, 41, 49, 57];
    const all = await classifier.model.gradient(x, crossEntropy(), labels);
    for (const i of [0, 5]) {
      const one = await classifier.model.gradient(x.slice(i * per, (i + 1) * per), crossEntropy(), [labels[i]]);
      // onnxruntime does not promise the same bits at every batch size. Measured on these images: bit-identical on
      // an AMD EPYC (Zen 5, AVX-512) and under qemu's Haswell (AVX2), and across the two; but with the graph
      // optimizer off, batch 1 and 8 differ by 8e-7 (its unfused kernels sum in a batch-dependent order), and
      // another kernel choice (optimization level basic vs all) moved image 0's gradient by 6.5e-4 (a jump, not
      // rounding noise: image 5 moved by 1.3e-6). So the bound is GRAD_TOLERANCE, the product's own for two
      // computations of one gradient (`auto` accepts a provider with it); a batch that leaked between images would
      // be off by O(1).
      expect(relativeL2(one.grad, all.grad.subarray(i * per, (i + 1) * per))).toBeLessThan(GRAD_TOLERANCE);
    }
    // MobileNetV2's forward and backward tensors at 224 px: tens of MiB per image, not bytes or gigabytes.
    const perImage = bytesPerImage(classifier.model.prepared) / 2 ** 20;
    expect(perImage).toBeGreaterThan(20);
    expect(perImage).toBeLessThan(1000);
    await classifier.model.release();
  });
});

describe('PGD with the step inside the graph', () => {
  // A linear classifier: no ReLU masks, so the host and graph implementations must follow the same trajectory.
  const bytes = tinyModel(FLOAT, [3, 4, 4], (net, x) => head(net, x, 48), 7);
  const dims = [3, 3, 4, 4] as const;
  const x0 = pixels(3, 48);
  const labels = Int32Array.from([0, 2, 4]);

  for (const [norm, eps, alpha] of [['linf', 8 / 255, 2 / 255], ['l2', 0.3, 0.1]] as const) {
    for (const targeted of [false, true]) {
      it(`matches the host implementation (${norm}, ${targeted ? 'targeted' : 'untargeted'}, random start)`, async () => {
        const model = await DifferentiableModel.fromBytes(bytes, { name: 'x', dims: [3, 4, 4] });
        const opts: PgdOptions = { norm, eps, alpha, steps: 6, targeted, randomStart: true, seed: 3, firstImage: 5 };
        const host = await pgd(async (x, l) => {
          const r = await model.gradient(x, crossEntropy(), l);
          return { loss: r.objective, grad: r.grad, logits: r.logits };
        }, x0, dims, labels, opts);
        const dev = await devicePgd(model, x0, dims, labels, opts);
        expect(dev.steps).toBe(6);
        // float32 in the graph vs float64-then-round on the host: the same pixels up to an ulp
        expect(relativeL2(dev.adv.map((v, i) => v - x0[i]), host.adv.map((v, i) => v - x0[i]))).toBeLessThan(1e-5);
        dev.loss.forEach((v, i) => expect(v).toBeCloseTo(host.loss[i], 5));
        expect(dev.lossCurve.length).toBe(7);
        await model.release();
      });
    }
  }

  it('stops early once every image succeeds, returning the image that succeeded', async () => {
    const model = await DifferentiableModel.fromBytes(bytes, { name: 'x', dims: [3, 4, 4] });
    const r = await devicePgd(model, x0, dims, labels, { norm: 'linf', eps: 0.5, alpha: 0.1, steps: 50, targeted: false, earlyStop: () => true });
    expect(r.steps).toBe(0);
    expect(Array.from(r.adv)).toEqual(Array.from(x0));
    await model.release();
  });

  it('a batch cut differently gives the same random start per image', async () => {
    const model = await DifferentiableModel.fromBytes(bytes, { name: 'x', dims: [3, 4, 4] });
    const opts: PgdOptions = { norm: 'linf', eps: 8 / 255, alpha: 2 / 255, steps: 0, targeted: false, randomStart: true, seed: 11 };
    const whole = await devicePgd(model, x0, dims, labels, opts);
    const last = await devicePgd(model, x0.slice(2 * 48), [1, 3, 4, 4], labels.slice(2), { ...opts, firstImage: 2 });
    expect(Array.from(last.adv)).toEqual(Array.from(whole.adv.slice(2 * 48)));
    await model.release();
  });
});

describe('node placement', () => {
  it('is parsed from onnxruntime\'s verbose log', () => {
    const log = [
      '[I:onnxruntime:, webgpu_execution_provider.cc:665 GetCapability] webgpu kernel not found in registries for Op type: Equal node name: objective/ce/Equal',
      '[I:onnxruntime:, webgpu_execution_provider.cc:665 GetCapability] webgpu kernel not found in registries for Op type: Gather node name: Gather',
      '[I:onnxruntime:, webgpu_execution_provider.cc:665 GetCapability] webgpu kernel not found in registries for Op type: Sign node name: pgd/Sign',
      '[V:onnxruntime:, session_state.cc:1377 VerifyEachNodeIsAssignedToAnEp] Node placements',
      '[V:onnxruntime:, session_state.cc:1383 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 2',
      '[V:onnxruntime:, session_state.cc:1385 VerifyEachNodeIsAssignedToAnEp]   Equal (objective/ce/Equal)',
      '[V:onnxruntime:, session_state.cc:1385 VerifyEachNodeIsAssignedToAnEp]   Gather (Gather)',
      '[V:onnxruntime:, session_state.cc:1383 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [WebGpuExecutionProvider]. Number of nodes: 3',
      '[V:onnxruntime:, session_state.cc:1385 VerifyEachNodeIsAssignedToAnEp]   Conv (features.0)',
      '[V:onnxruntime:, session_state.cc:1385 VerifyEachNodeIsAssignedToAnEp]   Sign (pgd/Sign)',
      '[V:onnxruntime:, session_state.cc:1385 VerifyEachNodeIsAssignedToAnEp]   Add (features.3)',
    ].join('\n');
    const p = parsePlacementLog(log, 'webgpu');
    expect(p.counts).toEqual({ CPUExecutionProvider: 2, WebGpuExecutionProvider: 3 });
    expect(p.onCpu.map((n) => n.node)).toEqual(['objective/ce/Equal', 'Gather']);
    // Sign lacked a kernel in one pass but was placed on the device in the end: not reported.
    expect(p.unsupported).toEqual([{ op: 'Equal', node: 'objective/ce/Equal' }, { op: 'Gather', node: 'Gather' }]);
    expect(describePlacement(p)).toBe('webgpu: 3 of 5 nodes on the device; no webgpu kernel for Equal, Gather (run on the CPU: objective/ce/Equal, Gather)');
    expect(() => parsePlacementLog('nothing', 'webgpu')).toThrow(/no node placement/);
  });
});

for (const ep of GPU_PROVIDERS) {
  const status = STATUS.get(ep)!;
  describe.skipIf(!status.available)(`${ep}${status.available ? '' : ` (skipped: ${status.reason})`}`, () => {
    let cpu: Classifier;
    let gpu: Classifier;
    const n = 2;

    it('gradients agree with the CPU\'s (relative L2 ≤ 1e-3) on photographs', async () => {
      cpu = await loadClassifier(MODEL, { ep: 'cpu' });
      gpu = await loadClassifier(MODEL, { ep });
      const labels = JSON.parse(await readFile(shared('images', 'imagenet-samples', 'labels.json'), 'utf8')) as { file: string; index: number }[];
      for (const im of [0, 100, 200, 300].map((k) => labels[k])) {
        const x = await loadImage(shared('images', 'imagenet-samples', im.file), cpu.preprocess);
        const channelGrad = async (c: Classifier) => (await c.model.gradient(x, channel('features.14.conv.1', 105))).grad;
        const err = relativeL2(await channelGrad(gpu), await channelGrad(cpu));
        const ce = relativeL2((await gpu.model.gradient(x, crossEntropy(), [im.index])).grad, (await cpu.model.gradient(x, crossEntropy(), [im.index])).grad);
        console.log(`${ep} vs cpu on ${im.file}: channel gradient ${err.toExponential(2)}, cross-entropy gradient ${ce.toExponential(2)} (relative L2)`);
        expect(err).toBeLessThanOrEqual(GRAD_TOLERANCE);
        // Cross-entropy's gradient is worse conditioned: two float32 implementations differ by a few 1e-3 (PyTorch's
        // own float32 grad_ce is 3e-3 from float64), so the bound against the truth is the next test's.
        expect(ce).toBeLessThan(1e-2);
      }
      await cpu.model.release();
      await gpu.model.release();
    });

    it('gradients are as close to PyTorch float64 as the CPU\'s (ResNet-50 golden values)', async () => {
      const golden = async (f: string) => toFloat32(await readNpy(shared('golden', 'resnet50-random', f)));
      const bytes = await readFile(shared('models', 'resnet50-random.onnx'));
      const x = await golden('input.npy');
      const input = { name: 'input', dims: [3, 224, 224] as [number, number, number], normalization: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } };
      const errors: Record<string, number[]> = {};
      for (const where of ['cpu', ep] as const) {
        const model = await DifferentiableModel.fromBytes(bytes, input, { ep: where });
        errors[where] = [
          relativeL2((await model.gradient(x, crossEntropy(), [356, 867])).grad, await golden('grad_ce.npy')),
          relativeL2((await model.gradient(x, channel('layer3.2.conv3', 471))).grad, await golden('grad_channel_layer3.2.conv3_471.npy')),
        ];
        await model.release();
      }
      console.log(`relative L2 to PyTorch float64 (cross-entropy, channel): cpu ${errors.cpu.map((e) => e.toExponential(2))}, ${ep} ${errors[ep].map((e) => e.toExponential(2))}`);
      errors[ep].forEach((e, k) => expect(e).toBeLessThanOrEqual(1.25 * Math.max(errors.cpu[k], GRAD_TOLERANCE)));
    });

    it('keeps the PGD batch in device memory between steps, and lands where the CPU does', async () => {
      cpu = await loadClassifier(MODEL, { ep: 'cpu' });
      gpu = await loadClassifier(MODEL, { ep });
      const [c, h, w] = cpu.inputDims;
      const x = pixels(n, c * h * w);
      const labels = Int32Array.from([3, 300]);
      const program = await gpu.model.program({ objective: crossEntropy(), extension: pgdStep({ norm: 'linf' }) });
      const r = await program.runTensors({
        pixels: new ort.Tensor('float32', x, [n, c, h, w]),
        clean: new ort.Tensor('float32', x, [n, c, h, w]),
        labels: new ort.Tensor('int64', BigInt64Array.from([3n, 300n]), [n]),
        pgd_eps: new ort.Tensor('float32', [4 / 255], []),
        pgd_signed_alpha: new ort.Tensor('float32', [1 / 255], []),
      });
      expect(r.next.location).toBe('gpu-buffer');
      expect(r.clean_out.location).toBe('gpu-buffer');
      expect(r[program.outputs.objective!].location).toBe('cpu');
      r.next.dispose();
      r.clean_out.dispose();
      const opts: PgdOptions = { norm: 'linf', eps: 4 / 255, alpha: 1 / 255, steps: 5, targeted: false };
      const a = await devicePgd(cpu.model, x, [n, c, h, w], labels, opts);
      const b = await devicePgd(gpu.model, x, [n, c, h, w], labels, opts);
      // Near-zero gradients flip sign between float32 implementations, so trajectories part a little (as against
      // PyTorch, test/golden-resnet50.test.ts); the attack's outcome must not.
      b.loss.forEach((v, i) => expect(Math.abs(v - a.loss[i]) / a.loss[i]).toBeLessThan(0.01));
      for (let k = 0; k < x.length; k++) expect(Math.abs(b.adv[k] - x[k])).toBeLessThanOrEqual(4 / 255 + 1e-6);
      await cpu.model.release();
      await gpu.model.release();
    });

    it('keeps feature visualization\'s parameters and Adam state in device memory, and follows the CPU\'s trajectory', async () => {
      cpu = await loadClassifier(MODEL, { ep: 'cpu' });
      gpu = await loadClassifier(MODEL, { ep });
      const targets = [{ layer: 'features.14.conv.1', channel: 105 }, { layer: 'features.14.conv.1', channel: 7 }];
      // One step run by hand, to see where its outputs live.
      const { objective, inputs } = targetObjective(gpu.model, targets, 0);
      const spec = { param: 'fft', size: 128, decorrelate: true, stages: samplingStages(standardTransforms()), batch: 2 } as const;
      const program = await gpu.model.program({ objective, logits: false, extension: renderStep(spec) });
      const state = [2, ...paramDims(spec)];
      const zeros = () => new ort.Tensor('float32', new Float32Array(state.reduce((a, d) => a * d, 1)), state);
      const r = await program.runTensors({
        ...program.inputFeeds(2, inputs),
        ...stepFeeds(gpu.model.prepared.floatType, { params: zeros(), m: zeros(), v: zeros() }, 0.05, 1, drawSamplings(standardTransforms(), 128, [224, 224], createRng(1))),
      });
      for (const out of Object.keys(program.outputs.state)) {
        expect(r[out].location).toBe('gpu-buffer');
        r[out].dispose();
      }
      expect(r[program.outputs.objective!].location).toBe('cpu');
      // `atlas featurevis --ep` describes this program's placement, not the attack's.
      const note = await placementNotice(gpu, () => ({ objective, logits: false, extension: renderStep(spec) }));
      console.log(note);
      expect(note).toMatch(new RegExp(`^${ep}: \\d+ of \\d+ nodes on the device`));
      expect(note).not.toMatch(/objective\/ce/);
      const opts = { steps: 3, seed: 4 };
      const a = await deviceRenderNeurons(cpu.model, targets, opts);
      const b = await deviceRenderNeurons(gpu.model, targets, opts);
      console.log(`featurevis objective per step, cpu ${JSON.stringify(a.curve)}, ${ep} ${JSON.stringify(b.curve)}`);
      // The same starting image; then Adam's per-parameter normalisation lets float32 noise in near-zero gradients
      // move parameters by a full step, so later objectives agree loosely (measured on lavapipe: 1.4 % after 3 steps).
      expect(relativeL2(b.curve[0], a.curve[0])).toBeLessThan(1e-3);
      expect(relativeL2(b.curve[2], a.curve[2])).toBeLessThan(0.1);
      await cpu.model.release();
      await gpu.model.release();
    });

    it('reports the ops it leaves to the CPU by name', async () => {
      const classifier = await loadClassifier(MODEL, { ep: 'cpu' });
      const { bytes } = buildProgramGraph(classifier.model.prepared, { objective: crossEntropy() }, ep);
      const p = await nodePlacement(bytes, ep);
      const onDevice = Object.entries(p.counts).filter(([k]) => k !== 'CPUExecutionProvider').reduce((a, [, v]) => a + v, 0);
      console.log(describePlacement(p));
      expect(onDevice).toBeGreaterThan(100);
      const cpuNodes = new Set(p.onCpu.map((x) => x.node));
      for (const u of p.unsupported) expect(cpuNodes.has(u.node)).toBe(true);
      await classifier.model.release();
    });
  });
}
