// The `activations` step: spatial-mean, -max and -argmax of every channel of the spec's layers over the clean
// reference set — the natural spread, percentiles and top patches the other analyses measure against — and the readers
// those analyses use for its .npy files. In the same forward pass it takes σ of every channel of the `depth:` layers,
// so that the depth step does not run the reference set through the model a second time.
import { readFile } from 'node:fs/promises';
import { channelSpread } from '../../analysis/neuron-stats.ts';
import { recordLayers } from '../../analysis/record.ts';
import { hashFile } from '../../cache/hash.ts';
import type { CacheEntry } from '../../cache/store.ts';
import { loadImage } from '../../io/image.ts';
import { encodeNpy, parseNpy } from '../../io/npy.ts';
import { CLASSIFIER_CODE } from '../../model/classifier.ts';
import type { LabelledImage } from '../data.ts';
import { ACTIVATIONS_JSON, type Activations, type DepthSpread } from '../outputs/analysis.ts';
import { readJson, writeJson } from '../outputs/json-file.ts';
import { computeInOnePiece, type Sharding, type Step } from '../step.ts';
import { ACTIVATIONS } from '../step-ids.ts';
import type { StepEnv } from './attack.ts';
import { alignmentParams, depthLayers, type AlignTo } from './depth-layers.ts';

export interface AnalysisEnv extends StepEnv {
  reference: readonly LabelledImage[];
  dataDir: string;
  /** a compared model's: its depth runs through the main model's layers (depth-layers.ts) */
  alignTo?: AlignTo;
}

/** File-name-safe form of a layer name. */
export const fileOf = (layer: string) => layer.replace(/[^\w.-]/g, '_');

