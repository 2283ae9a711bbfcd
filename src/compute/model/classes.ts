import path from 'node:path';
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
