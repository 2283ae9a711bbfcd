// The coordinator's side of the queue: for a step that declares shards, plan them, take from this build's cache the
// shards already computed (here or by any worker, earlier), enqueue the others as BullMQ jobs whose id is the shard's
// key (so a job still queued or running from an interrupted build is joined, not duplicated), show one progress bar
// fed by the workers' progress events, store each returned shard in the cache as it arrives (atomically: CacheStore
// writes a folder and renames it), and merge the shards into the step's output.
import { readFile } from 'node:fs/promises';
import { Queue, QueueEvents, type Job } from 'bullmq';
import type { ShardedCompute, ShardRunner } from '../pipeline/run-pipeline.ts';
import { QUEUE_NAME, redisConnection, redisLabel } from './connection.ts';
import { decodeFiles, shardKey, shardKind, type ShardJob, type ShardProgress, type ShardResult } from './shard.ts';

/** How often a wait for a shard checks that its job still exists. */
const RECHECK_MS = 15_000;

export interface CoordinatorOptions {
  /** redis://host:port */
  queue: string;
  /** units per shard by step kind (`featurevis`: neurons, `attack`: images); default the step's own */
  shardSize?: Readonly<Record<string, number>>;
  /** tries per shard: a worker that fails (not one that dies: that job returns by the stalled check) */
  attempts?: number;
  /** how often a wait for a shard checks that its job still exists (default 15 s) */
  recheckMs?: number;
  log?: (line: string) => void;
}

export interface QueueCoordinator {
  run: ShardRunner;
  /** jobs this coordinator has put on the queue so far (a second run of a computed spec adds none) */
  readonly enqueued: number;
  close(): Promise<void>;
}

export async function queueCoordinator(opts: CoordinatorOptions): Promise<QueueCoordinator> {
  const log = opts.log ?? (() => {});
  const connection = redisConnection(opts.queue);
  const queue = new Queue<ShardJob, ShardResult>(QUEUE_NAME, { connection });
  const events = new QueueEvents(QUEUE_NAME, { connection });
  // Listening before any job is added, so no progress or completion is missed.
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
  let enqueued = 0;

  async function run({ step, key, record, forced, specPath, store, ctx }: ShardedCompute): Promise<Map<string, Uint8Array>> {
    const sharding = step.shards;
    const planned = await sharding.plan(opts.shardSize?.[step.kind] ?? sharding.size, ctx);
    const kind = shardKind(step.kind);
    const keys = planned.map((p) => shardKey(key, p.shard));
    const parts: (Map<string, Uint8Array> | undefined)[] = planned.map(() => undefined);
    const units = planned.map((p) => p.units);
    const totalUnits = units.reduce((a, b) => a + b, 0);
    const fraction = planned.map(() => 0);
    for (const [i, k] of keys.entries()) {
      if (forced) break;
      const found = await store.lookup(kind, k);
      if (found.status !== 'hit') continue;
      parts[i] = new Map(await Promise.all(Object.keys(found.entry.manifest.files).map(async (f) => [f, new Uint8Array(await readFile(found.entry.file(f)))] as const)));
      fraction[i] = 1;
    }
    const missing = planned.map((_, i) => i).filter((i) => !parts[i]);
    log(`${step.kind}:${step.id}: ${planned.length} shard(s) of ≤ ${Math.max(...units)} ${sharding.unit}, ${planned.length - missing.length} cached, ${missing.length} sent to ${redisLabel(opts.queue)}`);
    const byJob = new Map(missing.map((i) => [keys[i], i]));
    const show = () => {
      const done = fraction.reduce((a, f, i) => a + f * units[i], 0);
      const finished = fraction.filter((f) => f === 1).length;
      ctx.progress(Math.round(done * 10) / 10, totalUnits, `${sharding.unit}; ${finished} of ${planned.length} shards done`);
    };
    const onProgress = ({ jobId, data }: { jobId: string; data: unknown }) => {
      const i = byJob.get(jobId);
      const p = data as ShardProgress;
      if (i === undefined || typeof p !== 'object' || !(p.total > 0)) return;
      fraction[i] = Math.min(fraction[i] === 1 ? 1 : 0.999, p.done / p.total);
      show();
    };
    events.on('progress', onProgress);
    try {
      show();
      if (missing.length > 0) {
        const spec = await readFile(specPath, 'utf8');
        await Promise.all(missing.map(async (i) => {
          const data: ShardJob = { spec, stepId: step.id, stepKey: key, record, shard: planned[i].shard, shardKey: keys[i], index: i, of: planned.length };
          let result: ShardResult;
          try {
            result = await finished(data, forced);
          } catch (err) {
            throw new Error(`${step.kind}:${step.id}: shard ${i + 1}/${planned.length} failed: ${(err as Error).message}`, { cause: err });
          }
          const files = decodeFiles(result.files);
          await store.put(kind, keys[i], { step: step.id, stepKey: key, shard: planned[i].shard }, files);
          parts[i] = files;
          fraction[i] = 1;
          show();
          // Stored here: Redis need not keep its copy (a coordinator that dies first leaves it for a day).
          await queue.remove(keys[i]).catch(() => {});
        }));
      }
    } finally {
      events.off('progress', onProgress);
    }
    return sharding.merge(planned.map((p) => p.shard), parts as Map<string, Uint8Array>[], ctx);
  }

  /**
   * The shard's result once a worker has computed it. The wait checks now and then that the job still exists: a Redis
   * server restarted without its data has lost it, and it is enqueued again rather than waited for for ever.
   */
  async function finished(data: ShardJob, forced: boolean): Promise<ShardResult> {
    let job = await enqueue(data, forced);
    for (;;) {
      try {
        return await job.waitUntilFinished(events, opts.recheckMs ?? RECHECK_MS);
      } catch (err) {
        const current = await queue.getJob(data.shardKey);
        if (!current) {
          log(`${data.stepId}: shard ${data.index + 1}/${data.of} is no longer on the queue (Redis lost it); enqueued again`);
          job = await enqueue(data, false);
          continue;
        }
        if ((await current.getState()) === 'failed') throw err;
        // Still queued or running: the wait timed out only to check.
      }
    }
  }

  /** The shard's job: the one already on the queue under its key (waiting, running or done), else a new one. */
  async function enqueue(data: ShardJob, forced: boolean): Promise<Job<ShardJob, ShardResult>> {
    const existing = await queue.getJob(data.shardKey);
    if (existing) {
      const state = await existing.getState();
      // A failed job (a refusing worker, a crash) is tried again; a finished one from a forced step is recomputed.
      if (state === 'failed' || (forced && state === 'completed')) await existing.remove();
      else if (state !== 'unknown') return existing;
    }
    enqueued++;
    return queue.add(`${data.stepId}#${data.index + 1}`, data, {
      jobId: data.shardKey,
      attempts: opts.attempts ?? 2,
      backoff: { type: 'fixed', delay: 1000 },
      removeOnComplete: { age: 24 * 3600 },
      removeOnFail: { age: 24 * 3600 },
    });
  }

  return {
    run,
    get enqueued() {
      return enqueued;
    },
    async close() {
      await events.close();
      await queue.close();
    },
  };
}
