// A shard as the queue carries it: its content key, derived from its step's key, so a shard computed once — on any
// machine — is found in the coordinator's cache and never computed again; the job that asks a worker for it; and the
// files a worker returns through Redis (base64), so coordinator and workers need share no file system.
import { hashJson } from '../cache/hash.ts';

/** The cache folder of a step kind's shard results (`<cache>/featurevis-shards/<shard key>/`). */
export const shardKind = (kind: string): string => `${kind}-shards`;

/** A shard's key: the step's key and the shard's description. */
export function shardKey(stepKey: string, shard: unknown): string {
  return hashJson({ step: stepKey, shard });
}

/** What a worker needs to compute one shard. */
export interface ShardJob {
  /** the experiment spec's YAML: the worker builds the step from it with its own data directory */
  spec: string;
  stepId: string;
  /** the coordinator's key of the step: the worker computes its own and refuses the job when they differ */
  stepKey: string;
  /** what the coordinator's key is the hash of, to say why a worker's differs */
  record: Record<string, unknown>;
  shard: unknown;
  shardKey: string;
  /** position in the step's plan, for messages */
  index: number;
  of: number;
}

/** A worker's answer: the shard's files, base64. */
export interface ShardResult {
  files: Record<string, string>;
  /** who computed it, for the coordinator's log */
  worker: string;
}

/** Progress a worker reports for its job (job.updateProgress). */
export interface ShardProgress {
  done: number;
  total: number;
  label: string;
}

export function encodeFiles(files: ReadonlyMap<string, Uint8Array>): Record<string, string> {
  return Object.fromEntries([...files].map(([name, bytes]) => [name, Buffer.from(bytes).toString('base64')]));
}

export function decodeFiles(files: Record<string, string>): Map<string, Uint8Array> {
  return new Map(Object.entries(files).map(([name, b64]) => [name, new Uint8Array(Buffer.from(b64, 'base64'))]));
}
