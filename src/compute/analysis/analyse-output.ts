// The two files `atlas analyse --model …` writes, as zod schemas: the command checks the serialized bytes against them
// before anything reaches the output folder, and a reader (a notebook, a test) can parse with the same schemas. One
// object per channel per layer, in channel order, as issue 14 specifies; the other fields say what the numbers mean.
import { z } from 'zod';

const int = () => z.number().int();
const nonneg = () => z.number().nonnegative();
const probability = () => z.number().min(0).max(1);
const perLayer = <T extends z.ZodType>(value: T) => z.record(z.string(), value);

export const FRAGILITY_FILE = 'fragility.json';
export const POLYSEMANTIC_FILE = 'polysemantic.json';

export const AnalysedPair = z.strictObject({
  /** the stem both files share once `.clean` / `.adversarial` is stripped */
  name: z.string(),
  clean: z.string(),
  adversarial: z.string(),
  /** L∞ radius of this pair's control */
  eps: nonneg(),
  /** largest |adversarial − clean| over the pixels the model saw */
  linf: nonneg(),
  /** false: the files were at the model's input size and used as they are; true: resized and cropped per the card */
  preprocessed: z.boolean(),
});

export const FragilityChannel = z.strictObject({
  channel: int().nonnegative(),
  /** mean over images of |z_adv| − |z_ctrl|, in floored natural-σ units */
  effect: z.number(),
  /** percentile-bootstrap interval of the effect; null with fewer than 3 pairs */
  ci: z.tuple([z.number(), z.number()]).nullable(),
  /** two-sided sign-flip p of attack against control; null when descriptive */
  p: probability().nullable(),
  /** Benjamini–Hochberg q across the layer's channels */
  q: probability().nullable(),
  /** q ≤ fdr and effect ≥ min_effect */
  fragile: z.boolean(),
  /** mean signed z_adv: the direction of the move, which may cancel across images */
  signed_change: z.number(),
  /** mean spatial-mean activation over the pairs: clean, adversarial, control */
  clean: z.number(),
  adversarial: z.number(),
  control: z.number(),
});

export const FragilityLayerSummary = z.strictObject({
  channels: int().positive(),
  /** fewer than 3 pairs: effects only, no test and no fragile channel */
  descriptive: z.boolean(),
  sigma_floor: z.number().positive(),
  ci_level: probability(),
  permutations: int().nullable(),
  exact: z.boolean().nullable(),
  fragile: int().nonnegative(),
  /** fragile channels whose mean move is down / up */
  drops: int().nonnegative(),
  spikes: int().nonnegative(),
  mean_effect: z.number(),
  mean_adversarial_change: z.number(),
  mean_control_change: z.number(),
  /** of the clean top-10 % channels, the share still in the top 10 % after the attack and after the control */
  topk_retained: probability(),
  topk_retained_control: probability(),
});

export const FragilityFile = z.strictObject({
  model: z.string(),
  /** pairs */
  n: int().positive(),
  fdr: probability(),
  min_effect: nonneg(),
  seed: int(),
  norm: z.literal('linf'),
  /** the --eps given for every control, or null when each pair's own L∞ was used */
  eps: nonneg().nullable(),
  /** images σ was measured on */
  reference: int().positive(),
  pairs: z.array(AnalysedPair),
  layers: perLayer(z.array(FragilityChannel)),
  summary: perLayer(FragilityLayerSummary),
});
export type FragilityFile = z.infer<typeof FragilityFile>;

export const PolysemanticGroupOut = z.strictObject({
  wnid: z.string(),
  name: z.string(),
  images: int().nonnegative(),
  expected: nonneg(),
  enrichment: nonneg(),
  classes: z.array(z.string()),
});

export const PolysemanticChannel = z.strictObject({
  channel: int().nonnegative(),
  /** weaker enrichment of the best far-apart pair of WordNet groups; null when the channel is untestable */
  score: nonneg().nullable(),
  /** label-shuffle permutation p */
  p: probability().nullable(),
  /** Benjamini–Hochberg q across the layer's testable channels */
  q: probability().nullable(),
  polysemantic: z.boolean(),
  /** activation of the weakest strong image */
  threshold: z.number().nullable(),
  /** reference files of the strong images, strongest first */
  strong: z.array(z.string()),
  groups: z.array(PolysemanticGroupOut),
});

export const PolysemanticLayerSummary = z.strictObject({
  channels: int().positive(),
  testable: int().nonnegative(),
  polysemantic: int().nonnegative(),
});

export const PolysemanticFile = z.strictObject({
  model: z.string(),
  fdr: probability(),
  seed: int(),
  /** reference images */
  n: int().positive(),
  /** strong images per channel */
  top: int().positive(),
  permutations: int().positive(),
  smallest_p: probability(),
  far_depth: int().nonnegative(),
  min_group: int().positive(),
  layers: perLayer(z.array(PolysemanticChannel)),
  summary: perLayer(PolysemanticLayerSummary),
});
export type PolysemanticFile = z.infer<typeof PolysemanticFile>;
