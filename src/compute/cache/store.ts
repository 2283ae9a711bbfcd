// The compute cache: one folder per step and key, `<root>/<kind>/<key>/`, holding the step's output files and a
// manifest with each file's sha256. Entries are written into a temporary folder and renamed into place, so an
// interrupted build never leaves a half-written entry, and are verified on every read, so a damaged entry is
// recomputed instead of published.
// Several builds may share one cache at once: a build claims an entry (`<kind>/<key>.lock`) before computing it, so
// a second build waits and then finds the entry instead of computing it again, and index.json is merged under its own
// short lock instead of overwritten.
import { link, mkdir, readdir, readFile, rename, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sha256 } from './hash.ts';
import { stableJson } from './stable-json.ts';

export interface Manifest {
  kind: string;
  key: string;
  /** the inputs the key was computed from, kept for `--dry-run` explanations */
  inputs: unknown;
  files: Record<string, string>;
}

export interface CacheEntry {
  dir: string;
  manifest: Manifest;
  file(name: string): string;
}

/** Who holds a lock: written once, when the lock file appears. */
export interface LockOwner {
  pid: number;
  host: string;
  /** Date.now() when it was taken */
  since: number;
  /** tells this lock apart from another of the same process */
  serial: number;
}

export interface Claim {
  /** another build held the entry first: it has probably stored it meanwhile */
  waited: boolean;
  release(): Promise<void>;
}

export type IndexRecord = { kind: string; key: string; inputs: unknown };

/** How often a holder refreshes its lock's mtime. */
const HEARTBEAT_MS = 10_000;
/**
 * A lock not refreshed for this long has lost its owner even if a process with its pid exists: another host on a
 * shared file system, or a reused pid. Far above HEARTBEAT_MS, since a long onnxruntime call can delay a refresh.
 */
const STALE_MS = 5 * 60_000;

export type Lookup =
  | { status: 'hit'; entry: CacheEntry }
  | { status: 'miss' }
  | { status: 'corrupt'; reason: string };

export class CacheStore {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  private dirOf(kind: string, key: string): string {
    return path.join(this.root, kind, key);
  }

