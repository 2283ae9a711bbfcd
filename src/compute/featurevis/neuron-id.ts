// How a neuron is written on the command line and in specs, and how its files are named.
import type { NeuronTarget } from './render.ts';

/** `layer:channel` or `layer:channel:y:x` (the layer name may itself contain colons from its op index). */
export function parseNeuron(text: string): NeuronTarget {
  const parts = text.split(':');
  const numeric = (s: string | undefined) => s !== undefined && /^\d+$/.test(s);
  if (parts.length >= 4 && numeric(parts.at(-1)) && numeric(parts.at(-2)) && numeric(parts.at(-3))) {
    return { layer: parts.slice(0, -3).join(':'), channel: Number(parts.at(-3)), y: Number(parts.at(-2)), x: Number(parts.at(-1)) };
  }
  if (parts.length >= 2 && numeric(parts.at(-1))) return parseChannel(text);
  throw new Error(`neuron '${text}': expected <layer>:<channel> or <layer>:<channel>:<y>:<x>`);
}

/** `layer:channel` only (a spec's featurevis neurons): everything before the last colon is the layer. */
export function parseChannel(text: string): NeuronTarget {
  const at = text.lastIndexOf(':');
  if (at <= 0 || !/^\d+$/.test(text.slice(at + 1))) throw new Error(`neuron '${text}': expected <layer>:<channel>`);
  return { layer: text.slice(0, at), channel: Number(text.slice(at + 1)) };
}

/** File-name-safe stem: `features.14.conv.1_37`, or `…_37_3_4` for a position. */
export function neuronFileStem(t: NeuronTarget): string {
  return `${t.layer}_${t.channel}${t.y === undefined ? '' : `_${t.y}_${t.x}`}`.replace(/[^\w.-]/g, '_');
}
