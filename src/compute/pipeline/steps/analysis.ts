// The neuron-analysis steps of a spec:
//   activations       — spatial-mean/max/argmax of every channel of the spec's layers over the clean reference set
//   neurons_<attack>  — per attack: fragility scores, top-neuron retention and per-group statistics, clean vs adversarial
//   polysemantic      — per layer: neurons strongly active for distant WordNet groups, and activation histograms
// Each depends on the steps whose outputs it reads, and its key includes theirs.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { isUnder } from '../../analysis/class-groups.ts';
import { layerFragility } from '../../analysis/fragility.ts';
import { neuronHistograms } from '../../analysis/histogram.ts';
import { channelSpread, groupStats, type GroupStats } from '../../analysis/neuron-stats.ts';
import { layerPolysemanticity } from '../../analysis/polysemantic.ts';
import { recordActivations, type LayerActivations } from '../../analysis/record.ts';
import { hashFile } from '../../cache/hash.ts';
import { cellBox, receptiveFields, type ReceptiveField } from '../../analysis/receptive-field.ts';
import { mapShift, overlayPng, upsample } from '../../analysis/heatmap.ts';
import { quantile } from '../../numbers.ts';
import { hwcToChw, loadImage, toPng } from '../../io/image.ts';
import { CLASSIFIER_CODE, type Classifier } from '../../model/classifier.ts';
import { encodeNpy, parseNpy } from '../../io/npy.ts';
import type { CacheEntry } from '../../cache/store.ts';
import type { LabelledImage } from '../data.ts';
import {
  ACTIVATIONS_JSON, HISTOGRAMS_JSON, NEURONS_JSON, POLYSEMANTIC_JSON, TOP_IMAGES_JSON,
  type Activations, type Histograms, type NeuronsLayer, type PolysemanticLayer, type TopImages,
} from '../outputs/analysis.ts';
import { RESULTS_JSON } from '../outputs/attack.ts';
import { readJson, writeJson } from '../outputs/json-file.ts';
import type { Step } from '../step.ts';
import { ACTIVATIONS, POLYSEMANTIC, neuronsStepId } from '../step-ids.ts';
import type { StepEnv } from './attack.ts';

/** File-name-safe form of a layer name. */
const fileOf = (layer: string) => layer.replace(/[^\w.-]/g, '_');

export interface AnalysisEnv extends StepEnv {
  reference: readonly LabelledImage[];
  dataDir: string;
}

