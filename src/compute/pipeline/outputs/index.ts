// The JSON outputs of every kind of step, by kind: what a cache entry of that kind holds besides images and arrays.
// The content collection's schema (src/content/experiment-entry.ts) is built from the same schemas.
import { RESULTS_JSON } from './attack.ts';
import { ACTIVATIONS_JSON, HISTOGRAMS_JSON, NEURONS_JSON, POLYSEMANTIC_JSON, TOP_IMAGES_JSON } from './analysis.ts';
import { ATLAS_JSON } from './atlas.ts';
import { COMPARISON_JSON } from './comparison.ts';
import { CURVES_JSON, FEATUREVIS_JSON } from './featurevis.ts';
import { PATCHING_JSON } from './patching.ts';
import { DEPTH_JSON } from './depth.ts';
import type { JsonOutput } from './json-file.ts';

export const STEP_OUTPUTS = {
  attack: [RESULTS_JSON],
  activations: [ACTIVATIONS_JSON],
  neurons: [NEURONS_JSON],
  polysemantic: [POLYSEMANTIC_JSON, HISTOGRAMS_JSON, TOP_IMAGES_JSON],
  featurevis: [FEATUREVIS_JSON, CURVES_JSON],
  atlas: [ATLAS_JSON],
  comparison: [COMPARISON_JSON],
  patching: [PATCHING_JSON],
  depth: [DEPTH_JSON],
} as const satisfies Record<string, readonly JsonOutput[]>;

export type StepKind = keyof typeof STEP_OUTPUTS;

export * from './attack.ts';
export * from './analysis.ts';
export * from './atlas.ts';
export * from './comparison.ts';
export * from './featurevis.ts';
export * from './json-file.ts';
export * from './patching.ts';
export * from './depth.ts';
