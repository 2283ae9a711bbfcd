import { startWorker } from '../../compute/queue/worker.ts';
import { redisLabel } from '../../compute/queue/connection.ts';
import type { ProviderChoice } from '../../compute/runtime/execution-provider.ts';
import { dataDir, queueUrl } from '../../config.ts';

export interface WorkerCliOptions {
  queue?: string;
  data?: string;
  ep?: ProviderChoice;
  concurrency: number;
  lockDuration: number;
}

/** Compute shards from the queue until interrupted (SIGINT/SIGTERM finish the shards in hand first). */
export async function workerCommand(opts: WorkerCliOptions): Promise<void> {
  const queue = queueUrl(opts.queue);
  if (!queue) throw new Error('atlas worker needs a queue: --queue redis://host:port or ATLAS_QUEUE');
  const data = dataDir(process.cwd(), opts.data);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const worker = await startWorker({ queue, dataDir: data, ep: opts.ep, concurrency: opts.concurrency, lockDurationMs: opts.lockDuration, log });
  log(`atlas worker: taking shards from ${redisLabel(queue)} (data ${data}, ${opts.concurrency} at a time); Ctrl-C to stop`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      log('atlas worker: finishing the shards in hand');
      worker.close().then(resolve, resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
