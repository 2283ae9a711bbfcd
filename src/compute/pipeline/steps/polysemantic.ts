// The `polysemantic` step: per layer, neurons whose strongest reference images form two WordNet groups that are each
// enriched beyond chance and far apart, with a permutation p (class labels shuffled, activations kept) and
// Benjamini–Hochberg q (analysis/polysemantic-calibrated.ts); their top activating patches; and every neuron's
// activation histogram and top images (for the neuron cards).
import sharp from 'sharp';
import { neuronHistograms } from '../../analysis/histogram.ts';
import {
  calibratedPolysemanticity, DEFAULT_FAR_DEPTH, DEFAULT_MIN_GROUP, type CalibratedLayerPolysemanticity,
} from '../../analysis/polysemantic-calibrated.ts';
import { cellBox, receptiveFields, type ReceptiveField } from '../../analysis/receptive-field.ts';
import type { CacheEntry } from '../../cache/store.ts';
import { loadImage, toPng } from '../../io/image.ts';
import { CLASSIFIER_CODE } from '../../model/classifier.ts';
import { createRng } from '../../random.ts';
import type { LabelledImage } from '../data.ts';
import { HISTOGRAMS_JSON, POLYSEMANTIC_JSON, TOP_IMAGES_JSON, type Histograms, type PolysemanticLayer, type TopImages } from '../outputs/analysis.ts';
import { writeJson } from '../outputs/json-file.ts';
import type { Step } from '../step.ts';
import { ACTIVATIONS, POLYSEMANTIC } from '../step-ids.ts';
import { fileOf, referenceArgmax, referenceMaxima, referenceMeans, type AnalysisEnv } from './activations.ts';
import type { StepEnv } from './attack.ts';

/** Neurons listed per layer (most polysemantic first). */
const RANKED = 20;

/**
 * Strong images per neuron: the share above `percentile` of the reference set, at least 10 (fewer cannot hold two
 * groups of 3 and leave room for chance) and at most 50 (beyond that the strong set is a neuron's bulk, not its top).
 */
function strongImages(n: number, percentile: number): number | undefined {
  const top = Math.min(50, Math.max(10, Math.round((n * (100 - percentile)) / 100)));
  // Two groups of DEFAULT_MIN_GROUP images must fit in the strong set, and the strong set must leave images out.
  return top < n && top >= 2 * DEFAULT_MIN_GROUP ? top : undefined;
}

/** A reference set too small for strong sets: every neuron untested, none polysemantic. */
function untestable(channels: number, n: number, fdr: number): CalibratedLayerPolysemanticity {
  return {
    n, channels, top: 0, fdr, permutations: 0, smallest_p: 1, far_depth: DEFAULT_FAR_DEPTH, min_group: DEFAULT_MIN_GROUP, testable: 0, count: 0,
    neurons: Array.from({ length: channels }, (_, channel) => ({ channel, score: null, p: null, q: null, polysemantic: false, threshold: null, strong: [], groups: [] })),
  };
}

/** Neurons per layer that get top patches, and patches each. */
const PATCH_NEURONS = 3;
const PATCHES = 8;

export function polysemanticStep(env: AnalysisEnv): Step {
  const { spec } = env;
  const a = spec.analysis;
  const refLabels = env.reference.map((im) => im.label);
  return {
    id: POLYSEMANTIC,
    kind: 'polysemantic',
    needs: [ACTIVATIONS],
    // The label shuffles are drawn from the spec's seed.
    params: { model: env.model, layers: spec.layers, percentile: a.percentile, fdr: a.fdr, seed: spec.seed },
    code: [import.meta.filename, CLASSIFIER_CODE],
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
        const top = strongImages(env.reference.length, a.percentile);
        const poly = top === undefined
          ? untestable(ref.channels, env.reference.length, a.fdr)
          : calibratedPolysemanticity({
            channels: ref.channels, values: ref.values, labels: refLabels, classes: env.classes, fdr: a.fdr, top,
            seed: createRng(spec.seed).fork(`polysemantic/${layer}`).uniformInt(0, 2 ** 31 - 1),
          });
        const ranked = poly.neurons
          .filter((x) => x.p !== null)
          .sort((x, y) => x.q! - y.q! || y.score! - x.score! || x.channel - y.channel)
          .slice(0, RANKED);
        const ranking = ranked.map((x) => ({
          channel: x.channel, score: x.score!, p: x.p!, q: x.q!, polysemantic: x.polysemantic, threshold: x.threshold!, groups: x.groups,
          strong: x.strong.map((i) => ({ image: i, file: env.reference[i].name, class: refLabels[i], name: env.classes[refLabels[i]].name, activation: ref.values[i * ref.channels + x.channel] })),
        }));
        const info = classifier.model.layers.find((l) => l.name === layer)!;
        const patches = await topPatches({
          layer, channels: ranking.slice(0, PATCH_NEURONS).map((r) => r.channel), acts, field: fields.get(info.tensor)!, spatial: [info.dims[2] ?? 1, info.dims[3] ?? 1],
          images: env.reference, classes: env.classes, preprocess: classifier.preprocess, files,
        });
        layers[layer] = {
          layer, n: poly.n, top: poly.top, fdr: poly.fdr, permutations: poly.permutations, smallest_p: poly.smallest_p,
          testable: poly.testable, count: poly.count, ranking,
          score: poly.neurons.map((x) => x.score), p: poly.neurons.map((x) => x.p), q: poly.neurons.map((x) => x.q),
          polysemantic: poly.neurons.map((x) => x.polysemantic), patches,
        };
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
  };
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

/** For each neuron, crops of the reference images where it reaches its highest spatial maxima, by receptive field. */
async function topPatches(o: {
  layer: string; channels: number[]; acts: CacheEntry; field: ReceptiveField; spatial: [number, number];
  images: readonly LabelledImage[]; classes: StepEnv['classes']; preprocess: { resize: number; crop: number };
  files: Map<string, Uint8Array>;
}): Promise<PolysemanticLayer['patches']> {
  const max = await referenceMaxima(o.acts, o.layer);
  const argmax = await referenceArgmax(o.acts, o.layer);
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
