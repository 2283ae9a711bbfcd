// Fill the data directory from the manifest: what `atlas fetch` does, and what `npm run build` should do before it
// computes (fetchForSpec). Files already there are kept when their size is the manifest's (and, with `verify`, their
// sha256); missing ones are fetched a few at a time (polite to one host, fast enough on many small photos) from
// ATLAS_MIRROR when one is set — and then only from it, so a mirror never leaks requests to public hosts — else from
// their public URLs; derived ones are computed once what they are derived from is there.
//
// One failure that means "no network" (the host is unreachable) stops the run with one message; other failures let
// the rest finish and are reported together at the end, so a rerun has less to do.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { loadSpec } from '../compute/pipeline/spec.ts';
import { acceptedDigests, loadManifest, selectFiles, type DataFile, type DataManifest } from './data-manifest.ts';
import { deriveFile } from './derivations.ts';
import { FetchError, fetchFile, sha256File } from './fetch-file.ts';
import { fetchProgress, type FetchProgress } from './fetch-progress.ts';
import { mirrorLocation } from './mirror.ts';
import { specDataPaths } from './spec-data.ts';

export interface FetchDataOptions {
  dataDir: string;
  /** default: src/data-dir/data-manifest.json */
  manifest?: DataManifest;
  /** data-directory paths (files, or folders for every file under them); default: the whole manifest */
  paths?: readonly string[];
  /** ATLAS_MIRROR or --mirror, already resolved (src/config.ts) */
  mirror?: string;
  /** downloads at a time */
  jobs?: number;
  /** check the sha256 of files already there, not only their size */
  verify?: boolean;
  /** say what would be fetched, fetch nothing */
  dryRun?: boolean;
  log?: (line: string) => void;
  /** a progress bar (or lines) on stderr while downloading */
  progress?: boolean;
  /** passed to each download (tests shorten them) */
  attempts?: number;
  retryDelayMs?: number;
  signal?: AbortSignal;
}

export interface FetchDataReport {
  /** files of the selection */
  selected: number;
  present: number;
  /** fetched (or, with dryRun, to be fetched), data-directory paths */
  fetched: string[];
  derived: string[];
  bytes: number;
  seconds: number;
}

export const DEFAULT_JOBS = 4;
export const MAX_JOBS = 16;

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Where the data directory's file `file` is on disk. */
const onDisk = (dataDir: string, file: string) => path.join(dataDir, ...file.split('/'));

type State = 'present' | 'missing' | { differs: string };

async function check(f: DataFile, dataDir: string, verify: boolean): Promise<State> {
  const st = await stat(onDisk(dataDir, f.path)).catch(() => undefined);
  if (!st) return 'missing';
  if (!st.isFile()) return { differs: 'is not a file' };
  const accepted = acceptedDigests(f);
  if (!accepted.some((a) => a.size === st.size)) return { differs: `has ${st.size} bytes, the manifest says ${accepted.map((a) => a.size).join(' or ')}` };
  if (verify) {
    const actual = await sha256File(onDisk(dataDir, f.path));
    if (!accepted.some((a) => a.sha256 === actual)) return { differs: `has sha256 ${actual}, the manifest says ${accepted.map((a) => a.sha256).join(' or ')}` };
  }
  return 'present';
}

