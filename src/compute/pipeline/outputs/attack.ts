// results.json of an attack step (and of each `<attack>_eps<k>` and `<model>/<attack>` step): the parameters it ran
// with, a summary over its images, and one row per attacked image. The row is also what `atlas attack` reports per
// image (attack-report.ts), there without the credit.
import { z } from 'zod';
import { jsonOutput } from './json-file.ts';

const int = () => z.number().int();

export const Prediction = z.strictObject({ class: int(), name: z.string(), probability: z.number() });
export type Prediction = z.infer<typeof Prediction>;

/** One attacked image as attack-report.ts builds it. */
export const AttackReportRow = z.strictObject({
  /** the image's path in the data directory */
  file: z.string(),
  label: int(),
  label_name: z.string(),
  /** a label from labels.json or the file name, or the model's clean prediction where there was none */
  label_source: z.enum(['given', 'prediction']),
  /** targeted attacks only */
  target: int().optional(),
  target_name: z.string().optional(),
  top5_before: z.array(Prediction),
  top5_after: z.array(Prediction),
  success: z.boolean(),
  /** of the saved 8-bit adversarial image against the clean crop, in pixel units ([0,1]) */
  linf: z.number(),
  l2: z.number(),
  /** PGD steps taken (fewer than asked when it stopped early) */
  steps: int(),
  loss_before: z.number(),
  loss_after: z.number(),
  /** file names in the step's entry; published paths (`_atlas/<hash>.png`) in the content collection */
  images: z.strictObject({ clean: z.string(), adversarial: z.string(), perturbation: z.string() }),
});
export type AttackReportRow = z.infer<typeof AttackReportRow>;

/**
 * The image's entry in labels.json besides `file` and `index` (name, wnid, and for photographs that may be published
 * their author and licence); other keys pass through.
 */
export const Credit = z.looseObject({
  author: z.string().optional(),
  author_url: z.string().optional(),
  source_url: z.string().optional(),
  license: z.string().optional(),
});

export const AttackRow = AttackReportRow.extend({ credit: Credit });
export type AttackRow = z.infer<typeof AttackRow>;

export const AttackParams = z.strictObject({
  norm: z.enum(['linf', 'l2']),
  /** pixel units ([0,1]) */
  eps: z.number(),
  alpha: z.number(),
  steps: int(),
  /** class index; null for an untargeted attack */
  target: int().nullable(),
  random_start: z.boolean(),
  seed: int(),
  /** only when the spec fixes it (an `auto` batch does not change a result) */
  batch: int().optional(),
});
export type AttackParams = z.infer<typeof AttackParams>;

/** Means over the attack's n images. */
export const AttackSummary = z.strictObject({
  n: int(),
  /** source class names; empty for `from: '*'` */
  sources: z.array(z.string()),
  target: z.string().nullable(),
  success_rate: z.number(),
  clean_top1_probability: z.number(),
  /** of the adversarial image's own top-1 class */
  adversarial_top1_probability: z.number(),
  mean_linf: z.number(),
  mean_l2: z.number(),
});
export type AttackSummary = z.infer<typeof AttackSummary>;

export const AttackResults = z.strictObject({
  /** the step id (`weasel_to_truck`, `any_untargeted_eps2`), without a compared model's prefix */
  id: z.string(),
  kind: z.literal('attack'),
  params: AttackParams,
  summary: AttackSummary,
  rows: z.array(AttackRow),
});
export type AttackResults = z.infer<typeof AttackResults>;

export const RESULTS_JSON = jsonOutput('results.json', AttackResults);
