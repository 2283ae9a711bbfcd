// Issue 19: the heavy steps sharded over `atlas worker` processes through BullMQ on a local Redis (loopback only).
// Expected bytes come from a single-process run of the same spec (no queue: each step in one piece), never from the
// sharded path itself.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Graph } from '../src/compute/onnx/graph.ts';
import { runPipeline, type PipelineResult } from '../src/compute/pipeline/run-pipeline.ts';
import { queueCoordinator, type QueueCoordinator } from '../src/compute/queue/coordinator.ts';
import { testRedis } from '../src/config.ts';
import { SPEC_HEADER, testProject, type TestProject } from './helpers/project.ts';
import { redisServerBinary, startRedis, type TestRedis } from './helpers/redis.ts';
import { shared } from './helpers/shared.ts';

const CLI = path.resolve(import.meta.dirname, '../src/cli/atlas.ts');

// Two featurevis shards (one neuron per render batch) and, with one image per shard, two attack shards and two
// activations shards (one image per analysis batch); a random start, so the attack's shards must draw each image's
// start as the whole run does. The activations shards also return their rows of the depth layers' means, from which
// the merge takes σ over both images. The analyses that read the activations (neurons, depth, polysemantic, atlas) run
// on the coordinator.
const SPEC = `${SPEC_HEADER}attacks:
  any_untargeted: { from: '*', eps: 4/255, alpha: 1/255, steps: 3, random_start: true }
layers: [features.17.conv.2]
analysis: { batch: 1 }
depth: [features.16.conv.2, features.17.conv.2]
featurevis: { neurons: [features.17.conv.2:1, features.17.conv.2:2], size: 16, steps: 24, batch: 1 }
`;
const SHARD_SIZE = { attack: 1, activations: 1 };
const STEPS = ['any_untargeted', 'activations', 'neurons_any_untargeted', 'depth', 'polysemantic', 'atlas', 'featurevis'];
const SHARDED = ['any_untargeted', 'activations', 'featurevis'];
/** Jobs a run of the spec on an empty cache enqueues: two shards of each sharded step. */
const JOBS = 6;
/** A dead worker's shard is taken over after this (the default, 30 s, would make the test wait). */
const LOCK_MS = 2000;

// .ci/run's server, else one of our own, else the tests skip and say why.
const given = testRedis();
const redisBinary = given ? undefined : redisServerBinary();
if (!given && !redisBinary) console.warn('queue tests skipped: no ATLAS_TEST_REDIS and no redis-server on PATH (.ci/run installs Debian\'s redis-server)');

/** Every output file of every step, by its sha256. */
async function entryBytes(r: PipelineResult): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const s of r.steps) {
    for (const f of Object.keys(s.entry!.manifest.files).sort()) out[`${s.id}/${f}`] = createHash('sha256').update(await readFile(s.entry!.file(f))).digest('hex');
  }
  return out;
}

