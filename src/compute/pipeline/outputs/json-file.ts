// Every JSON file a step leaves in its cache entry has a zod schema (the modules beside this one). The producer
// checks the bytes it is about to write against it, so a changed shape fails the step that made it instead of a
// figure several steps later, and the readers (dependent steps, the content collection) parse with the same schema
// and get its types.
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { stableJson } from '../../cache/stable-json.ts';
import type { CacheEntry } from '../../cache/store.ts';

/** A step's JSON output: its file name in the cache entry and the schema of its contents. */
export interface JsonOutput<S extends z.ZodType = z.ZodType> {
  file: string;
  schema: S;
}

export function jsonOutput<S extends z.ZodType>(file: string, schema: S): JsonOutput<S> {
  return { file, schema };
}

/**
 * The bytes of `output` as step `step` writes it. What is checked is the serialized file read back (floats rounded,
 * NaN turned into null by JSON), i.e. exactly what a reader will get.
 */
export function writeJson<S extends z.ZodType>(output: JsonOutput<S>, step: string, value: z.input<S>): Uint8Array {
  const text = stableJson(value);
  check(output, JSON.parse(text), (problem) => `step ${step}: ${output.file} not written: ${problem}`);
  return new TextEncoder().encode(text);
}

/** `output` of a cache entry, checked: `reader` is the step that reads it, `from` the step that wrote it. */
export async function readJson<S extends z.ZodType>(output: JsonOutput<S>, entry: CacheEntry, reader: string, from: string): Promise<z.output<S>> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(entry.file(output.file), 'utf8'));
  } catch (err) {
    throw new Error(`step ${reader}: cannot read ${output.file} of step ${from} (${entry.dir}): ${(err as Error).message}`, { cause: err });
  }
  return check(output, raw, (problem) => `step ${reader}: ${output.file} of step ${from} (${entry.dir}): ${problem}`);
}

/** `value` parsed with the output's schema; the error (worded by `say`) names the first fields that do not match. */
export function check<S extends z.ZodType>(output: JsonOutput<S>, value: unknown, say: (problem: string) => string): z.output<S> {
  const parsed = output.schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues;
  const shown = issues.slice(0, 3).map((i) => `${fieldPath(i.path)}: ${i.message}`).join('; ');
  const more = issues.length > 3 ? ` (and ${issues.length - 3} more)` : '';
  throw new Error(say(`does not match its schema: ${shown}${more}`));
}

/** `rows[0].images.clean`, `layers["features.17.conv.2"].fragility.drops`: a path a reader can find in the file. */
export function fieldPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(the whole file)';
  return path.map((k, i) => {
    if (typeof k === 'number') return `[${k}]`;
    const name = String(k);
    return /^[A-Za-z_$][\w$]*$/.test(name) ? `${i === 0 ? '' : '.'}${name}` : `[${JSON.stringify(name)}]`;
  }).join('');
}
