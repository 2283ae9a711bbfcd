import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Write a whole folder so that it appears complete or not at all: files go into a temporary sibling that is renamed
 * into place at the end, replacing any previous folder of that name. An interrupted run leaves only the temporary
 * sibling (`<dir>.partial-<pid>`), never a half-written `dir`.
 */
export async function writeDirAtomic(dir: string, files: ReadonlyMap<string, Uint8Array>): Promise<void> {
  const out = path.resolve(dir);
  const tmp = `${out}.partial-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    for (const [name, bytes] of files) await writeFile(path.join(tmp, name), bytes);
    await rm(out, { recursive: true, force: true });
    await rename(tmp, out);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}
