// `npm run bench`: speed of the compute core, printed as a table. Benchmarks (not timed tests) hold speed figures,
// because CI machines vary; run this on the machine you want numbers for.
//   npm run bench -- [--ep cpu|webgpu|cuda] [--models mobilenetv2,resnet50-random] [--repeats 3]
//                    [--featurevis-steps 32] [--dist dist] [--base /] [--models-dir ../shared/models]
//                    [--providers cpu|all|cpu,webgpu,cuda] [--provider-model resnet50-random] [--batches 1,8,64]
// Four tables: the compute core (forward, PGD step), feature visualization (seconds per neuron, batch 1 vs 8,
// scaled to Lucent's 512 steps from a shorter run), execution providers (PGD steps per second and feature
// visualization per neuron at each batch; BENCHMARKS.md), and the built article's first-load weight.
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { CLEAN, EPS, pgdStep, SIGNED_ALPHA } from '../src/compute/attacks/pgd-graph.ts';
import { crossEntropy } from '../src/compute/autodiff/objectives.ts';
import { deviceRenderNeurons } from '../src/compute/featurevis/device-render.ts';
import { renderNeurons } from '../src/compute/featurevis/render.ts';
import { benchProviders } from './providers.ts';
import { loadClassifier } from '../src/compute/model/classifier.ts';
import type { DifferentiableModel } from '../src/compute/model/differentiable-model.ts';
import { PIXELS } from '../src/compute/onnx/normalize.ts';
import { floatTensor, labelTensor, LABELS } from '../src/compute/runtime/program.ts';
import type { ExecutionProvider, ort } from '../src/compute/runtime/session.ts';
import { modelsDir, providerChoice, siteBase } from '../src/config.ts';

const { values } = parseArgs({
  options: {
    ep: { type: 'string' },
    models: { type: 'string', default: 'mobilenetv2,resnet50-random' },
    repeats: { type: 'string', default: '3' },
    'featurevis-steps': { type: 'string', default: '32' },
    providers: { type: 'string', default: 'cpu' },
    'provider-model': { type: 'string', default: 'resnet50-random' },
    batches: { type: 'string', default: '1,8' },
    'pgd-steps': { type: 'string', default: '3' },
    dist: { type: 'string', default: path.resolve(import.meta.dirname, '../dist') },
    'models-dir': { type: 'string' },
    base: { type: 'string' },
  },
});
// Flags over ATLAS_EP / ATLAS_MODELS / ATLAS_BASE over defaults, as everywhere (src/config.ts).
const choice = providerChoice(values.ep);
if (choice === 'auto') throw new Error('npm run bench: --ep auto is not supported here; name the provider to time');
const ep: ExecutionProvider = choice;
const modelFolder = modelsDir(values['models-dir']);
const repeats = Number(values.repeats);

/**
 * Median times of several functions measured in turns, so that load from other processes on a shared machine falls
 * on all of them alike and their ratios stay meaningful. Each turn runs its function twice and times the second run:
 * a program's first run after another program's measured 15 % slower than its next (MobileNetV2 PGD step, batch 8:
 * 209 against 180 ms), and an attack or a pass over the photos runs one program many times in a row.
 */
async function timeInTurns(fns: (() => Promise<unknown>)[]): Promise<number[]> {
  for (const fn of fns) await fn(); // warm-up: first runs allocate arenas
  const samples = fns.map((): number[] => []);
  for (let r = 0; r < repeats; r++) {
    for (const [k, fn] of fns.entries()) {
      await fn();
      const t = performance.now();
      await fn();
      samples[k].push(performance.now() - t);
    }
  }
  return samples.map((s) => s.sort((a, b) => a - b)[Math.floor(s.length / 2)]);
}

/** One L∞ PGD step as the attack runs it (devicePgd): the update in the graph, x and x₀ fed back from the last run. */
async function pgdStepper(model: DifferentiableModel, x: Float32Array, labels: number[]): Promise<() => Promise<unknown>> {
  const program = await model.program({ objective: crossEntropy(), extension: pgdStep({ norm: 'linf' }) });
  const { floatType, inputDims } = model.prepared;
  const dims = [labels.length, ...inputDims];
  const fixed = { [LABELS]: labelTensor(labels), [EPS]: floatTensor(floatType, [4 / 255], []), [SIGNED_ALPHA]: floatTensor(floatType, [1 / 255], []) };
  let state: Record<string, ort.Tensor> = { [PIXELS]: floatTensor(floatType, x, dims), [CLEAN]: floatTensor(floatType, x, dims) };
  return async () => {
    state = program.nextState(await program.runTensors({ ...fixed, ...state }));
  };
}

/** External references, measured once on the same kind of 2-core machine (issue 18); Python is not run here. */
const PYTORCH_EAGER_MS_PER_IMAGE_STEP: Record<string, number> = { 'resnet50-random': 224 };
const LUCENT_S_PER_NEURON: Record<string, string> = { mobilenetv2: '97–113' };

const rows: string[][] = [];
for (const id of values.models!.split(',')) {
  const classifier = await loadClassifier(path.join(modelFolder, `${id}.onnx`), { ep });
  const per = classifier.inputDims.reduce((a, b) => a * b, 1);
  for (const batch of [1, 8]) {
    const x = new Float32Array(batch * per).map((_, i) => (Math.sin(i) + 1) / 2);
    const labels = Array.from({ length: batch }, (_, i) => i);
    const [forward, gradient, step] = await timeInTurns([
      () => classifier.model.forward(x),
      () => classifier.model.gradient(x, crossEntropy(), labels),
      await pgdStepper(classifier.model, x, labels),
    ]);
    const torch = PYTORCH_EAGER_MS_PER_IMAGE_STEP[id];
    rows.push([id, ep, String(batch), (forward / batch).toFixed(1), (gradient / batch).toFixed(1), (step / batch).toFixed(1), (step / forward).toFixed(2), torch && batch === 8 ? `${(step / batch / torch).toFixed(2)} (of ${torch})` : '–']);
    process.stderr.write(`${id} batch ${batch} done\n`);
  }
  await classifier.model.release();
}

