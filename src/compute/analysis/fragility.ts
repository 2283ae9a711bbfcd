// Fragile neurons of one layer under one attack: neurons that the attack moves further than random noise of the same
// size moves them, beyond chance, by a margin worth naming. The verdict, the interval and the test are
// fragility-effect.ts's (effect = mean over images of |z_adv| − |z_ctrl| in floored natural-σ units; sign-flip p;
// Benjamini–Hochberg q across the layer; fragile = q ≤ fdr and effect ≥ min_effect; descriptive only below 3 images).
// Around it, what the figures need: the signed score (direction of the move, which cancels across images of different
// classes and is therefore never the verdict), drops and spikes (fragile neurons by the sign of their mean move), the
// ranking, and top-k retention and target overlap each with the control's value as their baseline.
import { layerFragilityEffect, type FragilityEffectOptions, type LayerFragilityEffect } from './fragility-effect.ts';
import { groupStats, topChannels } from './neuron-stats.ts';

export interface NeuronChange {
  channel: number;
  /** mean spatial-mean activation over the attack's images: clean, adversarial, control */
  clean: number;
  adversarial: number;
  control: number;
  /** mean signed (adversarial − clean) / σ' */
  score: number;
  effect: number;
  ci: [number, number] | null;
  p: number | null;
  q: number | null;
  fragile: boolean;
}

export interface LayerFragility {
  layer: string;
  /** images in the attack */
  n: number;
  channels: number;
  fdr: number;
  min_effect: number;
  sigma_floor: number;
  ci_level: number;
  /** n below 3: effects only, no test, no fragile neuron */
  descriptive: boolean;
  permutations: number | null;
  exact: boolean | null;
  /** fragile neurons whose mean move is down / up */
  drops: number;
  spikes: number;
  /** (drops + spikes) / channels */
  fragile_fraction: number;
  /** mean over channels of the effect, and of |z| under attack and under the control */
  mean_effect: number;
  mean_adversarial_change: number;
  mean_control_change: number;
  /** the most fragile neurons: fragile first, then by effect */
  ranking: NeuronChange[];
  /** of the source images' top neurons (clean), the fraction still among the top neurons after the attack … */
  topk_retained: number;
  /** … and after the control */
  topk_retained_control: number;
  /** of the top neurons after the attack, the fraction among the target class's clean top neurons (targeted) … */
  topk_target_overlap: number | null;
  /** … and of the top neurons after the control: the overlap noise alone gives */
  topk_target_overlap_control: number | null;
  /** [C], channel order: mean signed score, effect, interval, p, q and verdict */
  scores: number[];
  effect: number[];
  ci_low: (number | null)[];
  ci_high: (number | null)[];
  p: (number | null)[];
  q: (number | null)[];
  fragile: boolean[];
}

export function layerFragility(opts: Pick<FragilityEffectOptions, 'channels' | 'clean' | 'adversarial' | 'control' | 'sigma' | 'seed' | 'fdr' | 'minEffect' | 'permutations'> & {
  layer: string;
  /** clean activations [M,C] of target-class images, when targeted */
  targetClean?: ArrayLike<number>;
  topFraction?: number;
  keep?: number;
}): LayerFragility {
  const { channels } = opts;
  const n = opts.clean.length / channels;
  // Enough sign vectors that one neuron alone can pass Benjamini–Hochberg: its p must reach fdr / channels.
  const permutations = opts.permutations ?? Math.max(9999, Math.ceil((2 * channels) / (opts.fdr ?? 0.05)));
  const e: LayerFragilityEffect = layerFragilityEffect({
    channels, clean: opts.clean, adversarial: opts.adversarial, control: opts.control, sigma: opts.sigma,
    seed: opts.seed, fdr: opts.fdr, minEffect: opts.minEffect, permutations,
  });
  const rows = [...Array(n).keys()];
  const clean = groupStats(opts.clean, channels, rows);
  const adv = groupStats(opts.adversarial, channels, rows);
  const ctrl = groupStats(opts.control, channels, rows);
  const fraction = opts.topFraction ?? 0.1;
  const before = topChannels(clean.mean, fraction);
  const after = topChannels(adv.mean, fraction);
  const afterControl = topChannels(ctrl.mean, fraction);
  const share = (of: number[], inSet: Set<number>) => of.filter((c) => inSet.has(c)).length / of.length;
  let targetOverlap: number | null = null;
  let targetOverlapControl: number | null = null;
  if (opts.targetClean && opts.targetClean.length > 0) {
    const m = opts.targetClean.length / channels;
    const target = new Set(topChannels(groupStats(opts.targetClean, channels, [...Array(m).keys()]).mean, fraction));
    targetOverlap = share(after, target);
    targetOverlapControl = share(afterControl, target);
  }
  const neurons = e.neurons;
  const drops = neurons.filter((x) => x.fragile && x.signed_change < 0).length;
  const spikes = neurons.filter((x) => x.fragile && x.signed_change >= 0).length;
  const mean = (f: (x: (typeof neurons)[number]) => number) => neurons.reduce((a, x) => a + f(x), 0) / channels;
  const ranking = [...neurons]
    .sort((a, b) => Number(b.fragile) - Number(a.fragile) || b.effect - a.effect || a.channel - b.channel)
    .slice(0, opts.keep ?? 20)
    .map((x) => ({
      channel: x.channel, clean: clean.mean[x.channel], adversarial: adv.mean[x.channel], control: ctrl.mean[x.channel],
      score: x.signed_change, effect: x.effect, ci: x.ci, p: x.p, q: x.q, fragile: x.fragile,
    }));
  return {
    layer: opts.layer,
    n,
    channels,
    fdr: e.fdr,
    min_effect: e.min_effect,
    sigma_floor: e.sigma_floor,
    ci_level: e.ci_level,
    descriptive: e.descriptive,
    permutations: e.permutations,
    exact: e.exact,
    drops,
    spikes,
    fragile_fraction: (drops + spikes) / channels,
    mean_effect: mean((x) => x.effect),
    mean_adversarial_change: mean((x) => x.adversarial_change),
    mean_control_change: mean((x) => x.control_change),
    ranking,
    topk_retained: share(before, new Set(after)),
    topk_retained_control: share(before, new Set(afterControl)),
    topk_target_overlap: targetOverlap,
    topk_target_overlap_control: targetOverlapControl,
    scores: neurons.map((x) => x.signed_change),
    effect: neurons.map((x) => x.effect),
    ci_low: neurons.map((x) => x.ci?.[0] ?? null),
    ci_high: neurons.map((x) => x.ci?.[1] ?? null),
    p: neurons.map((x) => x.p),
    q: neurons.map((x) => x.q),
    fragile: neurons.map((x) => x.fragile),
  };
}
