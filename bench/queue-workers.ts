// `node bench/queue-workers.ts`: the job queue's speed-up (issue 19). One spec — an attack on --images photos and a
// feature visualization of --neurons neurons — computed once in this process without a queue, then through a
// throwaway loopback redis-server by 1, 2, 4 … local `atlas worker` processes, each run on an empty cache; every
// queued run's outputs are checked byte for byte against the single-process run. Wall times include the workers'
// cold start (spec hashed, model loaded on their first job) and the coordinator's merge; this process is warmed by a
// dry run first. Start and stop a worker set per row, so no row inherits another's loaded model.
//   node bench/queue-workers.ts [--workers 1,2,4] [--neurons 8] [--size 64] [--steps 64] [--images 32]
//                               [--attack-shard 8] [--pgd-steps 10]
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runPipeline, type PipelineResult } from '../src/compute/pipeline/run-pipeline.ts';
import { queueCoordinator } from '../src/compute/queue/coordinator.ts';
import { sharedDir } from '../src/config.ts';
import { redisServerBinary, startRedis } from '../test/helpers/redis.ts';

const { values: a } = parseArgs({
  options: {
    workers: { type: 'string', default: '1,2,4' },
    neurons: { type: 'string', default: '8' },
    size: { type: 'string', default: '64' },
    steps: { type: 'string', default: '64' },
    images: { type: 'string', default: '32' },
    'attack-shard': { type: 'string', default: '8' },
    'pgd-steps': { type: 'string', default: '10' },
  },
});
const CLI = path.resolve(import.meta.dirname, '../src/cli/atlas.ts');
const neurons = Array.from({ length: Number(a.neurons) }, (_, c) => `features.17.conv.2:${c}`);
const SPEC = `id: bench-queue
seed: 1
model:
  file: models/mobilenetv2.onnx
images:
  folder: images/imagenet-samples
analysis: { max_reference_images: 16 }
attacks:
  any_untargeted: { from: '*', eps: 4/255, alpha: 1/255, steps: ${Number(a['pgd-steps'])}, max_images: ${Number(a.images)} }
featurevis: { neurons: [${neurons.join(', ')}], size: ${Number(a.size)}, steps: ${Number(a.steps)}, batch: 1 }
`;

async function project() {
  const root = await mkdtemp(path.join(os.tmpdir(), 'atlas-bench-queue-'));
  const data = path.join(root, 'data');
  await mkdir(path.join(data, 'images'), { recursive: true });
  await symlink(path.join(sharedDir(), 'models'), path.join(data, 'models'));
  await symlink(path.join(sharedDir(), 'images', 'imagenet-samples'), path.join(data, 'images', 'imagenet-samples'));
  const spec = path.join(root, 'spec.yaml');
  await writeFile(spec, SPEC);
  return { root, data, spec, cache: path.join(root, 'cache') };
}

async function hashes(r: PipelineResult): Promise<string> {
  const h = createHash('sha256');
  for (const s of r.steps) for (const f of Object.keys(s.entry!.manifest.files).sort()) h.update(`${s.id}/${f}\0`).update(await readFile(s.entry!.file(f)));
  return h.digest('hex');
}

function worker(queue: string, data: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CLI, 'worker', '--queue', queue, '--data', data], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ATLAS_QUEUE: '' } });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stderr!.on('data', (d) => {
      out += d;
      if (out.includes('taking shards')) resolve(child);
    });
    child.on('exit', () => reject(new Error(`worker exited: ${out}`)));
  });
}

const binary = redisServerBinary();
if (!binary) throw new Error('bench/queue-workers.ts needs redis-server on PATH');
const redis = await startRedis(binary);
const rows: string[] = [];
try {
  const p0 = await project();
  // Warm this process first (code versions, the model's and photos' hashes, module loading), as every queued run
  // finds it: otherwise the single-process run alone would pay for them.
  await runPipeline({ specPath: p0.spec, projectRoot: p0.root, dataDir: p0.data, cacheDir: p0.cache, dryRun: true });
  let t = performance.now();
  const single = await runPipeline({ specPath: p0.spec, projectRoot: p0.root, dataDir: p0.data, cacheDir: p0.cache });
  const t0 = (performance.now() - t) / 1000;
  const expected = await hashes(single);
  rows.push(`| no queue (one process) | ${t0.toFixed(1)} | 1.00 | – |`);
  console.error(`single process: ${t0.toFixed(1)} s`);
  let db = 0;
  for (const n of a.workers.split(',').map(Number)) {
    const queue = `${redis.url}/${++db}`;
    const p = await project();
    const workers = await Promise.all(Array.from({ length: n }, () => worker(queue, p.data)));
    const c = await queueCoordinator({ queue, shardSize: { attack: Number(a['attack-shard']) } });
    t = performance.now();
    const r = await runPipeline({ specPath: p.spec, projectRoot: p.root, dataDir: p.data, cacheDir: p.cache, shardRunner: c.run });
    const tn = (performance.now() - t) / 1000;
    const same = (await hashes(r)) === expected;
    await c.close();
    for (const w of workers) w.kill('SIGTERM');
    rows.push(`| ${n} worker${n > 1 ? 's' : ''} (${c.enqueued} jobs) | ${tn.toFixed(1)} | ${(t0 / tn).toFixed(2)} | ${same ? 'yes' : '**no**'} |`);
    console.error(`${n} worker(s): ${tn.toFixed(1)} s, ${same ? 'identical' : 'DIFFERENT'} outputs`);
  }
} finally {
  await redis.stop();
}
console.log(`${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'unknown CPU'}; ${a.neurons} neurons (${a.size} px, ${a.steps} steps, 1 per shard), ${a.images} images × ${a['pgd-steps']} PGD steps (${a['attack-shard']} per shard)\n`);
console.log('| run | wall s | speed-up | outputs identical |');
console.log('| --- | ------ | -------- | ----------------- |');
for (const r of rows) console.log(r);
