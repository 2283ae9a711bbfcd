// The `atlas` step: for every neuron of the spec's layers, its top reference photos, a sprite of its top activating
// patches (among the photos a public article may show) and its classes ranked by AUROC — what a neuron's page in the
// atlas shows besides the fragility and polysemanticity the other steps compute. Patches are cut from each photo once
// per layer, so the cost is one decode per photo, not per neuron.
import path from 'node:path';
import sharp from 'sharp';
import { cellBox, receptiveFields } from '../../analysis/receptive-field.ts';
import { labelNeurons } from '../../analysis/neuron-labels.ts';
import { classAurocs, columnMidranks } from '../../analysis/selectivity.ts';
import { largest } from '../../numbers.ts';
import { createRng } from '../../random.ts';
import { chwToHwc, loadImage } from '../../io/image.ts';
import { CLASSIFIER_CODE } from '../../model/classifier.ts';
import { ATLAS_JSON, type AtlasLayer, type AtlasNeuron } from '../outputs/atlas.ts';
import { writeJson } from '../outputs/json-file.ts';
import type { Step } from '../step.ts';
import { ACTIVATIONS, ATLAS } from '../step-ids.ts';
import { fileOf, referenceArgmax, referenceMaxima, referenceMeans, type AnalysisEnv } from './activations.ts';

/** Top photos and patches per neuron, as the neuron page shows them (a 4 × 4 grid). */
export const ATLAS_TOP = 16;
const COLUMNS = 4;
/** Side of a patch tile in px: the size the page shows it at. */
const PATCH = 64;
/** Classes listed per neuron. */
const CLASSES = 8;

const round = (v: number) => Number(v.toPrecision(4));

