// `npm run bench`: speed of the compute core, printed as a table. Benchmarks (not timed tests) hold speed figures,
// because CI machines vary; run this on the machine you want numbers for.
//   npm run bench -- [--ep cpu|webgpu|cuda] [--models mobilenetv2,resnet50-random] [--repeats 3]
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { crossEntropy } from '../src/compute/autodiff/objectives.ts';
import { loadClassifier } from '../src/compute/model/classifier.ts';
import type { ExecutionProvider } from '../src/compute/runtime/session.ts';

const { values } = parseArgs({
  options: {
    ep: { type: 'string', default: 'cpu' },
    models: { type: 'string', default: 'mobilenetv2,resnet50-random' },
    repeats: { type: 'string', default: '3' },
    'models-dir': { type: 'string', default: process.env.ATLAS_MODELS ?? path.resolve(import.meta.dirname, '../../shared/models') },
  },
});
const ep = values.ep as ExecutionProvider;
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
  const classifier = await loadClassifier(path.join(values['models-dir']!, `${id}.onnx`), { ep });
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

const header = ['model', 'ep', 'batch', 'forward ms/img', 'PGD step ms/img', 'step/forward'];
const widths = header.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)));
const line = (r: string[]) => `| ${r.map((c, k) => c.padEnd(widths[k])).join(' | ')} |`;
console.log(`\nCompute core on ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'} (median of ${repeats}; PGD step = forward + input gradient)\n`);
console.log([line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n'));
