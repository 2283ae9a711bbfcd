// What <Value> prints and <Compare> words: the value at `<step id>.<path>` of the computed results (value-path.ts has
// the grammar). A path that does not resolve fails the build with the keys that are there.
import { getEntry } from 'astro:content';
import { resolveLayer } from './experiment-data.ts';
import { resolveValuePath } from './value-path.ts';

export async function readValue(of: string, who = `<Value of="${of}">`): Promise<unknown> {
  const { entryId, path } = resolveValuePath(of);
  const entry = await getEntry('experiments', entryId);
  if (!entry) throw new Error(`${who}: no experiment step '${entryId}' in the spec`);
  let v: unknown = entry.data;
  for (const part of path) {
    // `[@late]`: the layer of that role in the spec.
    const key = await resolveLayer(part, who);
    if (v === null || typeof v !== 'object' || !(key in (v as object))) throw new Error(`${who}: '${key}' not found in step '${entryId}' (has: ${v && typeof v === 'object' ? Object.keys(v).slice(0, 12).join(', ') : typeof v})`);
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}