export async function analysisSteps(env: AnalysisEnv): Promise<Step[]> {
  const { spec } = env;
  if (spec.layers.length === 0) return [];
  const a = spec.analysis;
  const steps: Step[] = [];
  const code = [import.meta.filename, CLASSIFIER_CODE];
  const reference = await Promise.all(env.reference.map(async (im) => ({ name: im.name, sha256: await hashFile(im.path), label: im.label })));
  steps.push({
    id: ACTIVATIONS,
    kind: 'activations',
    params: { model: env.model, layers: spec.layers, images: reference, batch: a.batch },
    code,
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
  });

  const refLabels = env.reference.map((im) => im.label);
  /** The reference images of a class, or of the smallest configured WordNet group holding it when asked to pool. */
  const groupOf = (cls: number): { name: string; rows: number[] } => {
    const wnid = env.classes[cls].wnid;
    const pools = Object.entries(a.groups).filter(([, g]) => isUnder(wnid, g));
    const rowsOf = (pred: (k: number) => boolean) => refLabels.flatMap((k, i) => (pred(k) ? [i] : []));
    let best = { name: env.classes[cls].name, rows: rowsOf((k) => k === cls) };
    for (const [name, g] of pools) {
      const rows = rowsOf((k) => isUnder(env.classes[k].wnid, g));
      if (best.rows.length < 2 || rows.length < best.rows.length) best = { name: `${name} (WordNet ${g})`, rows };
    }
    return best;
  };

  for (const attackId of Object.keys(spec.attacks)) {
    const id = neuronsStepId(attackId);
    steps.push({
      id,
      kind: 'neurons',
      needs: [attackId, ACTIVATIONS],
      params: { model: env.model, layers: spec.layers, top_fraction: a.top_fraction, z: a.fragile_z, groups: a.groups, batch: a.batch },
      code,
      async compute(ctx) {
        const classifier = await env.classifier();
        const attack = ctx.dependency(attackId);
        const acts = ctx.dependency(ACTIVATIONS);
        const results = await readJson(RESULTS_JSON, attack, id, attackId);
        const rows = results.rows;
        const [, h, w] = classifier.inputDims;
        const cleanPixels = await Promise.all(rows.map((r) => loadImage(path.resolve(env.dataDir, r.file), classifier.preprocess)));
        const advPixels = await Promise.all(rows.map(async (r) => hwcToChw(await sharp(attack.file(r.images.adversarial)).removeAlpha().raw().toBuffer(), h, w)));
        const clean = await recordActivations(classifier, rows.length, async (i) => cleanPixels[i], spec.layers, a.batch);
        const adversarial = await recordActivations(classifier, rows.length, async (i) => advPixels[i], spec.layers, a.batch);
        const fields = receptiveFields(classifier.model.prepared);
        const files = new Map<string, Uint8Array>();
        const target = results.params.target;
        const layers: Record<string, NeuronsLayer> = {};
        for (const [li, layer] of spec.layers.entries()) {
          ctx.progress(li, spec.layers.length, layer);
          const ref = await referenceMeans(acts, layer);
          const { std } = channelSpread(ref.values, ref.channels);
          // A target class without reference images has no clean statistics to set beside the attack's.
          const group = target === null ? undefined : groupOf(target);
          const targetGroup = group?.rows.length ? group : undefined;
          const c = clean.get(layer)!;
          const x = adversarial.get(layer)!;
          const fragility = layerFragility({
            layer, channels: c.channels, clean: c.mean, adversarial: x.mean, sigma: std,
            targetClean: targetGroup ? pickRows(ref.values, ref.channels, targetGroup.rows) : undefined,
            z: a.fragile_z, topFraction: a.top_fraction,
          });
          const all = [...Array(c.images).keys()];
          const heatmaps = await fragileHeatmaps({ classifier, layer, channels: fragility.ranking.slice(0, HEATMAP_NEURONS).map((r) => r.channel), cleanPixels, advPixels, files,
            field: fields.get(classifier.model.layers.find((l) => l.name === layer)!.tensor)!, scale: quantile(await referenceMaxima(acts, layer), 0.99), stems: rows.map((r) => path.basename(r.file).replace(/\.[^.]+$/, '')) });
          layers[layer] = {
            heatmaps,
            fragility,
            stats: {
              source_clean: statsJson('source images, clean', groupStats(c.mean, c.channels, all)),
              source_adversarial: statsJson('source images, adversarial', groupStats(x.mean, x.channels, all)),
              ...(targetGroup ? { target_clean: statsJson(`target: ${targetGroup.name}, clean reference images`, groupStats(ref.values, ref.channels, targetGroup.rows)) } : {}),
            },
          };
        }
        const summary = Object.fromEntries(Object.entries(layers).map(([layer, { fragility: f }]) => [layer,
          { drops: f.drops, spikes: f.spikes, fragile_fraction: f.fragile_fraction, mean_abs_score: f.mean_abs_score, topk_retained: f.topk_retained, topk_target_overlap: f.topk_target_overlap }]));
        files.set(NEURONS_JSON.file, writeJson(NEURONS_JSON, id, { attack: attackId, n: rows.length, summary, layers }));
        return files;
      },
    });
  }

  steps.push({
    id: POLYSEMANTIC,
    kind: 'polysemantic',
    needs: [ACTIVATIONS],
    params: { model: env.model, layers: spec.layers, percentile: a.percentile },
    code,
    async compute(ctx) {
      const classifier = await env.classifier();
      const acts = ctx.dependency(ACTIVATIONS);
      const fields = receptiveFields(classifier.model.prepared);
      const layers: Record<string, PolysemanticLayer> = {};
      const histograms: Histograms = {};
      const topImages: TopImages = {};
      const files = new Map<string, Uint8Array>();
      for (const [li, layer] of spec.layers.entries()) {
        ctx.progress(li, spec.layers.length, layer);
        const ref = await referenceMeans(acts, layer);
        const poly = layerPolysemanticity({ layer, channels: ref.channels, values: ref.values, labels: refLabels, classes: env.classes, percentile: a.percentile });
        const info = classifier.model.layers.find((l) => l.name === layer)!;
        const patches = await topPatches({
          layer, channels: poly.ranking.slice(0, PATCH_NEURONS).map((r) => r.channel), acts, field: fields.get(info.tensor)!, spatial: [info.dims[2] ?? 1, info.dims[3] ?? 1],
          images: env.reference, classes: env.classes, preprocess: classifier.preprocess, files,
        });
        layers[layer] = { ...poly, patches, ranking: poly.ranking.map((r) => ({ ...r, strong: r.strong.map((s) => ({ ...s, file: env.reference[s.image].name })) })) };
        histograms[layer] = neuronHistograms(ref.values, ref.channels);
        topImages[layer] = topImagesPerChannel(ref.values, ref.channels, TOP_IMAGES).map((rows) => rows.map(({ image, value }) => ({
          image: env.reference[image].name, class: env.reference[image].label, name: env.classes[env.reference[image].label].name, activation: value,
        })));
      }
      files.set(POLYSEMANTIC_JSON.file, writeJson(POLYSEMANTIC_JSON, POLYSEMANTIC, { n: env.reference.length, layers }));
      files.set(HISTOGRAMS_JSON.file, writeJson(HISTOGRAMS_JSON, POLYSEMANTIC, histograms));
      files.set(TOP_IMAGES_JSON.file, writeJson(TOP_IMAGES_JSON, POLYSEMANTIC, topImages));
      return files;
    },
  });
  return steps;
}

