// Content hashes: the cache keys every compute step by the sha256 of its inputs, so a step re-runs exactly when one
// of them changed.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { stableJson } from './stable-json.ts';

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** sha256 of a value's canonical JSON. */
export function hashJson(value: unknown): string {
  return sha256(stableJson(value));
}

// Model files are large (ResNet-50: 100 MB): hash each once per process unless it changed on disk.
const fileHashes = new Map<string, { size: number; mtimeMs: number; hash: Promise<string> }>();

export async function hashFile(file: string): Promise<string> {
  const s = await stat(file);
  const hit = fileHashes.get(file);
  if (hit && hit.size === s.size && hit.mtimeMs === s.mtimeMs) return hit.hash;
  const hash = new Promise<string>((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file).on('data', (chunk) => h.update(chunk)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
  });
  fileHashes.set(file, { size: s.size, mtimeMs: s.mtimeMs, hash });
  return hash;
}

let codeVersion: Promise<string> | undefined;

/**
 * The compute code's version: a hash of every source file of the compute layer. Any change to how results are
 * computed invalidates the cache; edits to prose, figures or the CLI do not.
 */
export function computeCodeVersion(): Promise<string> {
  codeVersion ??= (async () => {
    const root = path.resolve(import.meta.dirname, '..');
    const files = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.ts')).sort();
    const h = createHash('sha256');
    for (const f of files) h.update(f).update('\0').update(await readFile(path.join(root, f))).update('\0');
    return h.digest('hex');
  })();
  return codeVersion;
}