export async function activationsStep(env: AnalysisEnv): Promise<Step> {
  const { spec } = env;
  const a = spec.analysis;
  const reference = await Promise.all(env.reference.map(async (im) => ({ name: im.name, sha256: await hashFile(im.path), label: im.label })));
  const sharding: Sharding<ActivationsShard> = {
    unit: 'images',
    // A whole number of batches (a batch is one forward pass; the same batches as one run), about 256 images: a minute
    // of ResNet-50 on a 2-core CPU, and a result of a few MB per layer to send back.
    size: 256,
    async plan(size, ctx) {
      // The depth layers are found here, once, and handed to every shard: a compared model's are found by their
      // activations, and two machines must not disagree about a close call.
      const { layers: depth, aligned } = spec.depth ? await depthLayers(await env.classifier(), spec, env.reference, env.alignTo, (message) => ctx.progress(0, 1, message)).catch((err: unknown) => {
        throw new Error(`spec depth: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }) : { layers: [], aligned: null };
      const per = Number.isFinite(size) ? Math.max(1, Math.ceil(size / a.batch)) * a.batch : env.reference.length;
      const out: { shard: ActivationsShard; units: number }[] = [];
      for (let first = 0; first < env.reference.length; first += per) {
        const names = env.reference.slice(first, first + per).map((im) => im.name);
        out.push({ shard: { first, names, depth, aligned }, units: names.length });
      }
      return out;
    },
    async compute({ first, names, depth }, progress) {
      const part = env.reference.slice(first, first + names.length);
      if (part.map((im) => im.name).join('\n') !== names.join('\n')) throw new Error(`internal: ${ACTIVATIONS} shard from image ${first} names other images than this data directory's`);
      const classifier = await env.classifier();
      const records = await recordLayers(classifier, part.length, (i) => loadImage(part[i].path, classifier.preprocess), { layers: spec.layers, means: depth }, a.batch,
        (done, total) => progress(done, total, `${done}/${total} images`));
      const files = new Map<string, Uint8Array>();
      const layers: Activations['layers'] = {};
      for (const [layer, r] of records.stats) {
        files.set(`${fileOf(layer)}.mean.npy`, encodeNpy(r.mean, [r.images, r.channels]));
        files.set(`${fileOf(layer)}.max.npy`, encodeNpy(r.max, [r.images, r.channels]));
        files.set(`${fileOf(layer)}.argmax.npy`, encodeNpy(r.argmax, [r.images, r.channels]));
        layers[layer] = { file: fileOf(layer), channels: r.channels, spatial: r.spatial };
      }
      // σ needs every image: a shard returns its rows of means, and the merge takes σ over all of them in image order.
      const spread: DepthSpread['layers'] = depth.map((layer) => ({ layer, file: fileOf(layer), channels: records.means.get(layer)!.channels }));
      for (const { layer, file, channels } of spread) files.set(`${file}${SHARD_MEANS}`, encodeNpy(records.means.get(layer)!.values, [part.length, channels]));
      files.set(SHARD_LAYERS, new TextEncoder().encode(JSON.stringify({ layers, spread })));
      return files;
    },
    async merge(shards, parts) {
      const { layers, spread } = JSON.parse(new TextDecoder().decode(parts[0].get(SHARD_LAYERS))) as { layers: Activations['layers']; spread: DepthSpread['layers'] };
      const files = new Map<string, Uint8Array>();
      const n = env.reference.length;
      // The shards' rows, in image order: the [N,C] array one run over all images records.
      const rows = (name: string, channels: number, all: Float32Array | Int32Array) => {
        let at = 0;
        for (const p of parts) {
          const x = parseNpy(p.get(name)!, name).data as Float32Array | Int32Array;
          all.set(x, at);
          at += x.length;
        }
        if (at !== all.length) throw new Error(`internal: ${ACTIVATIONS} shards hold ${at / channels} images of ${n}`);
        return all;
      };
      for (const { file, channels } of Object.values(layers)) {
        for (const stat of ['mean', 'max', 'argmax'] as const) {
          const all = rows(`${file}.${stat}.npy`, channels, stat === 'argmax' ? new Int32Array(n * channels) : new Float32Array(n * channels));
          files.set(`${file}.${stat}.npy`, encodeNpy(all, [n, channels]));
        }
      }
      for (const { file, channels } of spread) {
        const { std } = channelSpread(rows(`${file}${SHARD_MEANS}`, channels, new Float32Array(n * channels)), channels);
        files.set(`${file}.sigma.npy`, encodeNpy(std, [channels]));
      }
      const depth: Activations['depth'] = spec.depth ? { layers: spread, aligned: shards[0].aligned } : null;
      files.set(ACTIVATIONS_JSON.file, writeJson(ACTIVATIONS_JSON, ACTIVATIONS, { layers, depth, images: env.reference.map((im) => ({ name: im.name, label: im.label })) }));
      return files;
    },
  };
  return {
    id: ACTIVATIONS,
    kind: 'activations',
    params: { model: env.model, layers: spec.layers, images: reference, batch: a.batch, ...(spec.depth ? { depth: spec.depth, ...alignmentParams(env.alignTo) } : {}) },
    code: [import.meta.filename, CLASSIFIER_CODE],
    shards: sharding as Sharding,
    compute: (ctx) => computeInOnePiece(sharding, ctx),
  };
}

/**
 * An activations shard: the reference images from index `first`, named to check a worker has the same ones, the
 * depth layers whose spatial means it records, and the plan's alignment they came from (for the merge to write).
 */
interface ActivationsShard {
  first: number;
  names: string[];
  depth: string[];
  aligned: DepthSpread['aligned'];
}

/** The shard's layer shapes (its other files are the layers' [n,C] arrays). */
const SHARD_LAYERS = 'layers.json';
/** Suffix of a shard's [n,C] spatial means of a `depth:` layer, which the merge reduces to σ. */
const SHARD_MEANS = '.depth-mean.npy';

/** Spatial means [N,C] of the reference images in one layer. */
export async function referenceMeans(entry: CacheEntry, layer: string): Promise<{ values: Float32Array; channels: number }> {
  const a = parseNpy(await readFile(entry.file(`${fileOf(layer)}.mean.npy`)));
  return { values: a.data as Float32Array, channels: a.shape[1] };
}

/** Spatial maxima [N,C] of the reference images in one layer. */
export async function referenceMaxima(entry: CacheEntry, layer: string): Promise<Float32Array> {
  return parseNpy(await readFile(entry.file(`${fileOf(layer)}.max.npy`))).data as Float32Array;
}

/** The `depth:` layers this step recorded, in order, with σ [C] of each channel's spatial mean over the reference images. */
export async function depthSpread(entry: CacheEntry, reader: string): Promise<{ layers: string[]; sigma: Float64Array[]; aligned: DepthSpread['aligned'] }> {
  const { depth } = await readJson(ACTIVATIONS_JSON, entry, reader, ACTIVATIONS);
  if (!depth) throw new Error(`internal: step ${reader}: ${ACTIVATIONS} took no depth layers`);
  const sigma = await Promise.all(depth.layers.map(async ({ file }) => parseNpy(await readFile(entry.file(`${file}.sigma.npy`))).data as Float64Array));
  return { layers: depth.layers.map((l) => l.layer), sigma, aligned: depth.aligned };
}

/** Arg-max cells [N,C] (row-major index into the layer's map) of the reference images in one layer. */
export async function referenceArgmax(entry: CacheEntry, layer: string): Promise<Int32Array> {
  return parseNpy(await readFile(entry.file(`${fileOf(layer)}.argmax.npy`))).data as Int32Array;
}
