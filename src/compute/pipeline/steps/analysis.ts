// The neuron-analysis steps of a spec, in the order they run: `activations` over the clean reference set
// (activations.ts), `neurons_<attack>` per attack (neurons.ts), `polysemantic` (polysemantic.ts) and `atlas`, the
// neuron pages' photos, patches and classes (atlas.ts). Each module is one step's code, so a change to one re-plans
// that step and what needs it, not its siblings.
import type { Step } from '../step.ts';
import { activationsStep, type AnalysisEnv } from './activations.ts';
import { atlasStep } from './atlas.ts';
import { neuronsSteps } from './neurons.ts';
import { depthStep } from './depth.ts';
import { patchingSteps } from './patching.ts';
import { polysemanticStep } from './polysemantic.ts';

export type { AnalysisEnv };

export async function analysisSteps(env: AnalysisEnv): Promise<Step[]> {
  if (env.spec.layers.length === 0) return [];
  return [await activationsStep(env), ...neuronsSteps(env), ...patchingSteps(env), ...depthStep(env), polysemanticStep(env), atlasStep(env)];
}
