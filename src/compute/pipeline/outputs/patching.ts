// patching.json of a `patching_<attack>` step: activation patching of one layer on the attack's images (the
// analysis's own schema, analysis/patching-output.ts), the attack it patched, and a summary the article quotes: at one
// k, whether restoring or injecting the most fragile neurons does more than as many random ones, intervals apart.
import { z } from 'zod';
import { PatchingResult } from '../../analysis/patching-output.ts';
import { jsonOutput } from './json-file.ts';

const int = () => z.number().int();

/** One direction at the summary's k: the ranked, random and most-active means with their interval bounds. */
export const PatchingContrast = z.strictObject({
  /** `recovery` (restore) or `drop` (inject) */
  measure: z.string(),
  ranked: z.number().nullable(),
  ranked_low: z.number().nullable(),
  random: z.number().nullable(),
  random_high: z.number().nullable(),
  active: z.number().nullable(),
  active_high: z.number().nullable(),
  /** images the fractions rest on */
  n: int(),
});

export const PatchingStep = PatchingResult.extend({
  attack: z.string(),
  summary: z.strictObject({
    /** the k the prose quotes: the ks value nearest to 5 % of the layer */
    k: int(),
    restore: PatchingContrast,
    inject: PatchingContrast,
  }),
});
export type PatchingStep = z.infer<typeof PatchingStep>;

export const PATCHING_JSON = jsonOutput('patching.json', PatchingStep);
