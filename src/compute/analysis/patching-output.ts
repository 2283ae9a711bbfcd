// patching.json, the file `atlas patch` writes, as a zod schema: the command checks the serialized bytes against it
// before anything reaches the output folder, and a reader (a notebook, a test) parses with the same schema. One curve
// per direction (restore, inject) and channel selection (ranked, random, most active), one point per k; every point
// is a mean over images with its bootstrap interval and n, because the number of images behind a fraction differs
// from the number behind a probability (images the attack barely moved are left out of fractions, see min_gap).
import { z } from 'zod';

const int = () => z.number().int();
const probability = () => z.number().min(0).max(1);

export const PATCHING_FILE = 'patching.json';

/** A mean over images; mean and ci are null when no image counts (n = 0), ci also when n = 1. */
export const PatchingInterval = z.strictObject({
  mean: z.number().nullable(),
  /** percentile bootstrap over images, at the file's ci_level */
  ci: z.tuple([z.number(), z.number()]).nullable(),
  n: int().nonnegative(),
});
export type PatchingInterval = z.infer<typeof PatchingInterval>;

/** Adversarial image, the clean activations of k channels restored. */
export const RestorePoint = z.strictObject({
  k: int().nonnegative(),
  /** probability of the clean class after restoring, over all images */
  p_clean: PatchingInterval,
  /** (p_clean(restored) − p_clean(adv)) / (p_clean(clean) − p_clean(adv)): 0 nothing undone, 1 all of it */
  recovery: PatchingInterval,
  /** targeted attacks: probability of the target after restoring; null otherwise */
  p_target: PatchingInterval.nullable(),
  /** (p_target(adv) − p_target(restored)) / (p_target(adv) − p_target(clean)) */
  target_lost: PatchingInterval.nullable(),
});
export type RestorePoint = z.infer<typeof RestorePoint>;

/** Clean image, the adversarial activations of k channels injected. */
export const InjectPoint = z.strictObject({
  k: int().nonnegative(),
  /** probability of the clean class after injecting, over all images */
  p_clean: PatchingInterval,
  /** (p_clean(clean) − p_clean(injected)) / (p_clean(clean) − p_clean(adv)): the share of the attack's drop reproduced */
  drop: PatchingInterval,
  p_target: PatchingInterval.nullable(),
  /** (p_target(injected) − p_target(clean)) / (p_target(adv) − p_target(clean)) */
  target_gain: PatchingInterval.nullable(),
});
export type InjectPoint = z.infer<typeof InjectPoint>;

const curves = <P extends z.ZodType>(point: P) => z.strictObject({
  /** the top k of the ranking: the same channels for every image, or with `ranking.held_out` its fold's order's */
  ranked: z.array(point),
  /** k channels drawn uniformly per image and draw; per image averaged over the draws before the interval */
  random: z.array(point),
  /** per image the k channels with the highest spatial-mean activation on its clean version */
  active: z.array(point),
});

export const PatchedImage = z.strictObject({
  name: z.string(),
  clean_class: int().nonnegative(),
  /** targeted attacks only */
  target: int().nonnegative().nullable(),
  /** unpatched probabilities of the clean class on the clean and the adversarial image */
  p_clean: z.strictObject({ clean: probability(), adversarial: probability() }),
  p_target: z.strictObject({ clean: probability(), adversarial: probability() }).nullable(),
  /** p_clean fell by at least min_gap: the image counts in recovery and drop */
  counted: z.boolean(),
  /** p_target rose by at least min_gap: the image counts in target_lost and target_gain; null if untargeted */
  target_counted: z.boolean().nullable(),
});
export type PatchedImage = z.infer<typeof PatchedImage>;

/** What the analysis computes; the file adds where the model and the classes came from. */
export const PatchingResult = z.strictObject({
  layer: z.string(),
  channels: int().positive(),
  /** [H,W] of the layer's maps; [] for a [N,C] layer */
  spatial: z.array(int().positive()),
  /**
   * every path from the pixels to the logits passes through the layer: only then does k = C give recovery and drop
   * of exactly 1; false inside a residual block, whose skip connection carries the unpatched image around it
   */
  cut: z.boolean(),
  n: int().positive(),
  targeted: z.boolean(),
  seed: int(),
  draws: int().positive(),
  resamples: int().positive(),
  ci_level: probability(),
  min_gap: probability(),
  ks: z.array(int().nonnegative()),
  ranking: z.strictObject({
    /** where the order came from, in words */
    from: z.string(),
    /** every channel once, most important first */
    channels: z.array(int().nonnegative()),
    /**
     * cross-fitting: image i was patched with orders[folds[i]], measured on the other folds' images only (null: every
     * image with `channels`)
     */
    held_out: z.strictObject({ folds: z.array(int().nonnegative()), orders: z.array(z.array(int().nonnegative())) }).nullable(),
  }),
  images: z.array(PatchedImage),
  restore: curves(RestorePoint),
  inject: curves(InjectPoint),
});
export type PatchingResult = z.infer<typeof PatchingResult>;

export const PatchingFile = PatchingResult.extend({
  model: z.string(),
  /** clean_class per image: the label `atlas attack` attacked (its results.json), or the model's clean top-1 */
  classes_from: z.enum(['attack', 'prediction']),
  pairs: z.array(z.strictObject({ name: z.string(), clean: z.string(), adversarial: z.string(), preprocessed: z.boolean() })),
});
export type PatchingFile = z.infer<typeof PatchingFile>;