export function atlasStep(env: AnalysisEnv): Step {
  const { spec } = env;
  // A public article shows only photographs whose labels.json carries a licence.
  const publishable = env.reference.map((im) => spec.private || typeof im.meta.license === 'string');
  const labels = env.reference.map((im) => im.label);
  // The reference set's source folders: neuron labels shuffle classes only among photos of the same source.
  const folders = env.reference.map((im) => path.dirname(im.name));
  const distinct = [...new Set(folders)];
  const sources = Int32Array.from(folders, (f) => distinct.indexOf(f));
  return {
    id: ATLAS,
    kind: 'atlas',
    needs: [ACTIVATIONS],
    params: {
      model: env.model, layers: spec.layers, private: spec.private, publishable, seed: spec.seed,
      labels: { permutations: spec.analysis.label_permutations, min_images: spec.analysis.label_min_images, fdr: spec.analysis.fdr },
    },
    code: [import.meta.filename, CLASSIFIER_CODE],
    async compute(ctx) {
      const classifier = await env.classifier();
      const acts = ctx.dependency(ACTIVATIONS);
      const fields = receptiveFields(classifier.model.prepared);
      const crop = classifier.preprocess.crop;
      const files = new Map<string, Uint8Array>();
      const layers: Record<string, AtlasLayer> = {};
      const shown = [...publishable.keys()].filter((i) => publishable[i]);
      const classSizes = new Int32Array(env.classes.length);
      for (const k of labels) classSizes[k]++;
      for (const [li, layer] of spec.layers.entries()) {
        ctx.progress(li, spec.layers.length, layer);
        const { values: means, channels } = await referenceMeans(acts, layer);
        const max = await referenceMaxima(acts, layer);
        const argmax = await referenceArgmax(acts, layer);
        const info = classifier.model.layers.find((l) => l.name === layer)!;
        const field = fields.get(info.tensor)!;
        // argmax is y · W + x in the layer's map
        const width = info.dims[3] ?? 1;
        const aurocs = classAurocs(columnMidranks(means, channels), labels, env.classes.length);
        ctx.progress(li, spec.layers.length, `${layer}: labelling ${channels} neurons against shuffled labels`);
        const named = labelNeurons({
          values: means, channels, photoWnids: labels.map((k) => env.classes[k].wnid), rng: createRng(spec.seed).fork(`labels:${layer}`), strata: sources,
          permutations: spec.analysis.label_permutations, minImages: spec.analysis.label_min_images, fdr: spec.analysis.fdr,
        });
        const n = env.reference.length;
        const allPhotos = Int32Array.from({ length: n }, (_, i) => i);
        // Which tiles each photo gives: photo → [(channel, rank)], so every photo is decoded once per layer.
        const wanted = new Map<number, { channel: number; rank: number }[]>();
        const neurons: AtlasNeuron[] = [];
        for (let c = 0; c < channels; c++) {
          const byMean = largest(allPhotos, (i) => means[i * channels + c], ATLAS_TOP);
          const byMax = largest(shown, (i) => max[i * channels + c], ATLAS_TOP);
          const patches = byMax.map((i, rank) => {
            const cell = argmax[i * channels + c];
            const y = Math.floor(cell / width);
            const x = cell % width;
            (wanted.get(i) ?? wanted.set(i, []).get(i)!).push({ channel: c, rank });
            const im = env.reference[i];
            return { rank, image: im.name, class: im.label, name: env.classes[im.label].name, activation: round(max[i * channels + c]), box: cellBox(field, y, x, crop, crop) };
          });
          const classes = [...Array(env.classes.length).keys()]
            .filter((k) => classSizes[k] >= 2 && Number.isFinite(aurocs[k * channels + c]))
            .sort((a, b) => aurocs[b * channels + c] - aurocs[a * channels + c] || a - b).slice(0, CLASSES)
            .map((k) => {
              let sum = 0;
              for (let i = 0; i < n; i++) if (labels[i] === k) sum += means[i * channels + c];
              return { class: k, name: env.classes[k].name, n: classSizes[k], mean: round(sum / classSizes[k]), auroc: round(aurocs[k * channels + c]) };
            });
          const l = named.labels[c];
          neurons.push({
            channel: c,
            label: { ...l, auroc: round(l.auroc), z: round(l.z), p: round(l.p), q: round(l.q) },
            top_images: byMean.map((i) => ({ image: env.reference[i].name, class: labels[i], name: env.classes[labels[i]].name, activation: round(means[i * channels + c]), publishable: publishable[i] })),
            patches,
            sprite: patches.length ? `${fileOf(layer)}_${c}.patches.png` : null,
            thumb: patches.length ? `${fileOf(layer)}_${c}.thumb.png` : null,
            classes,
          });
        }
        // Tiles, raw RGB, per channel and rank.
        const tiles = new Map<number, Buffer[]>();
        let done = 0;
        // sharp runs on libuv's threads: several photos and tiles in flight keep both cores busy, where awaiting one
        // tile at a time left them idle between calls. Each tile lands in its own slot, so the order of completion
        // does not matter.
        await inGroups([...wanted].sort((a, b) => a[0] - b[0]), SHARP_IN_FLIGHT, async ([i, uses]) => {
          const rgb = chwToHwc(await loadImage(env.reference[i].path, classifier.preprocess), crop, crop);
          // Channels whose maximum lies in the same cell share the patch (in a late layer every receptive field is
          // the whole crop): each box is cut once.
          const tileOfBox = new Map<string, Promise<Buffer>>();
          await Promise.all(uses.map(async ({ channel, rank }) => {
            const box = neurons[channel].patches[rank].box;
            const key = box.join(',');
            let tile = tileOfBox.get(key);
            if (!tile) {
              const [top, left, bottom, right] = box;
              tile = sharp(rgb, { raw: { width: crop, height: crop, channels: 3 } })
                .extract({ left, top, width: right - left, height: bottom - top }).resize(PATCH, PATCH, { fit: 'fill' }).raw().toBuffer();
              tileOfBox.set(key, tile);
            }
            (tiles.get(channel) ?? tiles.set(channel, []).get(channel)!)[rank] = await tile;
          }));
          if (++done % 50 === 0) ctx.progress(done, wanted.size, `${layer}: ${done}/${wanted.size} photos cut`);
        });
        const drawn = neurons.filter((neuron) => tiles.has(neuron.channel) && neuron.sprite && neuron.thumb);
        const pngs = new Map<AtlasNeuron, [Buffer, Buffer]>();
        await inGroups(drawn, SHARP_IN_FLIGHT, async (neuron) => {
          const own = tiles.get(neuron.channel)!;
          pngs.set(neuron, await Promise.all([sprite(own), sharp(own[0], { raw: { width: PATCH, height: PATCH, channels: 3 } }).png().toBuffer()]));
        });
        // Files in neuron order, as one at a time would add them.
        for (const neuron of drawn) {
          const [spritePng, thumbPng] = pngs.get(neuron)!;
          files.set(neuron.sprite!, spritePng);
          files.set(neuron.thumb!, thumbPng);
        }
        const labelTest = { concepts: named.concepts.length, permutations: named.permutations, min_images: named.min_images, fdr: named.fdr };
        layers[layer] = { layer, channels, n, publishable: shown.length, patch_size: PATCH, columns: COLUMNS, labels: labelTest, neurons };
      }
      files.set(ATLAS_JSON.file, writeJson(ATLAS_JSON, ATLAS, { layers }));
      return files;
    },
  };
}

/** Images sharp works on at once: a few per core, enough to overlap its calls with each other and with JavaScript. */
const SHARP_IN_FLIGHT = 8;

/** fn over the items, `size` at a time, in order of start. */
async function inGroups<T>(items: readonly T[], size: number, fn: (item: T) => Promise<void>): Promise<void> {
  for (let start = 0; start < items.length; start += size) await Promise.all(items.slice(start, start + size).map(fn));
}

/** Tiles laid out COLUMNS wide, row by row, as one PNG. */
async function sprite(tiles: Buffer[]): Promise<Buffer> {
  const rows = Math.ceil(tiles.length / COLUMNS);
  const w = COLUMNS * PATCH;
  const out = Buffer.alloc(rows * PATCH * w * 3, 255);
  tiles.forEach((tile, k) => {
    const ox = (k % COLUMNS) * PATCH;
    const oy = Math.floor(k / COLUMNS) * PATCH;
    for (let y = 0; y < PATCH; y++) tile.copy(out, ((oy + y) * w + ox) * 3, y * PATCH * 3, (y + 1) * PATCH * 3);
  });
  return sharp(out, { raw: { width: w, height: rows * PATCH, channels: 3 } }).png().toBuffer();
}
