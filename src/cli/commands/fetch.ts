import path from 'node:path';
import { loadSpec } from '../../compute/pipeline/spec.ts';
import { dataDir, mirror } from '../../config.ts';
import { loadManifest } from '../../data-dir/data-manifest.ts';
import { DEFAULT_JOBS, fetchData, MAX_JOBS } from '../../data-dir/fetch-data.ts';
import { specDataPaths } from '../../data-dir/spec-data.ts';
import { parseInteger } from '../parse.ts';

export interface FetchCliOptions {
  /** fetch only what this experiment spec reads */
  spec?: string;
  /** default: ATLAS_DATA, else data/ */
  data?: string;
  /** default: ATLAS_MIRROR, else each file's public URL */
  mirror?: string;
  /** another data manifest (default: src/data-dir/data-manifest.json) */
  manifest?: string;
  jobs?: string;
  verify?: boolean;
  dryRun?: boolean;
}

/** Fetch the manifest's files that the data directory lacks: all, those of a spec, or the given paths. */
export async function fetchCommand(paths: string[], opts: FetchCliOptions): Promise<void> {
  const jobs = parseInteger(opts.jobs ?? String(DEFAULT_JOBS), '--jobs', 1);
  if (jobs > MAX_JOBS) throw new Error(`--jobs must be at most ${MAX_JOBS} (be polite to the host), got ${jobs}`);
  const manifest = await loadManifest(opts.manifest === undefined ? undefined : path.resolve(opts.manifest));
  const wanted = [...paths, ...(opts.spec === undefined ? [] : specDataPaths(await loadSpec(path.resolve(opts.spec))))];
  const dir = dataDir(process.cwd(), opts.data);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const report = await fetchData({
    dataDir: dir,
    manifest,
    paths: wanted.length ? wanted : undefined,
    mirror: mirror(opts.mirror),
    jobs,
    verify: opts.verify,
    dryRun: opts.dryRun,
    log,
    progress: !opts.dryRun,
  });
  if (!report.fetched.length && !report.derived.length) {
    log(`fetch: all ${report.selected} file(s) present in ${dir}${opts.verify ? ', sha256 verified' : ''}`);
  }
}
