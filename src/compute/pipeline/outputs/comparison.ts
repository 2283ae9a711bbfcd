// comparison.json: the main model and the spec's `compare:` model under the same attacks, one row per model and
// attack (each a mean over that attack's n images), and per model a summary over every attacked image.
import { z } from 'zod';
import { jsonOutput } from './json-file.ts';

const int = () => z.number().int();

/** Perturbation and confidence numbers that rows and summaries share. */
const means = {
  success_rate: z.number(),
  /** probability of the clean top-1 class on the clean image */
  clean_probability: z.number(),
  /** probability of that same class on the adversarial image (0 when outside its top 5) */
  adversarial_probability: z.number(),
  /** clean_probability − adversarial_probability */
  confidence_drop: z.number(),
  /** of the saved 8-bit adversarial image against the clean crop, in pixel units ([0,1]) */
  mean_linf: z.number(),
  mean_l2: z.number(),
  /** root-mean-square change of a pixel value, in 8-bit levels */
  rms_levels: z.number(),
  /** fraction of pixel positions where the saved adversarial image differs from the clean crop in some channel */
  changed_pixels: z.number(),
};

export const FragileCount = z.strictObject({ drops: int(), spikes: int(), channels: int(), descriptive: z.boolean() });
export type FragileCount = z.infer<typeof FragileCount>;

export const ComparisonRow = z.strictObject({
  /** `main` or the compare: id */
  model: z.string(),
  label: z.string(),
  attack: z.string(),
  /** attacked images; every other field is a mean over them */
  n: int(),
  ...means,
  /**
   * per layer (the main model's name): fragile neurons (moved further than by the control, q ≤ fdr, effect ≥
   * min_effect), dropping or spiking; `descriptive` when the attack has too few images for a test; empty without layers
   */
  fragile: z.record(z.string(), FragileCount),
});
export type ComparisonRow = z.infer<typeof ComparisonRow>;

/** Over every attacked image of one model, each attack weighted by its n. */
export const ComparisonSummary = z.strictObject({
  label: z.string(),
  n: int(),
  attacks: int(),
  ...means,
});
export type ComparisonSummary = z.infer<typeof ComparisonSummary>;

export const Comparison = z.strictObject({
  /** the main model (`main`) first */
  models: z.array(z.strictObject({ id: z.string(), label: z.string() })),
  /** the main model's layer names */
  layers: z.array(z.string()),
  fdr: z.number(),
  min_effect: z.number(),
  rows: z.array(ComparisonRow),
  /** model id → summary */
  summary: z.record(z.string(), ComparisonSummary),
});
export type Comparison = z.infer<typeof Comparison>;

export const COMPARISON_JSON = jsonOutput('comparison.json', Comparison);
