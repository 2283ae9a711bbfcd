// One file into the data directory, from an http(s) URL, a file: URL or a local path, so that a half-written or
// wrong file is never where the article reads it: bytes go to `<file>.part`, and only a complete file whose sha256 is
// the expected one is renamed into place. A transfer that breaks off resumes from the .part with a Range request —
// in this run (a few retries) or the next one. Two processes fetching the same file (concurrent builds) take turns
// through `<file>.part.lock`.
//
// Failures are one line naming the file, where it came from and the data directory (ATLAS_DATA), since the user's
// next step is either to fix the network or mirror, or to put the file there by hand.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type FetchFailure = 'unreachable' | 'missing' | 'http' | 'checksum' | 'interrupted' | 'busy';

export class FetchError extends Error {
  readonly failure: FetchFailure;
  /** the data-directory path */
  readonly file: string;
  /** the URL or local path it was fetched from */
  readonly from: string;

  constructor(message: string, failure: FetchFailure, file: string, from: string) {
    super(message);
    this.name = 'FetchError';
    this.failure = failure;
    this.file = file;
    this.from = from;
  }
}

export interface FetchFileOptions {
  /** the file's path in the data directory (forward slashes): where it goes, and its name in messages */
  file: string;
  dataDir: string;
  /** an http(s) URL, a file: URL, or a local file path */
  from: string;
  /** the download is refused unless it has this sha256 (and size, when given) */
  sha256?: string;
  size?: number;
  /** bytes received since the last call; negative when a restart discards what a .part held */
  onBytes?: (bytes: number) => void;
  /** transfers tried before a broken-off download is reported (each resumes the last) */
  attempts?: number;
  /** before the first retry; doubled for each next one */
  retryDelayMs?: number;
  /** what to tell the user when the host cannot be reached (default: set ATLAS_MIRROR, or fill the folder by hand) */
  unreachableAdvice?: string;
  /** how long to wait for another process that holds the file's lock */
  lockWaitMs?: number;
  signal?: AbortSignal;
}

