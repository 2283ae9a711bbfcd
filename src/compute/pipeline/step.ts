// A compute step as the pipeline sees it: its own parameters, the steps whose outputs it reads, the modules that
// compute it, and how to produce its output files. The planner (plan.ts) derives the cache key from these alone; a
// step never reads another step's key. Astro's content layer has the same contract (entries with digests); see
// src/content/.
import type { CacheEntry } from '../cache/store.ts';

export interface StepContext {
  /** progress within the step: units done of `total`, with a short label */
  progress(done: number, total: number, label: string): void;
  /** the cache entry of a step this one `needs` (already run or cached) */
  dependency(id: string): CacheEntry;
}

export interface Step {
  /** unique within the spec, e.g. `weasel_to_truck` (see step-ids.ts) */
  id: string;
  /** the kind of computation, e.g. `attack`; also the cache folder */
  kind: string;
  /**
   * What the outputs depend on besides code and other steps: spec fields, hashes of the model and of the images the
   * step reads. Keys `kind`, `code` and `needs` are the planner's.
   */
  params: Record<string, unknown>;
  /** ids of steps whose outputs this one reads: their keys are part of its key */
  needs?: readonly string[];
  /** absolute paths of the modules that compute it: the key includes the code version of their import closure */
  code: readonly string[];
  /** produce the output files (name → bytes) */
  compute(ctx: StepContext): Promise<Map<string, Uint8Array>>;
  /** how the step splits over a job queue's workers; a step without it always computes in one piece */
  shards?: Sharding;
}

/**
 * How a step splits its work into shards that can run anywhere (issue 19: a job queue's workers). A shard is a JSON
 * description of its part (a batch of neurons, a range of images) from which `compute` alone produces the part's
 * files on any machine with the same data; `merge` turns all parts' files, in order, into the step's output. The
 * step's own `compute` runs the same three functions with one shard of everything, so a sharded run's output equals a
 * single-process run's byte for byte exactly when a result does not depend on where the shards were cut — which the
 * queue tests check against a single-process run.
 */
export interface Sharding<S = unknown> {
  /** what a shard's size counts, for messages: `neurons`, `images` */
  unit: string;
  /** units per shard when a queue splits the step (a step may round it to what keeps results identical) */
  size: number;
  /** the step's work in shards of about `size` units (Infinity: one shard), each with how many units it holds */
  plan(size: number, ctx: StepContext): Promise<{ shard: S; units: number }[]>;
  /** one shard's files; reads no other step's output (a worker has none), only the shard and the data directory */
  compute(shard: S, progress: StepContext['progress']): Promise<Map<string, Uint8Array>>;
  /** the step's output files from every shard's files, in plan order */
  merge(shards: readonly S[], parts: readonly ReadonlyMap<string, Uint8Array>[], ctx: StepContext): Promise<Map<string, Uint8Array>>;
}

export interface ShardedStep<S = unknown> extends Step {
  shards: Sharding<S>;
}

/** A sharded step computed in this process: one shard of everything, then the merge. */
export async function computeInOnePiece<S>(sharding: Sharding<S>, ctx: StepContext): Promise<Map<string, Uint8Array>> {
  const planned = await sharding.plan(Infinity, ctx);
  const parts: Map<string, Uint8Array>[] = [];
  for (const { shard } of planned) parts.push(await sharding.compute(shard, ctx.progress));
  return sharding.merge(planned.map((p) => p.shard), parts, ctx);
}
