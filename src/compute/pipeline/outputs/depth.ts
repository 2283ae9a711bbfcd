// depth.json of the `depth` step: fragility layer by layer through the network (spec `depth:`), per attack — how many
// of each layer's neurons the attack moves beyond its control (the neuron analysis's test, analysis/fragility-effect.ts)
// and the layer's mean effect with a bootstrap interval over the attacked images.
import { z } from 'zod';
import { jsonOutput } from './json-file.ts';

const int = () => z.number().int();

export const DepthLayer = z.strictObject({
  layer: z.string(),
  channels: int(),
  /** [H,W] of its maps */
  spatial: z.tuple([int(), int()]),
  /**
   * a compared model's layer: the main model's layer it stands for, found by name or by its activations (mean
   * per-channel correlation over the probe photos; analysis/layer-alignment.ts); null for the main model
   */
  aligned: z.strictObject({ layer: z.string(), how: z.enum(['name', 'activations']), correlation: z.number().nullable() }).nullable(),
});

export const DepthPoint = z.strictObject({
  layer: z.string(),
  /** fragile neurons (q ≤ fdr across the layer and effect ≥ min_effect); null when descriptive (n < 3) */
  fragile: int().nullable(),
  fraction: z.number().nullable(),
  /** mean over images of the layer's mean |z_adv| − |z_ctrl|, and its bootstrap interval (null when descriptive) */
  mean_effect: z.number(),
  ci: z.tuple([z.number(), z.number()]).nullable(),
});

const Share = z.strictObject({ layer: z.string(), fraction: z.number() });

export const DepthAttack = z.strictObject({
  n: int(),
  descriptive: z.boolean(),
  /** one per layer, in network order */
  points: z.array(DepthPoint),
  /** the share of fragile neurons in the first and last layer and where it peaks; null when descriptive */
  first: Share.nullable(),
  peak: Share.nullable(),
  last: Share.nullable(),
});

export const Depth = z.strictObject({
  /** the spec's `depth:` as written */
  pattern: z.union([z.literal('all'), z.array(z.string())]),
  /** in network order */
  layers: z.array(DepthLayer),
  /** reference photos the natural σ comes from */
  n_reference: int(),
  fdr: z.number(),
  min_effect: z.number(),
  ci_level: z.number(),
  /** by attack id, in the spec's order */
  attacks: z.record(z.string(), DepthAttack),
  /** a compared model's: the main model's layers no layer of it correlates with well enough (best r, if any) */
  unaligned: z.array(z.strictObject({ layer: z.string(), correlation: z.number().nullable() })),
});
export type Depth = z.infer<typeof Depth>;

export const DEPTH_JSON = jsonOutput('depth.json', Depth);
