// Models and images a spec names, found in the data directory. A model given by URL is downloaded once (the data
// downloader's way: resumed, checked against its sha256, moved into place whole); offline, a missing file is an
// error that says where to put it. Files of the data manifest come from `atlas fetch` (src/data-dir/).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { fetchFile } from '../../data-dir/fetch-file.ts';
import { hashFile } from '../cache/hash.ts';
import { labelText } from './label-text.ts';
import type { DeclaredSpec } from './spec.ts';

export async function ensureModel(spec: Pick<DeclaredSpec, 'model'>, dataDir: string, log: (line: string) => void = () => {}): Promise<string> {
  const file = path.resolve(dataDir, spec.model.file);
  if (!existsSync(file)) {
    if (!spec.model.url) {
      throw new Error(`model not found: ${file} — put the .onnx file and its model card there, point ATLAS_DATA at a folder that has ${spec.model.file}, run \`atlas fetch\` for a file of the data manifest, or give model.url in the spec (see README, "Models and images")`);
    }
    log(`downloading ${spec.model.url} → ${file}`);
    await fetchFile({ file: path.relative(dataDir, file).split(path.sep).join('/'), dataDir, from: spec.model.url, sha256: spec.model.sha256 });
  }
  if (spec.model.sha256) {
    const actual = await hashFile(file);
    if (actual !== spec.model.sha256) throw new Error(`model ${file} has sha256 ${actual}, but the spec expects ${spec.model.sha256}`);
  }
  return file;
}

const LabelsSchema = z.array(z.looseObject({ file: z.string(), index: z.number().int().nonnegative(), wnid: z.string().optional(), name: z.string().optional() }));

export interface LabelledImage {
  /** absolute path */
  path: string;
  /** path relative to the data directory: names the image in results and cache keys */
  name: string;
  label: number;
  /** credit and licence fields from labels.json, passed through to figures */
  meta: Record<string, unknown>;
}

/** The images of an ImageNet-style folder (relative to the data directory), in file-name order. */
export async function loadImageSet(relativeFolder: string, labelsFile: string, dataDir: string): Promise<LabelledImage[]> {
  const folder = path.resolve(dataDir, relativeFolder);
  const labelsPath = path.join(folder, labelsFile);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(labelsPath, 'utf8'));
  } catch {
    throw new Error(`image labels not found: ${labelsPath} — the image folder needs a ${labelsFile} listing {file, index} (fill the data directory, see README)`);
  }
  const parsed = LabelsSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`${labelsPath}: expected [{file, index, …}, …]`);
  const missing = parsed.data.find(({ file }) => !existsSync(path.join(folder, file)));
  if (missing) throw new Error(`${labelsPath} lists ${missing.file}, which is not in ${folder}`);
  return parsed.data
    .map(({ file, index, ...meta }) => ({ path: path.join(folder, file), name: path.join(relativeFolder, file), label: index, meta: decodeText(meta) }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

function decodeText(meta: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(meta).map(([k, v]) => [k, typeof v === 'string' ? labelText(v) : v]));
}