  /** A verified entry, or why there is none. */
  async lookup(kind: string, key: string): Promise<Lookup> {
    const dir = this.dirOf(kind, key);
    let manifest: Manifest;
    try {
      manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'miss' };
      return { status: 'corrupt', reason: 'unreadable manifest' };
    }
    for (const [name, expected] of Object.entries(manifest.files)) {
      let bytes: Uint8Array;
      try {
        bytes = await readFile(path.join(dir, name));
      } catch {
        return { status: 'corrupt', reason: `${name} is missing` };
      }
      if (sha256(bytes) !== expected) return { status: 'corrupt', reason: `${name} does not match its hash` };
    }
    return { status: 'hit', entry: { dir, manifest, file: (name) => path.join(dir, name) } };
  }

  /**
   * Claim the right to compute an entry, waiting while another build (or another call in this one) holds it.
   * `onWait` is told once whom it waits for. A claim whose holder died is taken over; should two builds ever both take
   * over the same stale claim, both compute, and put() keeps the cache consistent.
   */
  async claim(kind: string, key: string, onWait?: (owner: LockOwner) => void): Promise<Claim> {
    await mkdir(path.join(this.root, kind), { recursive: true });
    return acquire(path.join(this.root, kind, `${key}.lock`), 200, onWait);
  }

  /** Store a step's outputs atomically, replacing an entry of the same key; returns the entry. */
  async put(kind: string, key: string, inputs: unknown, files: ReadonlyMap<string, Uint8Array>): Promise<CacheEntry> {
    const dir = this.dirOf(kind, key);
    const tmp = path.join(this.root, kind, `.tmp-${key}-${++serial}-${process.pid}-${Date.now()}`);
    await mkdir(tmp, { recursive: true });
    let written: string;
    try {
      const manifest: Manifest = { kind, key, inputs, files: {} };
      for (const [name, bytes] of [...files].sort(([a], [b]) => a.localeCompare(b))) {
        if (name === 'manifest.json' || name.includes('/') || name.startsWith('.')) throw new Error(`invalid cache file name '${name}'`);
        await writeFile(path.join(tmp, name), bytes);
        manifest.files[name] = sha256(bytes);
      }
      written = stableJson(manifest);
      await writeFile(path.join(tmp, 'manifest.json'), written);
      await this.publish(kind, key, tmp, written);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
    // What was written rather than read back: a racing put may be replacing a differing entry this instant.
    return { dir, manifest: JSON.parse(written), file: (name) => path.join(dir, name) };
  }

  /**
   * Move a written entry into place. rename() will not replace a non-empty folder, which makes it the arbiter between
   * writers: the first one's entry stays, and a later writer whose entry is the same (same manifest, every file
   * verified) is done without touching it, so a reader never finds the entry missing. Only an entry that differs
   * (damaged, or recomputed under --force) is moved aside first, under a name sweep() recognises; the loop covers a
   * writer that slips in between the two renames.
   */
  private async publish(kind: string, key: string, tmp: string, manifest: string): Promise<void> {
    const dir = this.dirOf(kind, key);
    for (;;) {
      try {
        await rename(tmp, dir);
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      }
      const there = await this.lookup(kind, key);
      if (there.status === 'hit' && stableJson(there.entry.manifest) === manifest) {
        await rm(tmp, { recursive: true, force: true });
        return;
      }
      if (there.status === 'miss') continue; // moved aside by another writer this instant
      const old = path.join(this.root, kind, `.tmp-${key}-old${++serial}-${process.pid}-${Date.now()}`);
      try {
        await rename(dir, old);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      await rm(old, { recursive: true, force: true });
    }
  }

  async remove(kind: string, key: string): Promise<void> {
    await rm(this.dirOf(kind, key), { recursive: true, force: true });
  }

  /** Remove temporary folders, index files and claims left by builds that were interrupted. */
  async sweep(): Promise<number> {
    let removed = 0;
    let kinds: string[] = [];
    try {
      kinds = await readdir(this.root);
    } catch {
      return 0;
    }
    const orphan = (n: string) => {
      const pid = /^\.index-(\d+)-\d+\.json$/.exec(n)?.[1] ?? DRAFT.exec(n)?.[1];
      return pid !== undefined && !processAlive(Number(pid));
    };
    for (const name of kinds.filter(orphan)) {
      await rm(path.join(this.root, name), { force: true });
      removed++;
    }
    if (await staleLock(path.join(this.root, 'index.lock'))) removed++;
    for (const kind of kinds) {
      let names: string[] = [];
      try {
        names = await readdir(path.join(this.root, kind));
      } catch {
        continue;
      }
      // `.tmp-<key>-…-<pid>-<time>`: only folders whose build process is gone (a running build may be writing one).
      for (const name of names.filter((n) => n.startsWith('.tmp-') && !processAlive(Number(n.split('-').at(-2))))) {
        await rm(path.join(this.root, kind, name), { recursive: true, force: true });
        removed++;
      }
      for (const name of names.filter((n) => n.endsWith('.lock'))) if (await staleLock(path.join(this.root, kind, name))) removed++;
      for (const name of names.filter(orphan)) {
        await rm(path.join(this.root, kind, name), { force: true });
        removed++;
      }
    }
    return removed;
  }

  /** The inputs of the last entry each step id produced, to explain why a step must re-run. */
  async readIndex(): Promise<Record<string, { kind: string; key: string; inputs: unknown }>> {
    try {
      return JSON.parse(await readFile(path.join(this.root, 'index.json'), 'utf8'));
    } catch {
      return {};
    }
  }

  /**
   * Record these steps' latest entries in index.json, keeping every other step's: read, merge and replace under a
   * short lock, so concurrent builds add to the index rather than overwrite each other's records.
   */
  async updateIndex(records: Record<string, IndexRecord>): Promise<void> {
    await mkdir(this.root, { recursive: true });
    const lock = await acquire(path.join(this.root, 'index.lock'), 20);
    try {
      const index = { ...(await this.readIndex()), ...records };
      const tmp = path.join(this.root, `.index-${process.pid}-${++serial}.json`);
      await writeFile(tmp, stableJson(index));
      await rename(tmp, path.join(this.root, 'index.json'));
    } finally {
      await lock.release();
    }
  }
}

let serial = 0;

const NO_LINKS = ['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'];

/** `<lock>.<pid>-<n>.draft`: a lock's content before it is linked into place. */
const DRAFT = /\.lock\.(\d+)-\d+\.draft$/;

/**
 * Take a lock file, waiting `pollMs` between tries while it is held. The file appears with its owner already in it
 * (written beside it, then hard-linked into place, which fails if the lock exists), so a reader never sees an
 * empty lock.
 */
async function acquire(file: string, pollMs: number, onWait?: (owner: LockOwner) => void): Promise<Claim> {
  const me: LockOwner = { pid: process.pid, host: os.hostname(), since: Date.now(), serial: ++serial };
  const draft = `${file}.${process.pid}-${me.serial}.draft`;
  await writeFile(draft, JSON.stringify(me));
  let waited = false;
  try {
    for (;;) {
      if (await createLock(draft, file, me)) break;
      if (await staleLock(file)) continue;
      const owner = await readOwner(file);
      if (owner && !waited) onWait?.(owner);
      waited = true;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  } finally {
    await rm(draft, { force: true });
  }
  const heartbeat = setInterval(() => {
    const now = new Date();
    utimes(file, now, now).catch(() => {});
  }, HEARTBEAT_MS);
  heartbeat.unref();
  return {
    waited,
    async release() {
      clearInterval(heartbeat);
      // Only our own lock: had it been taken over as stale, the file now belongs to someone else.
      const owner = await readOwner(file);
      if (owner && owner.pid === me.pid && owner.host === me.host && owner.serial === me.serial) await unlink(file).catch(() => {});
    },
  };
}

/** Create the lock file unless it exists; false when it does. */
async function createLock(draft: string, file: string, me: LockOwner): Promise<boolean> {
  try {
    await link(draft, file);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (code === 'EEXIST') return false;
    if (!NO_LINKS.includes(code)) throw err;
  }
  // A file system without hard links: an exclusive create, whose content a reader may briefly find empty (readOwner
  // then says nothing, and the lock counts as held).
  try {
    await writeFile(file, JSON.stringify(me), { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

async function readOwner(file: string): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

/** Remove the lock if its holder is gone; true when it was removed. */
async function staleLock(file: string): Promise<boolean> {
  let mtime: number;
  try {
    mtime = (await stat(file)).mtimeMs;
  } catch {
    return false;
  }
  const owner = await readOwner(file);
  const dead = owner ? owner.host === os.hostname() && !processAlive(owner.pid) : false;
  if (!dead && Date.now() - mtime < STALE_MS) return false;
  await rm(file, { force: true });
  return true;
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, run by another user sharing the cache.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
