// The `experiments` collection's schema: one entry per step, shaped as experiments-loader.ts's entryData builds it —
// each JSON output of the step under its file's base name (`neurons.json` → `neurons`), an attack's results.json
// also spread at the top level (what AttackFigure reads), and the step's kind, cache key, spec id and model file.
// Image names in the outputs are published paths here (`_atlas/<hash>.png`), still strings.
import { z } from 'zod';
import {
  Activations, Atlas, AttackResults, Comparison, Curves, Depth, Featurevis, Histograms, Neurons, PatchingStep, Polysemantic, TopImages,
} from '../compute/pipeline/outputs/index.ts';

const meta = {
  /** the step's cache key */
  key: z.string(),
  /** the spec's id */
  spec: z.string(),
  /** the spec's model file (the main model's, also for a compared model's steps) */
  model: z.string(),
  /** the spec's `private`: photographs without a licence to publish may be shown */
  private: z.boolean(),
  /**
   * an attack's adversarial images: display path (`_atlas/<hash>.webp`) → the exact PNG (`_atlas/<sha256>.png`);
   * empty in other steps
   */
  exact: z.record(z.string(), z.string()),
};

export const AttackEntry = AttackResults.extend({ ...meta, results: AttackResults });
export const ActivationsEntry = z.strictObject({ kind: z.literal('activations'), ...meta, activations: Activations });
export const NeuronsEntry = z.strictObject({ kind: z.literal('neurons'), ...meta, neurons: Neurons });
export const PolysemanticEntry = z.strictObject({
  kind: z.literal('polysemantic'), ...meta, polysemantic: Polysemantic, histograms: Histograms, top_images: TopImages,
});
export const FeaturevisEntry = z.strictObject({ kind: z.literal('featurevis'), ...meta, featurevis: Featurevis, curves: Curves });
export const AtlasEntry = z.strictObject({ kind: z.literal('atlas'), ...meta, atlas: Atlas });
export const ComparisonEntry = z.strictObject({ kind: z.literal('comparison'), ...meta, comparison: Comparison });
export const DepthEntry = z.strictObject({ kind: z.literal('depth'), ...meta, depth: Depth });
export const PatchingEntry = z.strictObject({ kind: z.literal('patching'), ...meta, patching: PatchingStep });

/**
 * Not a step: the spec itself (entry id `spec`), so that prose and figures name the model and its layers from the
 * spec instead of spelling them (`<Value of="spec.model_label" />`, `<Layer role="late" />`).
 */
export const SpecEntry = z.strictObject({
  kind: z.literal('spec'), ...meta,
  /** the main model as figures name it (spec `model.label`, else its card's id) */
  model_label: z.string(),
  /** what the model's card says it is (`task`), where it says */
  model_task: z.string().nullable(),
  /** the analysed layers, in the spec's order */
  layers: z.array(z.string()),
  /** role → layer (spec `roles`) */
  roles: z.record(z.string(), z.string()),
  /** the compared model's label; null without `compare:` */
  compare_label: z.string().nullable(),
  /** why no second model is attacked (no compare:, or one written for another model); null with one */
  compare_absent: z.string().nullable(),
});

export const ExperimentEntry = z.discriminatedUnion('kind', [
  AttackEntry, ActivationsEntry, NeuronsEntry, PolysemanticEntry, FeaturevisEntry, AtlasEntry, ComparisonEntry, PatchingEntry, DepthEntry, SpecEntry,
]);
export type ExperimentEntry = z.infer<typeof ExperimentEntry>;
export type ExperimentKind = ExperimentEntry['kind'];