const DEFAULTS = { attempts: 4, retryDelayMs: 500, lockWaitMs: 10 * 60_000 };
// Connection-level failures: the host is not there (offline, wrong mirror), so retrying at once does not help.
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT']);
const RETRY_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(bytes < 1e6 ? 3 : 1)} MB`;

/** The location `from` as something to read: a URL to request, or a local file. */
function locate(from: string): { url: string } | { localFile: string } {
  if (/^https?:\/\//i.test(from)) return { url: from };
  if (/^file:\/\//i.test(from)) return { localFile: fileURLToPath(from) };
  return { localFile: path.resolve(from) };
}

/** Fetch `file` into the data directory unless it is there (see the file comment). Returns where it is. */
export async function fetchFile(opts: FetchFileOptions): Promise<string> {
  const { file, dataDir, from } = opts;
  const attempts = opts.attempts ?? DEFAULTS.attempts;
  const dest = path.join(dataDir, ...file.split('/'));
  const part = `${dest}.part`;
  const where = `ATLAS_DATA=${dataDir}`;
  const fail = (failure: FetchFailure, why: string, advice: string) =>
    new FetchError(`cannot fetch ${file} from ${from}: ${why}; ${advice} (${where})`, failure, file, from);
  const offline = `offline or no such host? ${opts.unreachableAdvice ?? 'Set ATLAS_MIRROR to a mirror, or put the file in the data directory yourself'}`;

  await mkdir(path.dirname(dest), { recursive: true });
  const release = await lock(`${part}.lock`, opts.lockWaitMs ?? DEFAULTS.lockWaitMs, () => fail('busy', 'another process holds its lock', `wait for it, or delete ${part}.lock if none is running`));
  try {
    // Another process may have finished it while this one waited for the lock.
    if (await exists(dest)) return dest;
    const source = locate(from);
    let restarts = 0;
    for (let attempt = 1; ; attempt++) {
      const had = await sizeOf(part);
      if (opts.size !== undefined && had > opts.size) {
        await rm(part, { force: true });
        opts.onBytes?.(-had);
        continue;
      }
      let outcome: Outcome;
      if (opts.size !== undefined && had === opts.size) outcome = { done: true };
      else outcome = 'url' in source ? await requestInto(source.url, part, had, opts) : await copyInto(source.localFile, part, had, opts);
      if (!outcome.done) {
        if (outcome.failure === 'unreachable') throw fail('unreachable', outcome.why, offline);
        if (outcome.failure === 'missing') throw fail('missing', outcome.why, 'the mirror or host does not have it');
        if (outcome.failure === 'http') throw fail('http', outcome.why, 'check the URL, ATLAS_MIRROR, or put the file in the data directory yourself');
        if (outcome.failure === 'checksum') {
          await rm(part, { force: true });
          throw fail('checksum', outcome.why, 'nothing was moved into place');
        }
        if (attempt >= attempts) {
          const now = await sizeOf(part);
          throw fail('interrupted', `the transfer broke off ${attempt} times (last at ${mb(now)}${opts.size ? ` of ${mb(opts.size)}` : ''}: ${outcome.why})`, `run again to resume from ${path.basename(part)}`);
        }
        await delay((opts.retryDelayMs ?? DEFAULTS.retryDelayMs) * 2 ** (attempt - 1), opts.signal);
        continue;
      }
      const got = await sizeOf(part);
      if (opts.size !== undefined && got < opts.size) {
        // The body ended early without an error (no Content-Length): resume like a broken transfer.
        if (attempt >= attempts) throw fail('interrupted', `the transfer ended at ${mb(got)} of ${mb(opts.size)} ${attempt} times`, `run again to resume from ${path.basename(part)}`);
        continue;
      }
      if (opts.sha256 !== undefined) {
        const actual = await sha256File(part);
        if (actual !== opts.sha256) {
          await rm(part, { force: true });
          opts.onBytes?.(-got);
          // A resumed .part may hold bytes of an older version of the file: one fresh transfer before giving up.
          if (had > 0 && restarts++ === 0) continue;
          throw fail('checksum', `its sha256 is ${actual}, the manifest expects ${opts.sha256}`, 'nothing was moved into place');
        }
      }
      await rename(part, dest);
      return dest;
    }
  } finally {
    await release();
  }
}

type Outcome = { done: true } | { done: false; failure: 'unreachable' | 'missing' | 'http' | 'checksum' | 'interrupted'; why: string };

async function requestInto(url: string, part: string, offset: number, opts: FetchFileOptions): Promise<Outcome> {
  let res: Response;
  try {
    // identity: Range counts bytes of the file, not of a compressed encoding of it
    const headers: Record<string, string> = { 'accept-encoding': 'identity' };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    res = await fetch(url, { headers, signal: opts.signal, redirect: 'follow' });
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    const code = errorCode(err);
    const why = describe(err);
    // undici refuses the fetch standard's "bad ports" before connecting: as final as a refused connection
    const unreachable = (code !== undefined && UNREACHABLE.has(code)) || /\bbad port\b/.test(why);
    return { done: false, failure: unreachable ? 'unreachable' : 'interrupted', why };
  }
  let append = false;
  if (res.status === 206) {
    const start = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1];
    append = start !== undefined && Number(start) === offset;
    if (!append) {
      await res.body?.cancel();
      await rm(part, { force: true });
      opts.onBytes?.(-offset);
      return { done: false, failure: 'interrupted', why: `the server answered the range request from byte ${start ?? '?'}, not ${offset}` };
    }
  } else if (res.status === 416 && offset > 0) {
    // nothing past what the .part holds: it is complete (or wrong, which the checksum says)
    await res.body?.cancel();
    return { done: true };
  } else if (res.status !== 200) {
    await res.body?.cancel();
    const why = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
    if (res.status === 404 || res.status === 410) return { done: false, failure: 'missing', why };
    return { done: false, failure: RETRY_STATUS.has(res.status) ? 'interrupted' : 'http', why };
  } else if (offset > 0) {
    // The server ignored the Range: start over.
    opts.onBytes?.(-offset);
  }
  // The whole file's size as the server declares it: another size is another file (a Git LFS pointer, an error
  // page), not worth downloading.
  const declared = res.status === 206
    ? /\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1]
    : res.headers.get('content-length') ?? undefined;
  if (declared !== undefined && opts.size !== undefined && Number(declared) !== opts.size) {
    await res.body?.cancel();
    return { done: false, failure: 'checksum', why: `it serves ${declared} bytes, the manifest expects ${opts.size}` };
  }
  if (!res.body) return { done: false, failure: 'interrupted', why: 'empty response' };
  return writeChunks(res.body, part, append, opts);
}

async function copyInto(localFile: string, part: string, offset: number, opts: FetchFileOptions): Promise<Outcome> {
  const st = await stat(localFile).catch(() => undefined);
  if (!st?.isFile()) return { done: false, failure: 'missing', why: `no such file ${localFile}` };
  return writeChunks(createReadStream(localFile, { start: offset, signal: opts.signal }), part, offset > 0, opts);
}

async function writeChunks(chunks: AsyncIterable<Uint8Array>, part: string, append: boolean, opts: FetchFileOptions): Promise<Outcome> {
  const out = await open(part, append ? 'a' : 'w');
  try {
    for await (const chunk of chunks) {
      await out.write(chunk);
      opts.onBytes?.(chunk.byteLength);
    }
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    return { done: false, failure: 'interrupted', why: describe(err) };
  } finally {
    await out.close();
  }
  return { done: true };
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Locks this process holds, so that two fetches of one file in one process take turns too. */
const held = new Map<string, Promise<void>>();

/**
 * Hold `lockFile` (created exclusively, holding our pid) until the returned release is called. A lock whose process
 * is gone is taken over, so a killed fetch never blocks the next one.
 */
async function lock(lockFile: string, waitMs: number, timeout: () => Error): Promise<() => Promise<void>> {
  const started = Date.now();
  while (held.has(lockFile)) await held.get(lockFile);
  let releaseHere!: () => void;
  held.set(lockFile, new Promise<void>((resolve) => { releaseHere = resolve; }));
  const letGo = () => {
    held.delete(lockFile);
    releaseHere();
  };
  try {
    for (;;) {
      try {
        const fh = await open(lockFile, 'wx');
        await fh.writeFile(String(process.pid));
        await fh.close();
        return async () => {
          await unlink(lockFile).catch(() => {});
          letGo();
        };
      } catch (err) {
        if (errorCode(err) !== 'EEXIST') throw err;
      }
      const holder = Number((await readFile(lockFile, 'utf8').catch(() => '')).trim());
      if (!alive(holder)) {
        await rm(lockFile, { force: true });
        continue;
      }
      if (Date.now() - started > waitMs) throw timeout();
      await delay(200);
    }
  } catch (err) {
    letGo();
    throw err;
  }
}

function alive(pid: number): boolean {
  // An empty lock file is one being written right now: treat its writer as alive.
  if (!Number.isInteger(pid) || pid <= 0) return true;
  // Our own pid on a lock this process does not hold (see `held`): left by an earlier process with the same pid.
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errorCode(err) === 'EPERM';
  }
}

async function exists(file: string): Promise<boolean> {
  return (await stat(file).catch(() => undefined))?.isFile() ?? false;
}

async function sizeOf(file: string): Promise<number> {
  return (await stat(file).catch(() => undefined))?.size ?? 0;
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason);
    }, { once: true });
  });
}

/** The system error code of an error or of its cause (fetch wraps the socket's error). */
function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

function describe(err: unknown): string {
  const code = errorCode(err);
  const cause = (err as { cause?: unknown }).cause;
  const message = cause instanceof Error ? cause.message : err instanceof Error ? err.message : String(err);
  return code && !message.includes(code) ? `${message} (${code})` : message;
}
