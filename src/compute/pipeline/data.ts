// Models and images a spec names, found in the data directory. A model given by URL is downloaded once and checked
// against its sha256; offline, a missing file is an error that says where to put it.
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { hashFile } from '../cache/hash.ts';
import type { ExperimentSpec } from './spec.ts';

export async function ensureModel(spec: ExperimentSpec, dataDir: string, log: (line: string) => void = () => {}): Promise<string> {
  const file = path.resolve(dataDir, spec.model.file);
  if (!existsSync(file)) {
    if (!spec.model.url) {
      throw new Error(`model not found: ${file} — put the .onnx file and its model card there, point ATLAS_DATA at a folder that has ${spec.model.file}, or give model.url in the spec (see README, "Models and images")`);
    }
    await download(spec.model.url, file, spec.model.sha256, log);
  }
  if (spec.model.sha256) {
    const actual = await hashFile(file);
    if (actual !== spec.model.sha256) throw new Error(`model ${file} has sha256 ${actual}, but the spec expects ${spec.model.sha256}`);
  }
  return file;
}

async function download(url: string, file: string, expected: string | undefined, log: (line: string) => void): Promise<void> {
  log(`downloading ${url} → ${file}`);
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.download-${process.pid}`;
  try {
    let response: Response;
    try {
      response = await fetch(url);
    } catch (err) {
      throw new Error(`cannot download ${url} (${(err as Error).message}); offline, put the file at ${file} yourself`);
    }
    if (!response.ok || !response.body) throw new Error(`cannot download ${url}: HTTP ${response.status}`);
    const hash = createHash('sha256');
    const body = Readable.fromWeb(response.body as never);
    body.on('data', (chunk: Buffer) => hash.update(chunk));
    await pipeline(body, createWriteStream(tmp));
    const actual = hash.digest('hex');
    if (expected && actual !== expected) throw new Error(`download of ${url} has sha256 ${actual}, expected ${expected}`);
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
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
  return parsed.data
    .map(({ file, index, ...meta }) => ({ path: path.join(folder, file), name: path.join(relativeFolder, file), label: index, meta }))
    .sort((a, b) => a.name.localeCompare(b.name));
}