function table(header: string[], body: string[][]): string {
  const widths = header.map((h, k) => Math.max(h.length, ...body.map((r) => r[k].length)));
  const line = (r: string[]) => `| ${r.map((c, k) => c.padEnd(widths[k])).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}
console.log(`\nCompute core on ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'} (median of ${repeats}, measured in turns; gradient = forward + input gradient on the host; PGD step = the attack's one-run step with the update in the graph; PyTorch 1.13 eager ResNet-50 at batch 8 is an external reference measured earlier on a 2-core machine of this kind)\n`);
console.log(table(['model', 'ep', 'batch', 'forward ms/img', 'gradient ms/img', 'PGD step ms/img', 'step/forward', 'step/PyTorch eager'], rows));

// Feature visualization: 8 neurons as one batch of 8 against 8 runs of one, Lucent's transforms and 128 px images,
// for both loops: the host reference (render.ts) and the one-graph step the pipeline uses (device-render.ts).
const fvSteps = Number(values['featurevis-steps']);
const fvRows: string[][] = [];
const loops = [['device (pipeline)', deviceRenderNeurons], ['host (reference)', renderNeurons]] as const;
for (const id of values.models!.split(',')) {
  const classifier = await loadClassifier(path.join(modelFolder, `${id}.onnx`), { ep });
  const layer = classifier.model.layers.at(-Math.min(8, classifier.model.layers.length))!;
  const targets = Array.from({ length: 8 }, (_, c) => ({ layer: layer.name, channel: c }));
  for (const [loop, render] of loops) {
    await render(classifier.model, targets.slice(0, 1), { steps: 2 }); // warm-up: sessions and arenas
    await render(classifier.model, targets, { steps: 2 });
    let t = performance.now();
    for (const target of targets) await render(classifier.model, [target], { steps: fvSteps });
    const single = (performance.now() - t) / 1000 / targets.length;
    t = performance.now();
    const r = await render(classifier.model, targets, { steps: fvSteps });
    const batched = (performance.now() - t) / 1000 / targets.length;
    const scale = 512 / fvSteps;
    // The activation the batch reached: its objective (the neuron's mean activation) after the last step, averaged.
    const reached = r.curve.at(-1)!.reduce((a, b) => a + b, 0) / targets.length;
    const lucent = LUCENT_S_PER_NEURON[id];
    const ofLucent = lucent ? `${(batched * scale / Number(lucent.split('–')[0])).toFixed(2)}–${(batched * scale / Number(lucent.split('–')[1])).toFixed(2)} (of ${lucent} s)` : '–';
    fvRows.push([id, layer.name, loop, (single * scale).toFixed(1), (batched * scale).toFixed(1), (single / batched).toFixed(2), reached.toFixed(2), ofLucent]);
    process.stderr.write(`${id} featurevis (${loop}) done\n`);
  }
  await classifier.model.release();
}
console.log(`\nFeature visualization, seconds per neuron for 512 steps (measured over ${fvSteps} steps, 8 neurons; activation = mean objective of the batch of 8 after ${fvSteps} steps; Lucent's time per neuron with its defaults is an external reference measured earlier on a 2-core machine of this kind)\n`);
console.log(table(['model', 'layer', 'loop', 'batch 1 s/neuron', 'batch 8 s/neuron', 'speed-up', `activation after ${fvSteps}`, 'batch 8/Lucent'], fvRows));

const providerRows = await benchProviders({
  model: path.join(modelFolder, `${values['provider-model']}.onnx`),
  providers: values.providers === 'all' ? 'all' : (values.providers!.split(',') as ExecutionProvider[]),
  batches: values.batches!.split(',').map(Number),
  pgdSteps: Number(values['pgd-steps']),
  featurevisSteps: fvSteps,
  log: (line) => process.stderr.write(`${line}\n`),
});
console.log(`\nExecution providers on ${values['provider-model']} (PGD: ${values['pgd-steps']} steps in the graph, batch in device memory; feature visualization: 512 steps, scaled from ${fvSteps})\n`);
console.log(table(['ep', 'batch', 'PGD images·steps/s', 'PGD steps/s', 'featurevis s/neuron'], providerRows));

if (existsSync(path.join(values.dist!, 'index.html'))) {
  // Loaded only here: it drives Chromium, which a GPU machine running the compute benchmarks need not have.
  const { pageWeight } = await import('./page-weight.ts');
  const w = await pageWeight(values.dist!, siteBase(values.base));
  const kb = (b: number) => (b / 1024).toFixed(1);
  console.log(`\nArticle first load (${values.dist}, gzip; budget: JavaScript ≤ 300 KB)\n`);
  console.log(table(['JavaScript KB', 'CSS KB', 'HTML KB', 'requests'], [[kb(w.jsGzipBytes), kb(w.cssGzipBytes), kb(w.htmlGzipBytes), String(w.requests)]]));
} else {
  console.log(`\n(no built article at ${values.dist}: run npm run build for the page-weight table)`);
}
