// Coarse semantic groups of ImageNet classes ("animal", "vehicle", …) and class groups under any WordNet synset
// ("mustelids" = classes under musteline mammal), from the hierarchy in imagenet-hierarchy.json. Thin classes are
// pooled this way for class-level statistics, and semantic distance between classes says when a neuron that fires
// for both is polysemantic.
import hierarchy from './imagenet-hierarchy.json' with { type: 'json' };

/** Groups in priority order: a class belongs to the first whose synset is among its ancestors. */
export const COARSE_GROUPS: readonly { group: string; wnid: string }[] = [
  { group: 'person', wnid: 'n00007846' },
  { group: 'animal', wnid: 'n00015388' },
  { group: 'plant', wnid: 'n00017222' },
  { group: 'food', wnid: 'n00021265' },
  { group: 'food', wnid: 'n07555863' },
  { group: 'vehicle', wnid: 'n04524313' },
  { group: 'clothing', wnid: 'n03051540' },
  { group: 'container', wnid: 'n03094503' },
  { group: 'structure', wnid: 'n04341686' },
  { group: 'device', wnid: 'n03183080' },
  { group: 'landscape', wnid: 'n09287968' },
  { group: 'natural object', wnid: 'n00019128' },
  { group: 'other artifact', wnid: 'n00021939' },
];

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

export function coarseGroup(wnid: string): string {
  const up = new Set(ancestors(wnid));
  return COARSE_GROUPS.find((g) => up.has(g.wnid))?.group ?? 'other';
}

/** Whether `wnid` is `ancestor` or lies below it. */
export function isUnder(wnid: string, ancestor: string): boolean {
  return ancestors(wnid).includes(ancestor);
}

/**
 * Semantic distance of two classes: edges from each up to their lowest common ancestor, summed (0 for the same
 * class; weasel–mink 2; weasel–trailer truck ≈ 18).
 */
export function wordnetDistance(a: string, b: string): number {
  const depthFrom = (w: string) => {
    const d = new Map<string, number>([[w, 0]]);
    const queue = [w];
    while (queue.length > 0) {
      const x = queue.shift()!;
      for (const p of H.parents[x] ?? []) if (!d.has(p)) { d.set(p, d.get(x)! + 1); queue.push(p); }
    }
    return d;
  };
  const da = depthFrom(a);
  const db = depthFrom(b);
  let best = Infinity;
  for (const [w, x] of da) { const y = db.get(w); if (y !== undefined) best = Math.min(best, x + y); }
  return best;
}

export const HIERARCHY_SOURCE = H.source;
