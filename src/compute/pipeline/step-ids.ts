// Step ids are also the `experiments` collection's entry ids that figures and <Value of="…"> read, and the names
// under which tests find a step's outputs: the producers and every reader build them here, so renaming a step is one
// edit.

/** the reference set's activations per layer (one step per model) */
export const ACTIVATIONS = 'activations';
export const POLYSEMANTIC = 'polysemantic';
export const FEATUREVIS = 'featurevis';
/** what the atlas of neurons shows per neuron besides the other steps' numbers */
export const ATLAS = 'atlas';
/** the two models side by side; only with a spec's `compare:` */
export const COMPARISON = 'comparison';
/** fragility layer by layer through the network (spec `depth:`) */
export const DEPTH = 'depth';
/** not a step: the collection's entry for the spec itself (model, layers, roles), which prose and figures read */
export const SPEC_ENTRY = 'spec';

/** An attack's step is named by its id in the spec. */
export function attackStepId(attack: string): string {
  return attack;
}

/** The neuron analysis (fragility, heatmaps, statistics) of one attack. */
export function neuronsStepId(attack: string): string {
  return `neurons_${attack}`;
}

/** Activation patching of one layer on an attack's images (spec `patching:`). */
export function patchingStepId(attack: string): string {
  return `patching_${attack}`;
}

/** The k-th budget of an attack's `eps_sweep` (k from 0, in the spec's order). */
export function sweepStepId(attack: string, k: number): string {
  return `${attack}_eps${k}`;
}

/** Whether `id` is the attack itself or one of its sweep steps. */
export function isAttackOrSweep(attack: string, id: string): boolean {
  return id === attack || (id.startsWith(`${attack}_eps`) && /^\d+$/.test(id.slice(attack.length + 4)));
}

/** A step of the compared model (spec `compare:`): its own id under the model's id. */
export function comparedStepId(modelId: string, id: string): string {
  return `${modelId}/${id}`;
}

/** Whether `id` belongs to a compared model rather than the spec's main model. */
export function isComparedStepId(id: string): boolean {
  return id.includes('/');
}
