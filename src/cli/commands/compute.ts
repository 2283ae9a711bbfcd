import path from 'node:path';
import { runPipeline } from '../../compute/pipeline/run-pipeline.ts';
import { terminalReporter } from '../../compute/pipeline/terminal-reporter.ts';
import type { SessionOptions } from '../../compute/runtime/session.ts';

export interface ComputeOptions extends SessionOptions {
  spec: string;
  force?: string[];
  dryRun?: boolean;
}

/** Run (or plan) the compute steps of an experiment spec, as `npm run build` does before building the site. */
export async function compute(opts: ComputeOptions): Promise<void> {
  await runPipeline({
    specPath: path.resolve(opts.spec),
    projectRoot: process.cwd(),
    force: opts.force?.includes('all') ? 'all' : opts.force,
    dryRun: opts.dryRun,
    session: { ep: opts.ep },
    reporter: terminalReporter(),
  });
}