describe.skipIf(!given && !redisBinary)('job queue (BullMQ on a local redis-server)', () => {
  let redis: TestRedis;
  let reference: Record<string, string>;
  let db = 0;
  const workers: ChildProcess[] = [];
  const coordinators: QueueCoordinator[] = [];

  /** A fresh Redis database per test (1, 2, 3), so no test finds another's jobs. */
  const queueUrl = () => `${redis.url}/${++db}`;

  function startWorker(queue: string, data: string): ChildProcess & { output: string } {
    const child = spawn(process.execPath, [CLI, 'worker', '--queue', queue, '--data', data, '--lock-duration', String(LOCK_MS)], {
      env: { ...process.env, ATLAS_QUEUE: '' }, stdio: ['ignore', 'ignore', 'pipe'],
    }) as ChildProcess & { output: string };
    child.output = '';
    child.stderr!.on('data', (d) => (child.output += d));
    workers.push(child);
    return child;
  }

  async function coordinator(queue: string, recheckMs?: number): Promise<QueueCoordinator> {
    const c = await queueCoordinator({ queue, shardSize: SHARD_SIZE, recheckMs });
    coordinators.push(c);
    return c;
  }

  const runOn = (p: TestProject, c: QueueCoordinator, extra: Parameters<typeof runPipeline>[0]['reporter'] = undefined) =>
    runPipeline({ specPath: p.spec, projectRoot: p.root, dataDir: p.data, cacheDir: p.cache, shardRunner: c.run, reporter: extra });

  beforeAll(async () => {
    redis = given ? { url: given, stop: async () => {} } : await startRedis(redisBinary!);
    const p = await testProject(SPEC);
    reference = await entryBytes(await runPipeline({ specPath: p.spec, projectRoot: p.root, dataDir: p.data, cacheDir: p.cache }));
  });

  afterEach(async () => {
    for (const c of coordinators.splice(0)) await c.close();
    for (const w of workers.splice(0)) {
      if (w.exitCode !== null || w.signalCode !== null) continue;
      const exited = new Promise((resolve) => w.once('exit', resolve));
      w.kill('SIGKILL');
      await exited;
    }
  });

  afterAll(async () => {
    await redis?.stop();
  });

  it('two workers compute the featurevis, attack and activations shards; the outputs equal the single-process run byte for byte, and a second run enqueues nothing', async () => {
    const queue = queueUrl();
    const p = await testProject(SPEC);
    startWorker(queue, p.data);
    startWorker(queue, p.data);
    const c = await coordinator(queue);
    const first = await runOn(p, c);
    expect(first.steps.map((s) => [s.id, s.status])).toEqual(STEPS.map((id) => [id, 'computed']));
    expect(c.enqueued).toBe(JOBS);
    expect(await entryBytes(first)).toEqual(reference);

    const second = await runOn(p, c);
    expect(second.steps.map((s) => s.status)).toEqual(STEPS.map(() => 'cached'));
    expect(c.enqueued).toBe(JOBS);

    // The sharded steps' entries gone but their shards cached (a coordinator interrupted before the merge): the
    // merges run again from the cache, and still nothing goes on the queue.
    for (const s of first.steps.filter((s) => SHARDED.includes(s.id))) await rm(s.entry!.dir, { recursive: true });
    const third = await runOn(p, c);
    expect(third.steps.map((s) => [s.id, s.status])).toEqual(STEPS.map((id) => [id, SHARDED.includes(id) ? 'computed' : 'cached']));
    expect(c.enqueued).toBe(JOBS);
    expect(await entryBytes(third)).toEqual(reference);
  });

  it('a worker killed with SIGKILL mid-shard loses nothing: its shard returns to the queue, another worker finishes it, the outputs are the same', async () => {
    const queue = queueUrl();
    const p = await testProject(SPEC);
    const doomed = startWorker(queue, p.data);
    const c = await coordinator(queue);
    let killedAt: string | undefined;
    let successor: ReturnType<typeof startWorker> | undefined;
    const result = await runOn(p, c, {
      stepProgress(step, done, total, label) {
        // Progress inside a shard while none of the step's shards has finished can only come from the worker's own
        // report: kill it there, then start the worker that is to take over.
        if (killedAt || !(done > 0 && done < total && label.includes('; 0 of '))) return;
        killedAt = `${step.id} at ${done}/${total}`;
        doomed.kill('SIGKILL');
        successor = startWorker(queue, p.data);
      },
    });
    expect(killedAt).toBeDefined();
    expect(doomed.signalCode).toBe('SIGKILL');
    // The job the dead worker had started and not finished was computed by its successor.
    const started = [...doomed.output.matchAll(/shard \d+\/\d+ \(job ([0-9a-f]+)\)/g)].map((m) => m[1]);
    const unfinished = started.filter((id) => !doomed.output.includes(`job ${id} done`));
    expect(unfinished).toHaveLength(1);
    expect(successor!.output).toContain(`(job ${unfinished[0]})`);
    expect(await entryBytes(result)).toEqual(reference);
  });

  it.skipIf(!redisServerBinary())('a Redis server that restarts without its data mid-shard: the coordinator enqueues the lost shards again, and the outputs are the same', async () => {
    // A server of this test's own, to stop and start again empty on the same port.
    let own = await startRedis(redisServerBinary()!);
    try {
      const p = await testProject(SPEC);
      const w = startWorker(own.url, p.data);
      const c = await coordinator(own.url, 1000);
      let restarted: Promise<void> | undefined;
      const result = await runOn(p, c, {
        stepProgress(_step, done, total, label) {
          if (restarted || !(done > 0 && done < total && label.includes('; 0 of '))) return;
          restarted = (async () => {
            await own.stop();
            own = await startRedis(redisServerBinary()!, own.port);
          })();
        },
      });
      await restarted;
      expect(restarted).toBeDefined();
      expect(c.enqueued).toBeGreaterThan(JOBS);
      expect(w.exitCode).toBeNull();
      expect(await entryBytes(result)).toEqual(reference);
    } finally {
      // Before the server goes: a client closing against a stopped server would wait for it.
      for (const c of coordinators.splice(0)) await c.close();
      for (const w of workers.splice(0)) w.kill('SIGKILL');
      await own.stop();
    }
  });

  it('a worker whose model file differs refuses the job with an error naming the model file', async () => {
    const queue = queueUrl();
    const p = await testProject(SPEC);
    // The worker's data directory: the same photos, but a model file with other bytes (same network, another doc string).
    const other = await testProject(SPEC);
    const g = Graph.decode(await readFile(shared('models', 'mobilenetv2.onnx')));
    g.model.docString = 'retrained';
    const model = path.join(other.data, 'models', 'mobilenetv2.onnx');
    await rm(model);
    await writeFile(model, g.encode());
    const w = startWorker(queue, other.data);
    const c = await coordinator(queue);
    await expect(runOn(p, c)).rejects.toThrow(/shard 1\/2 failed: worker .* refuses step any_untargeted: its model file has sha256 [0-9a-f]{64}, the coordinator's has [0-9a-f]{64}/);
    expect(w.output).toMatch(/refuses step any_untargeted/);
  });
});
