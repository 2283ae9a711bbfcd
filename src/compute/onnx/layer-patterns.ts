// Layers named by pattern: `all` (every block output) or globs over the inventory's names (`features.*.conv.2`,
// `layer*.*.conv3`; `*` stands for any run of characters within one dot-separated part). A block is a module whose
// path ends in a number and has no numbered module above it (`features.14`, `layer3.2`; not `features.14.conv.1`),
// the unit torchvision's Sequential stacks repeat; its output is its last [N,C,H,W] layer in graph order (the residual
// Add where there is one, else the last convolution or activation). Graphs without module paths (`Conv_75`) have no
// blocks: name their layers.
import type { Layer } from './layers.ts';

/** Every block's output, in network order. */
export function blockOutputs(layers: readonly Layer[]): string[] {
  const last = new Map<string, string>();
  for (const l of layers) {
    if (l.dims.length !== 4) continue;
    const block = blockOf(l.name);
    // Map keeps first-insertion order (network order of the blocks); a later layer of the block replaces the output.
    if (block) last.set(block, l.name);
  }
  return [...last.values()];
}

function blockOf(name: string): string | null {
  const parts = name.split('.');
  for (let k = 1; k < parts.length; k++) if (/^\d+$/.test(parts[k])) return parts.slice(0, k + 1).join('.');
  return null;
}

/** The layers `patterns` name, in network order, each once; an error names a pattern that matches nothing. */
export function matchLayers(layers: readonly Layer[], patterns: 'all' | readonly string[], model: string): string[] {
  if (patterns === 'all') {
    const blocks = blockOutputs(layers);
    if (blocks.length === 0) throw new Error(`${model} has no block outputs (its node names carry no module paths such as features.14 or layer3.2): name its layers or patterns`);
    return blocks;
  }
  const wanted = new Set<string>();
  for (const p of patterns) {
    const re = new RegExp(`^${p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^.]*')}$`);
    const hits = layers.filter((l) => l.dims.length === 4 && re.test(l.name));
    if (hits.length === 0) throw new Error(`no [N,C,H,W] layer of ${model} matches '${p}' (\`atlas inspect ${model}\` lists them)`);
    for (const h of hits) wanted.add(h.name);
  }
  return layers.filter((l) => wanted.has(l.name)).map((l) => l.name);
}
