// Fragile neurons: how far an attack moves a neuron's activation, measured against how much that neuron naturally
// varies. For the images of one attack,
//
//     score_c = mean_i( a_adv[i,c] − a_clean[i,c] ) / σ_c
//
// where a is the spatial-mean activation and σ_c its standard deviation over the clean reference set (the dataset).
// |score| ≥ z (default 2: a move of two natural standard deviations from a perturbation of 4 grey levels) marks the
// neuron fragile; negative scores are drops (the neuron collapses), positive ones spikes. Neurons that never vary
// (σ = 0, dead) score 0.
import { groupStats, topChannels } from './neuron-stats.ts';

export interface NeuronChange {
  channel: number;
  clean: number;
  adversarial: number;
  score: number;
}

export interface LayerFragility {
  layer: string;
  /** images in the attack */
  n: number;
  channels: number;
  z: number;
  drops: number;
  spikes: number;
  /** (drops + spikes) / channels */
  fragile_fraction: number;
  mean_abs_score: number;
  /** the most fragile neurons, by |score| */
  ranking: NeuronChange[];
  /** of the source images' top neurons (clean), the fraction still among the top neurons after the attack */
  topk_retained: number;
  /** of the top neurons after the attack, the fraction among the target class's clean top neurons (targeted) */
  topk_target_overlap: number | null;
  /** every channel's score, in channel order, for figures */
  scores: number[];
}

export function layerFragility(opts: {
  layer: string;
  channels: number;
  clean: ArrayLike<number>; // [N,C]
  adversarial: ArrayLike<number>; // [N,C]
  sigma: ArrayLike<number>; // [C]
  /** clean activations [M,C] of target-class images, when targeted */
  targetClean?: ArrayLike<number>;
  z?: number;
  topFraction?: number;
  keep?: number;
}): LayerFragility {
  const { channels } = opts;
  const z = opts.z ?? 2;
  const n = opts.clean.length / channels;
  const rows = [...Array(n).keys()];
  const clean = groupStats(opts.clean, channels, rows);
  const adv = groupStats(opts.adversarial, channels, rows);
  const scores = Array.from({ length: channels }, (_, c) => (opts.sigma[c] > 0 ? (adv.mean[c] - clean.mean[c]) / opts.sigma[c] : 0));
  const fraction = opts.topFraction ?? 0.1;
  const before = topChannels(clean.mean, fraction);
  const after = topChannels(adv.mean, fraction);
  const afterSet = new Set(after);
  let targetOverlap: number | null = null;
  if (opts.targetClean && opts.targetClean.length > 0) {
    const m = opts.targetClean.length / channels;
    const target = new Set(topChannels(groupStats(opts.targetClean, channels, [...Array(m).keys()]).mean, fraction));
    targetOverlap = after.filter((c) => target.has(c)).length / after.length;
  }
  const drops = scores.filter((s) => s <= -z).length;
  const spikes = scores.filter((s) => s >= z).length;
  const ranking = [...scores.keys()]
    .sort((a, b) => Math.abs(scores[b]) - Math.abs(scores[a]) || a - b)
    .slice(0, opts.keep ?? 20)
    .map((c) => ({ channel: c, clean: clean.mean[c], adversarial: adv.mean[c], score: scores[c] }));
  return {
    layer: opts.layer,
    n,
    channels,
    z,
    drops,
    spikes,
    fragile_fraction: (drops + spikes) / channels,
    mean_abs_score: scores.reduce((a, s) => a + Math.abs(s), 0) / channels,
    ranking,
    topk_retained: before.filter((c) => afterSet.has(c)).length / before.length,
    topk_target_overlap: targetOverlap,
    scores,
  };
}
