// One way in for `atlas compute` and the site build: with a queue URL (ATLAS_QUEUE or --queue) the steps that declare
// shards go to the workers; without, nothing about a run changes.
import type { ShardRunner } from '../pipeline/run-pipeline.ts';
import { queueCoordinator, type CoordinatorOptions } from './coordinator.ts';

/** `run` with a shard runner on the queue at `url` (connections closed afterwards), or with none when `url` is unset. */
export async function withQueue<T>(
  url: string | undefined, log: (line: string) => void, run: (shardRunner: ShardRunner | undefined) => Promise<T>,
  shardSize?: CoordinatorOptions['shardSize'],
): Promise<T> {
  if (!url) return run(undefined);
  const coordinator = await queueCoordinator({ queue: url, log, shardSize });
  try {
    return await run(coordinator.run);
  } finally {
    await coordinator.close();
  }
}
