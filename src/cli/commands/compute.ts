import path from 'node:path';
import { runPipeline } from '../../compute/pipeline/run-pipeline.ts';
import { terminalReporter } from '../../compute/pipeline/terminal-reporter.ts';
import { withQueue } from '../../compute/queue/with-queue.ts';
import type { ProviderChoice } from '../../compute/runtime/execution-provider.ts';
import { queueUrl, specPath } from '../../config.ts';

export interface ComputeOptions {
  /** execution provider (cpu, webgpu, cuda) or auto; default ATLAS_EP, else cpu */
  ep?: ProviderChoice;
  /** default: ATLAS_SPEC, else content/article.experiments.yaml */
  spec?: string;
  /** default: ATLAS_DATA, else data/ */
  data?: string;
  /** default: ATLAS_CACHE, else .cache/atlas/ */
  cache?: string;
  force?: string[];
  dryRun?: boolean;
  /** only these step kinds (and what they depend on) */
  kinds?: string[];
  /** redis://host:port: shard the heavy steps over `atlas worker` processes; default ATLAS_QUEUE, else none */
  queue?: string;
  /** `<step kind>=<units>` each: neurons per featurevis shard, images per attack or activations shard */
  shardSize?: string[];
}

/** Run (or plan) the compute steps of an experiment spec, as `npm run build` does before building the site. */
export async function compute(opts: ComputeOptions): Promise<void> {
  const reporter = terminalReporter();
  // A dry run plans keys only: it needs no queue.
  const queue = opts.dryRun ? undefined : queueUrl(opts.queue);
  await withQueue(queue, (l) => reporter.log?.(l), (shardRunner) => runPipeline({
    specPath: path.resolve(specPath(opts.spec)),
    projectRoot: process.cwd(),
    dataDir: opts.data,
    cacheDir: opts.cache,
    force: opts.force?.includes('all') ? 'all' : opts.force,
    dryRun: opts.dryRun,
    kinds: opts.kinds,
    provider: opts.ep,
    reporter,
    shardRunner,
  }), opts.shardSize && parseShardSizes(opts.shardSize));
}

/** The step kinds that declare shards (steps/featurevis.ts, attack.ts, activations.ts), for checking the flag. */
const SHARDED_KINDS = ['featurevis', 'attack', 'activations'];

/** `featurevis=16 attack=64` → { featurevis: 16, attack: 64 }. */
export function parseShardSizes(items: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) {
    const m = /^([a-z_]+)=(\d+)$/.exec(item);
    if (!m || Number(m[2]) < 1) throw new Error(`--shard-size: expected <kind>=<n> with n ≥ 1 (featurevis=8, attack=16, activations=256), got '${item}'`);
    if (!SHARDED_KINDS.includes(m[1])) throw new Error(`--shard-size: '${m[1]}' is not a sharded step kind (${SHARDED_KINDS.join(', ')})`);
    out[m[1]] = Number(m[2]);
  }
  return out;
}
