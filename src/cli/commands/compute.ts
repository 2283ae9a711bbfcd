import path from 'node:path';
import { runPipeline } from '../../compute/pipeline/run-pipeline.ts';
import { terminalReporter } from '../../compute/pipeline/terminal-reporter.ts';
import type { SessionOptions } from '../../compute/runtime/session.ts';

export interface ComputeOptions extends SessionOptions {
  spec: string;
  force?: string[];
  dryRun?: boolean;
  /** only these step kinds (and what they depend on) */
  kinds?: string[];
}

/** Run (or plan) the compute steps of an experiment spec, as `npm run build` does before building the site. */
export async function compute(opts: ComputeOptions): Promise<void> {
  await runPipeline({
    specPath: path.resolve(opts.spec),
    projectRoot: process.cwd(),
    force: opts.force?.includes('all') ? 'all' : opts.force,
    dryRun: opts.dryRun,
    kinds: opts.kinds,
    session: { ep: opts.ep },
    reporter: terminalReporter(),
  });
}
