// A compute step as the pipeline sees it: a name, the inputs its cache key is computed from, and how to produce its
// output files. Astro's content layer has the same contract (entries with digests); see src/content/.

export interface StepContext {
  /** progress within the step: units done of `total`, with a short label */
  progress(done: number, total: number, label: string): void;
  /** the cache entry of a step this one depends on (already run or cached) */
  dependency(id: string): CacheEntry;
}

import type { CacheEntry } from '../cache/store.ts';

export interface Step {
  /** unique within the spec, e.g. `weasel_to_truck` */
  id: string;
  /** the kind of computation, e.g. `attack`; also the cache folder */
  kind: string;
  /** everything the outputs depend on (hashes, parameters, code version): the cache key is their hash */
  inputs: Record<string, unknown>;
  /** ids of steps whose outputs this one reads; their keys are part of its inputs */
  needs?: string[];
  /** produce the output files (name → bytes) */
  compute(ctx: StepContext): Promise<Map<string, Uint8Array>>;
}
