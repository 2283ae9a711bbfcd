// Files this project computes from other manifest files instead of downloading them, checked against the manifest's
// sha256 like a download and moved into place the same way (temp file, then rename).
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { int8MobileNetV2ToTorchvision } from '../compute/onnx/torchvision-names.ts';
import type { Derivation } from './data-manifest.ts';

const DERIVE: Record<Derivation, (input: Uint8Array) => Uint8Array> = {
  'mobilenetv2-int8-to-torchvision': (int8) => int8MobileNetV2ToTorchvision(int8).bytes,
};

export interface DeriveFileOptions {
  /** data-directory paths (forward slashes) */
  file: string;
  from: string;
  derive: Derivation;
  dataDir: string;
  sha256: string;
}

/** Compute `file` from `from` in the data directory; refuses (and writes nothing) when the result is not `sha256`. */
export async function deriveFile(opts: DeriveFileOptions): Promise<string> {
  const at = (p: string) => path.join(opts.dataDir, ...p.split('/'));
  const dest = at(opts.file);
  const part = `${dest}.part-${process.pid}`;
  const bytes = DERIVE[opts.derive](await readFile(at(opts.from)));
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== opts.sha256) {
    throw new Error(`cannot make ${opts.file} from ${opts.from} (${opts.derive}): the result's sha256 is ${actual}, the manifest expects ${opts.sha256}; nothing was moved into place (ATLAS_DATA=${opts.dataDir})`);
  }
  try {
    await writeFile(part, bytes);
    await rename(part, dest);
  } finally {
    await rm(part, { force: true });
  }
  return dest;
}
