// Figures read the `experiments` collection through here: an entry is a union over step kinds (its schema is
// src/content/experiment-entry.ts), and a figure narrows it to the kind it draws, so pointing a figure at the wrong
// step fails the build with a sentence instead of drawing undefined fields.
import { getCollection, getEntry, type CollectionEntry } from 'astro:content';

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

/** Every `kind` step of the spec, with its id. */
export async function stepsOfKind<K extends ExperimentKind>(kind: K): Promise<{ id: string; data: KindData<K> }[]> {
  const out: { id: string; data: KindData<K> }[] = [];
  for (const e of await getCollection('experiments')) if (isKind(e.data, kind)) out.push({ id: e.id, data: e.data });
  return out;
}
