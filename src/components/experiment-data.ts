// Figures read the `experiments` collection through here: an entry is a union over step kinds (its schema is
// src/content/experiment-entry.ts), and a figure narrows it to the kind it draws, so pointing a figure at the wrong
// step fails the build with a sentence instead of drawing undefined fields.
import { getCollection, getEntry, type CollectionEntry } from 'astro:content';
import { SPEC_ENTRY } from '../compute/pipeline/step-ids.ts';

export type ExperimentData = CollectionEntry<'experiments'>['data'];
export type ExperimentKind = ExperimentData['kind'];
export type KindData<K extends ExperimentKind> = Extract<ExperimentData, { kind: K }>;

function isKind<K extends ExperimentKind>(data: ExperimentData, kind: K): data is KindData<K> {
  return data.kind === kind;
}

/** Step `id`'s data, which must be a `kind` step (`who` names the figure in the error); undefined when there is no such step. */
export async function stepData<K extends ExperimentKind>(kind: K, id: string, who: string): Promise<KindData<K> | undefined> {
  const entry = await getEntry('experiments', id);
  if (!entry) return undefined;
  const { data } = entry;
  if (!isKind(data, kind)) throw new Error(`${who}: step '${id}' is a ${data.kind} step, not a ${kind} step`);
  return data;
}

/** Whether the spec has step `id` (a `comparison` only with `compare:`). */
export async function hasStep(id: string): Promise<boolean> {
  return (await getEntry('experiments', id)) !== undefined;
}

/** Every `kind` step of the spec, with its id. */
export async function stepsOfKind<K extends ExperimentKind>(kind: K): Promise<{ id: string; data: KindData<K> }[]> {
  const out: { id: string; data: KindData<K> }[] = [];
  for (const e of await getCollection('experiments')) if (isKind(e.data, kind)) out.push({ id: e.id, data: e.data });
  return out;
}

/** The spec's own entry (model, layers, roles); see SpecEntry in experiment-entry.ts. */
export async function specEntry(who: string): Promise<KindData<'spec'>> {
  const data = await stepData('spec', SPEC_ENTRY, who);
  if (!data) throw new Error(`${who}: the experiments collection has no '${SPEC_ENTRY}' entry (experiments-loader.ts writes it)`);
  return data;
}

/**
 * A layer as a figure or a path names it: `@<role>` is the layer the spec's `roles` gives that role (so the article
 * never spells a model's layer names); anything else is a layer name, returned as it is.
 */
export async function resolveLayer(layer: string, who: string): Promise<string> {
  if (!layer.startsWith('@')) return layer;
  const { roles } = await specEntry(who);
  const name = roles[layer.slice(1)];
  if (name === undefined) {
    const known = Object.entries(roles).map(([r, l]) => `@${r} = ${l}`).join(', ') || 'none: add a roles: map to the spec';
    throw new Error(`${who}: no layer has the role '${layer.slice(1)}' in the spec (roles: ${known})`);
  }
  return name;
}
