// `node bench/profile.ts`: where a PGD step and a feature-visualization step spend their time, from onnxruntime's
// own profiler (kernel time per node), grouped by op type and by pass (forward, backward, the loop's update), next to
// the wall time of the same runs, whose remainder is everything outside kernels (feeds, copies, session overhead).
// Host-side work of a render step (drawing the transforms' taps, building feeds) is timed separately.
//   node bench/profile.ts [--models resnet50-random,mobilenetv2] [--batch 8] [--runs 5] [--featurevis-batch 8]
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pgdStep, CLEAN, EPS, SIGNED_ALPHA } from '../src/compute/attacks/pgd-graph.ts';
import { crossEntropy } from '../src/compute/autodiff/objectives.ts';
import { renderProgram, stepFeeds } from '../src/compute/featurevis/device-render.ts';
import { paramDims, type RenderGraphSpec } from '../src/compute/featurevis/render-graph.ts';
import { drawSamplings, renderSetup } from '../src/compute/featurevis/render.ts';
import { loadClassifier } from '../src/compute/model/classifier.ts';
import { PIXELS } from '../src/compute/onnx/normalize.ts';
import { buildProgramGraph, floatTensor, labelTensor, LABELS, type ProgramSpec } from '../src/compute/runtime/program.ts';
import { ort, sessionConfig } from '../src/compute/runtime/session.ts';
import { modelsDir } from '../src/config.ts';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'resnet50-random,mobilenetv2' },
    batch: { type: 'string', default: '8' },
    runs: { type: 'string', default: '5' },
    'featurevis-batch': { type: 'string', default: '8' },
    'featurevis-model': { type: 'string', default: 'mobilenetv2' },
    'models-dir': { type: 'string' },
    /** onnxruntime's graph optimization level, to compare against the runtime's choice */
    level: { type: 'string' },
    'skip-featurevis': { type: 'boolean', default: false },
    /** also list the slowest nodes of these op types (comma-separated) */
    nodes: { type: 'string', default: '' },
  },
});
const runs = Number(values.runs);
const batch = Number(values.batch);

interface Profiled {
  /** median wall ms of one run */
  wall: number;
  /** kernel µs per run, by op type and by pass */
  byOp: Map<string, number>;
  byPass: Map<string, number>;
  byNode: Map<string, number>;
  kernelMs: number;
}

/** Runs `feeds` through a profiling session `runs` times after a warm-up, and sums its kernel times per run. */
async function profileRuns(bytes: Uint8Array, feeds: () => Record<string, ort.Tensor>): Promise<Profiled> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'atlas-profile-'));
  const session = await ort.InferenceSession.create(bytes, { ...sessionConfig(), ...(values.level ? { graphOptimizationLevel: values.level as 'all' } : {}), enableProfiling: true, profileFilePrefix: path.join(dir, 'p') });
  await session.run(feeds()); // warm-up: arenas, kernel selection (excluded below by counting only the last `runs`)
  const walls: number[] = [];
  for (let r = 0; r < runs; r++) {
    const f = feeds();
    const t = performance.now();
    await session.run(f);
    walls.push(performance.now() - t);
  }
  session.endProfiling(); // writes <prefix>_<date>.json
  await session.release();
  const file = path.join(dir, readdirSync(dir).find((f) => f.endsWith('.json'))!);
  const events = JSON.parse(readFileSync(file, 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
  rmSync(dir, { recursive: true, force: true });
  const runEvents = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  // Node events of the last `runs` runs: those after the warm-up run's end.
  const warmEnd = (runEvents[0] as unknown as { ts: number; dur: number });
  const nodes = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && (e as unknown as { ts: number }).ts > warmEnd.ts + warmEnd.dur);
  const byOp = new Map<string, number>();
  const byPass = new Map<string, number>();
  const byNode = new Map<string, number>();
  let total = 0;
  for (const e of nodes) {
    const op = e.args?.op_name ?? '?';
    const name = e.name.replace(/_kernel_time$/, '');
    const pass = name.startsWith('grad/') ? 'backward' : name.startsWith('pgd/') || name.startsWith('featurevis/adam') ? 'update' : name.startsWith('featurevis/') ? 'image + transforms' : name.startsWith('objective') ? 'objective' : 'forward';
    byOp.set(`${pass}: ${op}`, (byOp.get(`${pass}: ${op}`) ?? 0) + e.dur / runs);
    byPass.set(pass, (byPass.get(pass) ?? 0) + e.dur / runs);
    if (values.nodes!.split(',').includes(op)) byNode.set(`${op} ${name}`, (byNode.get(`${op} ${name}`) ?? 0) + e.dur / runs);
    total += e.dur / runs;
  }
  walls.sort((a, b) => a - b);
  return { wall: walls[walls.length >> 1], byOp, byPass, byNode, kernelMs: total / 1000 };
}

