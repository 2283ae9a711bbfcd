// The `activations` step: spatial-mean, -max and -argmax of every channel of the spec's layers over the clean
// reference set — the natural spread, percentiles and top patches the other analyses measure against — and the readers
// those analyses use for its .npy files.
import { readFile } from 'node:fs/promises';
import { recordActivations } from '../../analysis/record.ts';
import { hashFile } from '../../cache/hash.ts';
import type { CacheEntry } from '../../cache/store.ts';
import { loadImage } from '../../io/image.ts';
import { encodeNpy, parseNpy } from '../../io/npy.ts';
import { CLASSIFIER_CODE } from '../../model/classifier.ts';
import type { LabelledImage } from '../data.ts';
import { ACTIVATIONS_JSON, type Activations } from '../outputs/analysis.ts';
import { writeJson } from '../outputs/json-file.ts';
import type { Step } from '../step.ts';
import { ACTIVATIONS } from '../step-ids.ts';
import type { StepEnv } from './attack.ts';

export interface AnalysisEnv extends StepEnv {
  reference: readonly LabelledImage[];
  dataDir: string;
}

/** File-name-safe form of a layer name. */
export const fileOf = (layer: string) => layer.replace(/[^\w.-]/g, '_');

export async function activationsStep(env: AnalysisEnv): Promise<Step> {
  const { spec } = env;
  const a = spec.analysis;
  const reference = await Promise.all(env.reference.map(async (im) => ({ name: im.name, sha256: await hashFile(im.path), label: im.label })));
  return {
    id: ACTIVATIONS,
    kind: 'activations',
    params: { model: env.model, layers: spec.layers, images: reference, batch: a.batch },
    code: [import.meta.filename, CLASSIFIER_CODE],
    async compute(ctx) {
      const classifier = await env.classifier();
      const records = await recordActivations(classifier, env.reference.length, (i) => loadImage(env.reference[i].path, classifier.preprocess), spec.layers, a.batch,
        (done, total) => ctx.progress(done, total, `${done}/${total} images`));
      const files = new Map<string, Uint8Array>();
      const layers: Activations['layers'] = {};
      for (const [layer, r] of records) {
        files.set(`${fileOf(layer)}.mean.npy`, encodeNpy(r.mean, [r.images, r.channels]));
        files.set(`${fileOf(layer)}.max.npy`, encodeNpy(r.max, [r.images, r.channels]));
        files.set(`${fileOf(layer)}.argmax.npy`, encodeNpy(r.argmax, [r.images, r.channels]));
        layers[layer] = { file: fileOf(layer), channels: r.channels, spatial: r.spatial };
      }
      files.set(ACTIVATIONS_JSON.file, writeJson(ACTIVATIONS_JSON, ACTIVATIONS, { layers, images: env.reference.map((im) => ({ name: im.name, label: im.label })) }));
      return files;
    },
  };
}

/** Spatial means [N,C] of the reference images in one layer. */
export async function referenceMeans(entry: CacheEntry, layer: string): Promise<{ values: Float32Array; channels: number }> {
  const a = parseNpy(await readFile(entry.file(`${fileOf(layer)}.mean.npy`)));
  return { values: a.data as Float32Array, channels: a.shape[1] };
}

/** Spatial maxima [N,C] of the reference images in one layer. */
export async function referenceMaxima(entry: CacheEntry, layer: string): Promise<Float32Array> {
  return parseNpy(await readFile(entry.file(`${fileOf(layer)}.max.npy`))).data as Float32Array;
}

/** Arg-max cells [N,C] (row-major index into the layer's map) of the reference images in one layer. */
export async function referenceArgmax(entry: CacheEntry, layer: string): Promise<Int32Array> {
  return parseNpy(await readFile(entry.file(`${fileOf(layer)}.argmax.npy`))).data as Int32Array;
}