/** Map with at most `limit` calls in flight. */
async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const k = next++;
      out[k] = await fn(items[k]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Paths for a message: each one when there are few, else counts per folder (`images/imagenet-samples/ (1001 files)`). */
function summarize(paths: readonly string[], max = 4): string {
  if (paths.length <= max) return paths.join(', ');
  const byFolder = new Map<string, number>();
  for (const p of paths) {
    const folder = p.slice(0, p.lastIndexOf('/') + 1) || p;
    byFolder.set(folder, (byFolder.get(folder) ?? 0) + 1);
  }
  const parts = [...byFolder].map(([folder, n]) => (n === 1 ? paths.find((p) => p.startsWith(folder))! : `${folder} (${n} files)`));
  return parts.length > max ? `${parts.slice(0, max).join(', ')} and ${parts.length - max} more folders` : parts.join(', ');
}

export async function fetchData(opts: FetchDataOptions): Promise<FetchDataReport> {
  const started = Date.now();
  const log = opts.log ?? (() => {});
  const dataDir = path.resolve(opts.dataDir);
  const where = `ATLAS_DATA=${dataDir}`;
  const manifest = opts.manifest ?? await loadManifest();
  const jobs = opts.jobs ?? DEFAULT_JOBS;
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > MAX_JOBS) throw new Error(`jobs must be a whole number from 1 to ${MAX_JOBS}, got ${jobs}`);

  const selection = selectFiles(manifest, opts.paths);
  const { unknown } = selection;
  const states = new Map<DataFile, State>();
  const checkAll = async (list: readonly DataFile[]) => {
    const found = await pool(list, 32, (f) => check(f, dataDir, opts.verify ?? false));
    list.forEach((f, k) => states.set(f, found[k]));
  };
  await checkAll(selection.files);
  // A derived file that is missing needs what it is made from (when no mirror has it ready made).
  const sources = selection.files
    .filter((f) => f.derivedFrom !== undefined && states.get(f) === 'missing')
    .map((f) => manifest.byPath.get(f.derivedFrom!)!)
    .filter((s) => !states.has(s));
  await checkAll(sources);
  const files = manifest.files.filter((f) => states.has(f));
  const missing = files.filter((f) => states.get(f) === 'missing');
  const differs = files.flatMap((f) => {
    const state = states.get(f)!;
    return typeof state === 'object' ? [`${f.path} ${state.differs}`] : [];
  });
  // Paths a spec names that the manifest lacks are the user's own files: fine when they are there.
  const absent = (await pool(unknown, 32, async (p) => ((await stat(onDisk(dataDir, p)).catch(() => undefined)) ? undefined : p))).filter((p): p is string => p !== undefined);

  const mirror = opts.mirror;
  const needMirror = mirror ? [] : missing.filter((f) => f.mirrorOnly);
  const obtainable = missing.filter((f) => !needMirror.includes(f));
  const downloads = obtainable.filter((f) => !f.derive || mirror);
  const derivations = obtainable.filter((f) => f.derive && !mirror);
  const bytes = downloads.reduce((n, f) => n + (mirror || !f.urlSize ? f.size : f.urlSize), 0);
  const report: FetchDataReport = { selected: files.length, present: files.length - missing.length - differs.length, fetched: [], derived: [], bytes: 0, seconds: 0 };

  if (missing.length) {
    const from = mirror ? `from ${mirror}` : 'from their public URLs';
    const todo = [
      ...(downloads.length ? [`${plural(downloads.length, 'file')} to download (${mb(bytes)}) ${from}`] : []),
      ...(derivations.length ? [`${plural(derivations.length, 'file')} to make`] : []),
      ...(needMirror.length ? [`${needMirror.length} only a mirror has`] : []),
    ];
    log(`fetch: ${plural(files.length, 'file')} selected, ${report.present} present; ${todo.join(', ')}; into ${dataDir}`);
  }
  if (opts.dryRun) {
    for (const f of obtainable) log(`  would ${f.derive && !mirror ? `make ${f.path} from ${f.derivedFrom}` : `fetch ${f.path} (${mb(f.size)})`}`);
    report.fetched = downloads.map((f) => f.path);
    report.derived = derivations.map((f) => f.path);
  } else {
    const failures: FetchError[] = [];
    const progress: FetchProgress | undefined = opts.progress && downloads.length ? fetchProgress(bytes, downloads.length) : undefined;
    const abort = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, abort.signal]) : abort.signal;
    let offline: FetchError | undefined;
    const unreachableAdvice = mirror
      ? `Check the mirror (ATLAS_MIRROR or --mirror: ${mirror}), or put the file in the data directory yourself`
      : undefined;
    try {
      await pool(downloads, jobs, async (f) => {
        if (offline || signal.aborted) return;
        const sources = mirror
          ? [{ from: mirrorLocation(mirror, f.path), sha256: f.sha256, size: f.size }]
          : [f.url!, ...f.alternates].map((u) => ({ from: u, sha256: f.urlSha256 ?? f.sha256, size: f.urlSize ?? f.size }));
        let first: FetchError | undefined;
        for (const s of sources) {
          try {
            await fetchFile({ file: f.path, dataDir, ...s, onBytes: (n) => progress?.add(n), attempts: opts.attempts, retryDelayMs: opts.retryDelayMs, signal, unreachableAdvice });
            progress?.add(0, true);
            report.fetched.push(f.path);
            report.bytes += s.size;
            return;
          } catch (err) {
            if (!(err instanceof FetchError)) throw err;
            first ??= err;
          }
        }
        // A derived file the mirror lacks is made here instead.
        if (f.derive && first?.failure === 'missing') {
          derivations.push(f);
          progress?.add(0, true);
          return;
        }
        if (first?.failure === 'unreachable') {
          offline ??= first;
          abort.abort(first);
          return;
        }
        failures.push(first!);
      });
    } catch (err) {
      if (!offline) throw err;
    } finally {
      progress?.stop();
    }
    if (offline) throw offline;
    for (const f of derivations) {
      const source = manifest.byPath.get(f.derivedFrom!)!;
      if ((await check(source, dataDir, false)) !== 'present') {
        failures.push(new FetchError(`cannot make ${f.path}: ${source.path} is not in the data directory (${where})`, 'missing', f.path, source.path));
        continue;
      }
      log(`fetch: making ${f.path} from ${source.path} (${f.derive})`);
      await deriveFile({ file: f.path, from: source.path, derive: f.derive!, dataDir, sha256: f.sha256 });
      report.derived.push(f.path);
    }
    const problems: string[] = [];
    if (failures.length) problems.push(failures.length === 1 ? failures[0].message : `${failures.length} files could not be fetched — ${summarize(failures.map((e) => e.file))}; the first: ${failures[0].message}`);
    if (needMirror.length) problems.push(`${needMirror.length === 1 ? '1 file has' : `${needMirror.length} files have`} no public URL and come${needMirror.length === 1 ? 's' : ''} only from a mirror — ${summarize(needMirror.map((f) => f.path))}: set ATLAS_MIRROR (or --mirror) to a base URL or a folder laid out like the data directory, or copy ${needMirror.length === 1 ? 'it' : 'them'} into ${where}`);
    if (differs.length) problems.push(`${plural(differs.length, 'file')} in the data directory differ${differs.length === 1 ? 's' : ''} from the manifest (${differs[0]}${differs.length > 1 ? `, and ${differs.length - 1} more` : ''}): delete ${differs.length === 1 ? 'it' : 'them'} to fetch again (${where})`);
    if (absent.length) problems.push(`not in the data manifest and not in the data directory: ${summarize(absent)} — put ${absent.length === 1 ? 'it' : 'them'} there yourself (${where})`);
    report.seconds = (Date.now() - started) / 1000;
    if (report.fetched.length || report.derived.length) {
      const done = [
        ...(report.fetched.length ? [`${plural(report.fetched.length, 'file')} downloaded (${mb(report.bytes)})`] : []),
        ...(report.derived.length ? [`${plural(report.derived.length, 'file')} made`] : []),
      ];
      log(`fetch: ${done.join(', ')} in ${report.seconds.toFixed(1)} s`);
    }
    if (problems.length) throw new Error(problems.join('; '));
  }
  report.seconds = (Date.now() - started) / 1000;
  return report;
}

/**
 * For `npm run build`: fetch what the experiment spec reads and the data directory lacks, saying so on `log`; with
 * everything there it only checks sizes and logs nothing.
 */
export async function fetchForSpec(specPath: string, opts: Omit<FetchDataOptions, 'paths'>): Promise<FetchDataReport> {
  const spec = await loadSpec(specPath);
  return fetchData({ ...opts, paths: specDataPaths(spec) });
}