/** Reference images per channel whose classes a neuron card lists ("fires for"). */
const TOP_IMAGES = 5;

/** Per channel, the `k` reference images with the largest spatial-mean activation, largest first. */
function topImagesPerChannel(values: Float32Array /* [N,C] */, channels: number, k: number): { image: number; value: number }[][] {
  const n = values.length / channels;
  return Array.from({ length: channels }, (_, c) => {
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[b * channels + c] - values[a * channels + c] || a - b);
    return order.slice(0, k).map((i) => ({ image: i, value: values[i * channels + c] }));
  });
}

/** Neurons per layer and attack that get heatmaps (the most fragile), and per layer that get top patches. */
const HEATMAP_NEURONS = 3;
const PATCH_NEURONS = 3;
const PATCHES = 8;

async function referenceMaxima(entry: CacheEntry, layer: string): Promise<Float32Array> {
  return parseNpy(await readFile(entry.file(`${fileOf(layer)}.max.npy`))).data as Float32Array;
}

/** Clean and adversarial maps of the given neurons on each attack image, overlaid, with the shift numbers. */
async function fragileHeatmaps(o: {
  classifier: Classifier; layer: string; channels: number[]; cleanPixels: Float32Array[]; advPixels: Float32Array[];
  files: Map<string, Uint8Array>; field: ReceptiveField; scale: number; stems: string[];
}): Promise<NeuronsLayer['heatmaps']> {
  const [, h, w] = o.classifier.inputDims;
  const per = 3 * h * w;
  const maps = async (pixels: Float32Array[]) => {
    const x = new Float32Array(pixels.length * per);
    pixels.forEach((p, i) => x.set(p, i * per));
    return (await o.classifier.model.forward(x, [o.layer])).activations.get(o.layer)!;
  };
  const clean = await maps(o.cleanPixels);
  const adv = await maps(o.advPixels);
  const [, channels, mh, mw] = clean.dims;
  const area = mh * mw;
  const out: NeuronsLayer['heatmaps']['neurons'] = [];
  for (const ch of o.channels) {
    for (let i = 0; i < o.cleanPixels.length; i++) {
      const at = (i * channels + ch) * area;
      const cm = clean.data.subarray(at, at + area);
      const am = adv.data.subarray(at, at + area);
      const names = { clean: `${fileOf(o.layer)}_${ch}_${o.stems[i]}.clean.png`, adversarial: `${fileOf(o.layer)}_${ch}_${o.stems[i]}.adversarial.png` };
      o.files.set(names.clean, await overlayPng(o.cleanPixels[i], upsample(cm, mh, mw, o.field, h, w), h, w, o.scale));
      o.files.set(names.adversarial, await overlayPng(o.advPixels[i], upsample(am, mh, mw, o.field, h, w), h, w, o.scale));
      out.push({ channel: ch, image: o.stems[i], images: names, ...mapShift(cm, am, mh, mw, o.field) });
    }
  }
  return { scale: o.scale, neurons: out };
}

