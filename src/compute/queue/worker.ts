// A queue worker: takes shard jobs from Redis, builds each job's step from the spec it carries and this machine's data
// directory, refuses the job when its key differs from the coordinator's (another model file, other photos, another
// code version), computes the shard and returns its files through the queue. BullMQ holds a lock on every job it
// runs and renews it while the worker lives; a worker that dies (SIGKILL, lost machine) stops renewing, and another
// worker's stalled-job check moves the job back to the queue, so nothing is lost.
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { pipelineSteps } from '../pipeline/build-steps.ts';
import { planKeys, type KeyedStep } from '../pipeline/plan.ts';
import { loadSpec } from '../pipeline/spec.ts';
import type { ProviderChoice } from '../runtime/execution-provider.ts';
import { QUEUE_NAME, redisConnection } from './connection.ts';
import { refusal } from './data-check.ts';
import { encodeFiles, type ShardJob, type ShardProgress, type ShardResult } from './shard.ts';

export interface WorkerOptions {
  /** redis://host:port */
  queue: string;
  /** absolute: the data directory the jobs' specs are relative to */
  dataDir: string;
  ep?: ProviderChoice;
  /**
   * Shards taken at once by this process. They share one loaded model, and onnxruntime-node runs a session
   * synchronously on the main thread, so they take turns at it: only loading and encoding overlap.
   */
  concurrency?: number;
  /**
   * How long a job may go without this worker renewing its lock before another worker takes it over: the time a
   * dead worker's shard waits. Renewed every half of it, between onnxruntime runs (each blocks the event loop), so it
   * must exceed the longest single run; a lapsed lock lets another worker compute the same shard again.
   */
  lockDurationMs?: number;
  log?: (line: string) => void;
}

export interface RunningWorker {
  /** finish the jobs in hand, then disconnect */
  close(): Promise<void>;
}

/** Progress is sent at most this often: every PGD step of a small model would be a Redis call per few ms. */
const PROGRESS_MS = 500;

export async function startWorker(opts: WorkerOptions): Promise<RunningWorker> {
  const log = opts.log ?? (() => {});
  const specs = new Map<string, Promise<Map<string, KeyedStep>>>();
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'atlas-worker-'));
  // A spec's steps are built (model and photos hashed, model loaded on first use) once per spec and kept.
  const stepsOf = (specText: string) => {
    const id = createHash('sha256').update(specText).digest('hex');
    let steps = specs.get(id);
    if (!steps) {
      specs.set(id, (steps = (async () => {
        const file = path.join(tmp, `${id}.yaml`);
        await writeFile(file, specText);
        const spec = await loadSpec(file);
        const built = await pipelineSteps({ spec, dataDir: opts.dataDir, provider: opts.ep, log });
        return new Map((await planKeys(built.steps)).map((k) => [k.step.id, k]));
      })()));
      steps.catch(() => specs.delete(id));
    }
    return steps;
  };
  const lockDuration = opts.lockDurationMs ?? 30_000;
  const worker = new Worker<ShardJob, ShardResult>(QUEUE_NAME, async (job: Job<ShardJob, ShardResult>) => {
    const { stepId, stepKey, shard, index, of } = job.data;
    let steps: Map<string, KeyedStep>;
    try {
      steps = await stepsOf(job.data.spec);
    } catch (err) {
      // A spec this data directory cannot build (a missing model or image folder) will not build on a retry either.
      throw new UnrecoverableError(`worker ${os.hostname()} (data ${opts.dataDir}) cannot build the job's spec: ${(err as Error).message}`);
    }
    const own = steps.get(stepId);
    if (!own?.step.shards) throw new UnrecoverableError(`worker ${os.hostname()}: the job's spec has no sharded step '${stepId}'`);
    if (own.key !== stepKey) {
      const why = refusal(job.data, own.record, opts.dataDir);
      log(why);
      throw new UnrecoverableError(why);
    }
    log(`${own.step.kind}:${stepId}: shard ${index + 1}/${of} (job ${job.id})`);
    const t0 = performance.now();
    let last = 0;
    const files = await own.step.shards.compute(shard, (done, total, label) => {
      const now = Date.now();
      if (done < total && now - last < PROGRESS_MS) return;
      last = now;
      job.updateProgress({ done, total, label } satisfies ShardProgress).catch(() => {});
    });
    log(`${own.step.kind}:${stepId}: shard ${index + 1}/${of} (job ${job.id} done in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    return { files: encodeFiles(files), worker: `${os.hostname()}:${process.pid}` };
  }, {
    connection: redisConnection(opts.queue),
    concurrency: opts.concurrency ?? 1,
    lockDuration,
    // The stalled check runs as often as a lock lasts, so a dead worker's job is back in the queue within two lock
    // durations; and a job whose worker died twice is still retried (its attempts count failures, not stalls).
    stalledInterval: lockDuration,
    maxStalledCount: 3,
  });
  worker.on('error', (err) => log(`worker: ${err.message}`));
  await worker.waitUntilReady();
  return {
    async close() {
      await worker.close();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}
