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
}