/** For each neuron, crops of the reference images where it reaches its highest spatial maxima, by receptive field. */
async function topPatches(o: {
  layer: string; channels: number[]; acts: CacheEntry; field: ReceptiveField; spatial: [number, number];
  images: readonly LabelledImage[]; classes: StepEnv['classes']; preprocess: { resize: number; crop: number };
  files: Map<string, Uint8Array>;
}): Promise<PolysemanticLayer['patches']> {
  const max = await referenceMaxima(o.acts, o.layer);
  const argmax = parseNpy(await readFile(o.acts.file(`${fileOf(o.layer)}.argmax.npy`))).data as Int32Array;
  const channels = max.length / o.images.length;
  const crop = o.preprocess.crop;
  const out: PolysemanticLayer['patches'] = [];
  for (const ch of o.channels) {
    const order = [...o.images.keys()].sort((a, b) => max[b * channels + ch] - max[a * channels + ch] || a - b).slice(0, PATCHES);
    const patches: PolysemanticLayer['patches'][number]['patches'] = [];
    for (const [rank, i] of order.entries()) {
      const cell = argmax[i * channels + ch];
      const y = Math.floor(cell / o.spatial[1]);
      const x = cell % o.spatial[1];
      const [top, left, bottom, right] = cellBox(o.field, y, x, crop, crop);
      const pixels = await loadImage(o.images[i].path, o.preprocess);
      const file = `${fileOf(o.layer)}_${ch}_patch${rank}.png`;
      o.files.set(file, await sharp(await toPng(pixels, crop, crop)).extract({ left, top, width: right - left, height: bottom - top }).resize(64, 64, { fit: 'fill' }).png().toBuffer());
      patches.push({ rank, image: o.images[i].name, class: o.images[i].label, name: o.classes[o.images[i].label].name, activation: max[i * channels + ch], cell: [y, x], box: [top, left, bottom, right], file });
    }
    out.push({ channel: ch, patches });
  }
  return out;
}

async function referenceMeans(entry: CacheEntry, layer: string): Promise<{ values: Float32Array; channels: number }> {
  const a = parseNpy(await readFile(entry.file(`${fileOf(layer)}.mean.npy`)));
  return { values: a.data as Float32Array, channels: a.shape[1] };
}

function pickRows(values: ArrayLike<number>, channels: number, rows: readonly number[]): Float32Array {
  const out = new Float32Array(rows.length * channels);
  rows.forEach((r, i) => { for (let c = 0; c < channels; c++) out[i * channels + c] = values[r * channels + c]; });
  return out;
}

function statsJson(group: string, s: GroupStats) {
  return { group, n: s.n, mean: Array.from(s.mean), median: Array.from(s.median), max: Array.from(s.max) };
}

export type { LayerActivations };
