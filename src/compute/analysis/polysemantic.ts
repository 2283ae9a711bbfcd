// Polysemantic neurons: neurons strongly active for classes that are far apart in WordNet. A neuron's strong images
// are those whose spatial-mean activation reaches its 99th percentile over the reference set; its score is
//
//     polysemanticity = 1 − (share of strong images in the most common coarse group)
//
// (0: every strong image is, say, an animal; 0.5: half animals, half vehicles), with the largest WordNet distance
// between the strong images' classes breaking ties. A neuron counts as polysemantic when its strong images span two
// coarse groups and the second holds at least a quarter of them (and at least two images).
import { quantile } from '../numbers.ts';
import { coarseGroup, wordnetDistance } from './class-groups.ts';

export interface StrongImage {
  image: number;
  class: number;
  name: string;
  group: string;
  activation: number;
}

export interface PolysemanticNeuron {
  channel: number;
  threshold: number;
  strong: StrongImage[];
  groups: Record<string, number>;
  score: number;
  max_distance: number;
  polysemantic: boolean;
}

export interface LayerPolysemanticity {
  layer: string;
  n: number;
  percentile: number;
  /** neurons meeting the polysemantic criterion */
  count: number;
  ranking: PolysemanticNeuron[];
}

export function layerPolysemanticity(opts: {
  layer: string;
  channels: number;
  values: ArrayLike<number>; // [N,C] spatial means over the reference set
  labels: readonly number[]; // [N] class per image
  classes: readonly { wnid: string; name: string }[];
  percentile?: number;
  keep?: number;
}): LayerPolysemanticity {
  const { channels, values, labels, classes } = opts;
  const percentile = opts.percentile ?? 99;
  const n = labels.length;
  const neurons: PolysemanticNeuron[] = [];
  const column = new Float64Array(n);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < n; i++) column[i] = values[i * channels + c];
    const threshold = quantile(column, percentile / 100);
    const strong: StrongImage[] = [];
    for (let i = 0; i < n; i++) {
      if (column[i] >= threshold && column[i] > 0) {
        const k = labels[i];
        strong.push({ image: i, class: k, name: classes[k].name, group: coarseGroup(classes[k].wnid), activation: column[i] });
      }
    }
    strong.sort((a, b) => b.activation - a.activation || a.image - b.image);
    const groups: Record<string, number> = {};
    for (const s of strong) groups[s.group] = (groups[s.group] ?? 0) + 1;
    const counts = Object.values(groups).sort((a, b) => b - a);
    const score = strong.length ? 1 - counts[0] / strong.length : 0;
    let maxDistance = 0;
    for (let a = 0; a < strong.length; a++) {
      for (let b = a + 1; b < strong.length; b++) {
        maxDistance = Math.max(maxDistance, wordnetDistance(classes[strong[a].class].wnid, classes[strong[b].class].wnid));
      }
    }
    const second = counts[1] ?? 0;
    neurons.push({ channel: c, threshold, strong, groups, score, max_distance: maxDistance, polysemantic: second >= 2 && second >= strong.length / 4 });
  }
  const ranking = neurons
    .sort((a, b) => b.score - a.score || b.max_distance - a.max_distance || a.channel - b.channel)
    .slice(0, opts.keep ?? 20);
  return { layer: opts.layer, n, percentile, count: neurons.filter((x) => x.polysemantic).length, ranking };
}