function report(title: string, p: Profiled, top = 14): void {
  console.log(`\n### ${title}\nwall ${p.wall.toFixed(1)} ms/run (median of ${runs}), kernels ${p.kernelMs.toFixed(1)} ms, outside kernels ${(p.wall - p.kernelMs).toFixed(1)} ms`);
  console.log('by pass: ' + [...p.byPass].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} ms (${((100 * v) / 1000 / p.kernelMs).toFixed(0)} %)`).join(', '));
  for (const [k, v] of [...p.byOp].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${k.padEnd(40)} ${(v / 1000).toFixed(1).padStart(8)} ms ${((100 * v) / 1000 / p.kernelMs).toFixed(1).padStart(5)} %`);
  for (const [k, v] of [...p.byNode].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`    ${k.padEnd(70)} ${(v / 1000).toFixed(1).padStart(8)} ms`);
}

for (const id of values.models!.split(',').filter(Boolean)) {
  const classifier = await loadClassifier(path.join(modelsDir(values['models-dir']), `${id}.onnx`));
  const model = classifier.model;
  const [c, h, w] = model.inputDims;
  const x = Float32Array.from({ length: batch * c * h * w }, (_, i) => 0.5 + 0.4 * Math.sin(i * 0.37));
  const pixels = () => floatTensor(model.prepared.floatType, x, [batch, c, h, w]);
  const forward = await profileRuns(buildProgramGraph(model.prepared, {}).bytes, () => ({ [PIXELS]: pixels() }));
  const step: ProgramSpec = { objective: crossEntropy(), extension: pgdStep({ norm: 'linf' }) };
  const pgd = await profileRuns(buildProgramGraph(model.prepared, step).bytes, () => ({
    [PIXELS]: pixels(),
    [CLEAN]: pixels(),
    [LABELS]: labelTensor(Array.from({ length: batch }, (_, i) => i)),
    [EPS]: floatTensor(model.prepared.floatType, [4 / 255], []),
    [SIGNED_ALPHA]: floatTensor(model.prepared.floatType, [1 / 255], []),
  }));
  report(`${id}: forward, batch ${batch}`, forward, 8);
  report(`${id}: PGD step (L∞), batch ${batch} — step/forward ${(pgd.wall / forward.wall).toFixed(2)} (wall), ${(pgd.kernelMs / forward.kernelMs).toFixed(2)} (kernels)`, pgd);
  await model.release();
}

// Feature visualization: Lucent's defaults (128 px Fourier image, decorrelated, standard transforms), one batch.
if (!values['skip-featurevis']) {
  const id = values['featurevis-model']!;
  const fvBatch = Number(values['featurevis-batch']);
  const classifier = await loadClassifier(path.join(modelsDir(values['models-dir']), `${id}.onnx`));
  const model = classifier.model;
  const layer = model.layers.at(-Math.min(8, model.layers.length))!;
  const targets = Array.from({ length: fvBatch }, (_, k) => ({ layer: layer.name, channel: k }));
  const setup = renderSetup(model, targets, {});
  const spec = renderProgram(setup, {});
  const render = JSON.parse(spec.extension!.key.slice('render:'.length)) as RenderGraphSpec;
  const { floatType } = model.prepared;
  const stateDims = [fvBatch, ...paramDims(render)];
  const state = () => ({ params: floatTensor(floatType, setup.param.params, stateDims), m: floatTensor(floatType, new Float32Array(setup.param.params.length), stateDims), v: floatTensor(floatType, new Float32Array(setup.param.params.length), stateDims) });
  const program = await model.program(spec);
  const fixed = program.inputFeeds(fvBatch, setup.inputs);
  let hostMs = 0;
  let step = 0;
  const p = await profileRuns(buildProgramGraph(model.prepared, spec).bytes, () => {
    const t = performance.now();
    const samplings = drawSamplings(setup.transforms, setup.size, [setup.inH, setup.inW], setup.draws);
    const feeds = { ...fixed, ...stepFeeds(floatType, state(), setup.lr, ++step, samplings) };
    hostMs += performance.now() - t;
    return feeds;
  });
  report(`${id} featurevis step (${layer.name}, batch ${fvBatch}, 128 px, Lucent's transforms); host: draw taps + feeds ${(hostMs / (runs + 1)).toFixed(1)} ms/step`, p, 20);
  await model.release();
}
