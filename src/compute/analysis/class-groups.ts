// Class groups under any WordNet synset ("mustelids" = classes under musteline mammal), from the hierarchy in
// imagenet-hierarchy.json. Thin classes are pooled this way for class-level statistics, and polysemantic-calibrated.ts
// finds a neuron's enriched groups in the same hierarchy.
import hierarchy from './imagenet-hierarchy.json' with { type: 'json' };

interface Hierarchy {
  source: string;
  names: Record<string, string>;
  parents: Record<string, string[]>;
}
const H = hierarchy as Hierarchy;

/** All ancestors of a synset (itself included), nearest first. */
export function ancestors(wnid: string): string[] {
  const out: string[] = [];
  const queue = [wnid];
  const seen = new Set<string>();
  while (queue.length > 0) {
    const w = queue.shift()!;
    if (seen.has(w)) continue;
    seen.add(w);
    out.push(w);
    queue.push(...(H.parents[w] ?? []));
  }
  return out;
}

export function synsetName(wnid: string): string {
  return H.names[wnid] ?? wnid;
}

/** Whether `wnid` is `ancestor` or lies below it. */
export function isUnder(wnid: string, ancestor: string): boolean {
  return ancestors(wnid).includes(ancestor);
}

export const HIERARCHY_SOURCE = H.source;
