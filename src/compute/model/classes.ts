import path from 'node:path';
import { nearestNames } from '../nearest-names.ts';
import type { ImageNetClass } from './model-card.ts';

/** The class whose WordNet id (n + 8 digits) appears in the file's name, e.g. `n02441942_weasel.jpg`. */
export function labelFromFilename(file: string, classes: readonly ImageNetClass[]): number | undefined {
  const wnid = /n\d{8}/.exec(path.basename(file))?.[0];
  if (!wnid) return undefined;
  return classes.find((c) => c.wnid === wnid)?.index;
}

export function formatClass(i: number, classes: readonly ImageNetClass[]): string {
  return `${i} (${classes[i]?.name ?? 'unknown'})`;
}

/** A class given as its index, its WordNet id or its name (case-insensitive); a one-line error otherwise. */
export function findClass(text: string | number, classes: readonly ImageNetClass[]): number {
  const t = String(text).trim();
  if (/^\d+$/.test(t)) {
    const i = Number(t);
    if (i >= classes.length) throw new Error(`class ${i} is out of range: the model has classes 0..${classes.length - 1}`);
    return i;
  }
  const lower = t.toLowerCase();
  const hit = classes.find((c) => c.wnid === t || c.name.toLowerCase() === lower);
  if (!hit) {
    const near = nearestNames(t, classes.map((c) => c.name), 3).map((n) => `'${n}'`);
    throw new Error(`no class '${t}'${near.length ? ` (did you mean ${near.join(', ')}?)` : ''}; give an index 0..${classes.length - 1}, a WordNet id or an exact class name`);
  }
  return hit.index;
}
