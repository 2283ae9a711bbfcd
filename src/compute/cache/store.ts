// The compute cache: one folder per step and key, `<root>/<kind>/<key>/`, holding the step's output files and a
// manifest with each file's sha256. Entries are written into a temporary folder and renamed into place, so an
// interrupted build never leaves a half-written entry, and are verified on every read, so a damaged entry is
// recomputed instead of published.
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
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

  /** Store a step's outputs atomically; returns the entry. */
  async put(kind: string, key: string, inputs: unknown, files: ReadonlyMap<string, Uint8Array>): Promise<CacheEntry> {
    const dir = this.dirOf(kind, key);
    const tmp = path.join(this.root, kind, `.tmp-${key}-${process.pid}-${Date.now()}`);
    await mkdir(tmp, { recursive: true });
    try {
      const manifest: Manifest = { kind, key, inputs, files: {} };
      for (const [name, bytes] of [...files].sort(([a], [b]) => a.localeCompare(b))) {
        if (name === 'manifest.json' || name.includes('/') || name.startsWith('.')) throw new Error(`invalid cache file name '${name}'`);
        await writeFile(path.join(tmp, name), bytes);
        manifest.files[name] = sha256(bytes);
      }
      await writeFile(path.join(tmp, 'manifest.json'), stableJson(manifest));
      await rm(dir, { recursive: true, force: true });
      await rename(tmp, dir);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
    return { dir, manifest: JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')), file: (name) => path.join(dir, name) };
  }

  async remove(kind: string, key: string): Promise<void> {
    await rm(this.dirOf(kind, key), { recursive: true, force: true });
  }

  /** Remove temporary folders left by builds that were interrupted. */
  async sweep(): Promise<number> {
    let removed = 0;
    let kinds: string[] = [];
    try {
      kinds = await readdir(this.root);
    } catch {
      return 0;
    }
    for (const kind of kinds) {
      let names: string[] = [];
      try {
        names = await readdir(path.join(this.root, kind));
      } catch {
        continue;
      }
      // `.tmp-<key>-<pid>-<time>`: only folders whose build process is gone (a running build may be writing one).
      for (const name of names.filter((n) => n.startsWith('.tmp-') && !processAlive(Number(n.split('-').at(-2))))) {
        await rm(path.join(this.root, kind, name), { recursive: true, force: true });
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

  async writeIndex(index: Record<string, { kind: string; key: string; inputs: unknown }>): Promise<void> {
    await mkdir(this.root, { recursive: true });
    const tmp = path.join(this.root, `.index-${process.pid}.json`);
    await writeFile(tmp, stableJson(index));
    await rename(tmp, path.join(this.root, 'index.json'));
  }
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
