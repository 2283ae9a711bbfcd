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
import { crossEntropy } from '../src/compute/autodiff/objectives.ts';
import { deviceRenderNeurons } from '../src/compute/featurevis/device-render.ts';
import { renderNeurons } from '../src/compute/featurevis/render.ts';
import { benchProviders } from './providers.ts';
import { loadClassifier } from '../src/compute/model/classifier.ts';
import type { ExecutionProvider } from '../src/compute/runtime/session.ts';
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

async function time(fn: () => Promise<unknown>): Promise<number> {
  await fn(); // warm-up: first runs allocate arenas
  const samples: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t = performance.now();
    await fn();
    samples.push(performance.now() - t);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

const rows: string[][] = [];
for (const id of values.models!.split(',')) {
  const classifier = await loadClassifier(path.join(modelFolder, `${id}.onnx`), { ep });
  const per = classifier.inputDims.reduce((a, b) => a * b, 1);
  for (const batch of [1, 8]) {
    const x = new Float32Array(batch * per).map((_, i) => (Math.sin(i) + 1) / 2);
    const labels = Array.from({ length: batch }, (_, i) => i);
    const forward = await time(() => classifier.model.forward(x));
    const step = await time(() => classifier.model.gradient(x, crossEntropy(), labels));
    rows.push([id, ep, String(batch), (forward / batch).toFixed(1), (step / batch).toFixed(1), (step / forward).toFixed(2)]);
    process.stderr.write(`${id} batch ${batch} done\n`);
  }
  await classifier.model.release();
}

function table(header: string[], body: string[][]): string {
  const widths = header.map((h, k) => Math.max(h.length, ...body.map((r) => r[k].length)));
  const line = (r: string[]) => `| ${r.map((c, k) => c.padEnd(widths[k])).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}
console.log(`\nCompute core on ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'} (median of ${repeats}; PGD step = forward + input gradient)\n`);
console.log(table(['model', 'ep', 'batch', 'forward ms/img', 'PGD step ms/img', 'step/forward'], rows));

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
    await render(classifier.model, targets, { steps: fvSteps });
    const batched = (performance.now() - t) / 1000 / targets.length;
    const scale = 512 / fvSteps;
    fvRows.push([id, layer.name, loop, (single * scale).toFixed(1), (batched * scale).toFixed(1), (single / batched).toFixed(2)]);
    process.stderr.write(`${id} featurevis (${loop}) done\n`);
  }
  await classifier.model.release();
}
console.log(`\nFeature visualization, seconds per neuron for 512 steps (measured over ${fvSteps} steps, 8 neurons)\n`);
console.log(table(['model', 'layer', 'loop', 'batch 1 s/neuron', 'batch 8 s/neuron', 'speed-up'], fvRows));

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
