// The `featurevis` step: Lucent-style images that maximise the spec's neurons, rendered `batch` neurons at a time,
// with the two numbers that say whether they worked — each image's activation against the largest any reference
// photo reaches (feature visualization should beat every natural image) and its high-frequency energy against the
// photos' (structure, not checkerboard noise).
import { quantile } from '../../numbers.ts';
import { recordActivations } from '../../analysis/record.ts';
import { hashFile } from '../../cache/hash.ts';
import { neuronFileStem, parseChannel } from '../../featurevis/neuron-id.ts';
import { deviceRenderNeurons } from '../../featurevis/device-render.ts';
import { maxRenderSize, renderBytes } from '../../featurevis/render-memory.ts';
import { highFrequencyFraction } from '../../featurevis/spectrum.ts';
import { applySamplings, resize } from '../../featurevis/transform.ts';
import { loadImage, toPng } from '../../io/image.ts';
import { loadAhead } from '../../io/load-ahead.ts';
import { roundSignificant as round } from '../../numbers.ts';
import { CLASSIFIER_CODE } from '../../model/classifier.ts';
import { findLayer } from '../../onnx/layers.ts';
import { createRng } from '../../random.ts';
import type { LabelledImage } from '../data.ts';
import { CURVES_JSON, FEATUREVIS_JSON, type RenderedNeuron } from '../outputs/featurevis.ts';
import { NEURONS_JSON, POLYSEMANTIC_JSON } from '../outputs/analysis.ts';
import { readJson, writeJson } from '../outputs/json-file.ts';
import type { ExperimentSpec } from '../spec.ts';
import { computeInOnePiece, type Sharding, type Step, type StepContext } from '../step.ts';
import { ACTIVATIONS, FEATUREVIS, POLYSEMANTIC, neuronsStepId } from '../step-ids.ts';
import { referenceMeans } from './activations.ts';
import type { StepEnv } from './attack.ts';

export async function featurevisSteps(env: StepEnv & { reference: readonly LabelledImage[] }): Promise<Step[]> {
  const fv = env.spec.featurevis;
  if (!fv) return [];
  const named = fv.neurons.map(parseChannel);
  // Refused when the plan is made, so a dry run says it, rather than an allocation failure after the attacks.
  const perBatch = Math.max(1, Math.min(fv.batch, named.length + fv.choose.reduce((n, c) => n + c.top, 0)));
  const largest = maxRenderSize(perBatch);
  if (fv.size > largest) {
    throw new Error(`featurevis.size ${fv.size}: ${perBatch} image(s) of ${fv.size}×${fv.size} px at a time need about ${Math.round(renderBytes(perBatch, fv.size) / 2 ** 30)} GiB while rendering; this machine's memory holds at most size ${largest}`);
  }
  // The reference photos' spatial means in the analysed layers are the activations step's (chosen neurons always lie
  // there, named ones may); only a neuron of another layer makes this step run the photos through the model itself.
  const recorded = new Set(fv.choose.length || named.some((n) => env.spec.layers.includes(n.layer)) ? env.spec.layers : []);
  const needs = [...new Set([...(recorded.size ? [ACTIVATIONS] : []), ...fv.choose.map((c) => (c.ranking === 'fragile' ? neuronsStepId(c.attack) : POLYSEMANTIC))])];
  const reference = await Promise.all(env.reference.map(async (im) => ({ name: im.name, sha256: await hashFile(im.path) })));
  const sharding: Sharding<FeaturevisShard> = {
    unit: 'neurons',
    // One render batch: the smallest part whose result does not depend on where the step was cut (each batch draws its
    // own seed), and minutes of work per job on a GPU, a few on a CPU.
    size: fv.batch,
    async plan(size, ctx) {
      const classifier = await env.classifier();
      const targets = await chooseNeurons(named, fv.choose, ctx);
      for (const t of targets) {
        const layer = findLayer(classifier.model.layers, t.layer);
        if (!(t.channel < (layer.dims[1] ?? 0))) throw new Error(`featurevis: channel ${t.channel} of '${t.layer}' is out of range (it has ${layer.dims[1]})`);
      }
      // Every shard records all the step's layers, as the whole run does, so the graph that measures a neuron is the same.
      const layers = [...new Set(targets.map((t) => t.layer))];
      // Shards start on batch boundaries: a batch's seed comes from its neurons, so cutting inside one would change it.
      const per = Number.isFinite(size) ? Math.max(1, Math.ceil(size / fv.batch)) * fv.batch : targets.length;
      const out: { shard: FeaturevisShard; units: number }[] = [];
      for (let start = 0; start < targets.length; start += per) {
        const neurons = targets.slice(start, start + per);
        out.push({ shard: { neurons, layers }, units: neurons.length });
      }
      return out;
    },
    async compute({ neurons: targets, layers }, progress) {
      const classifier = await env.classifier();
      const total = targets.length * fv.steps;
      const curves: number[][] = targets.map(() => []);
      const rendered: Float32Array[] = [];
      const seconds: number[] = [];
      for (let start = 0; start < targets.length; start += fv.batch) {
        const chunk = targets.slice(start, start + fv.batch);
        const t0 = performance.now();
        // Each batch's seed derives from the spec's seed and its first neuron, so adding a neuron never changes another batch.
        const seed = createRng(env.spec.seed).fork(`featurevis/${chunk.map(neuronFileStem).join(',')}`).uniformInt(0, 2 ** 31 - 1);
        const r = await deviceRenderNeurons(classifier.model, chunk, {
          size: fv.size, steps: fv.steps, seed, param: fv.param,
          onStep: (step) => progress(start * fv.steps + step * chunk.length, total, `${start + chunk.length}/${targets.length} neurons`),
        });
        seconds.push((performance.now() - t0) / 1000 / chunk.length);
        const per = 3 * fv.size * fv.size;
        chunk.forEach((_, i) => {
          rendered.push(r.images.slice(i * per, (i + 1) * per));
          curves[start + i] = r.curve.map((row) => round(row[i], 5));
        });
      }
      // The images as the model sees them (upsampled as during rendering, no random transforms).
      const [, inH, inW] = classifier.inputDims;
      const up = resize(fv.size, fv.size, inH, inW);
      const measured = await recordActivations(classifier, rendered.length, async (i) => applySamplings(rendered[i], 3, [up]).out, layers, fv.batch);
      const files = new Map<string, Uint8Array>();
      const measures: NeuronMeasure[] = [];
      for (const [i, t] of targets.entries()) {
        const m = measured.get(t.layer)!;
        files.set(`${neuronFileStem(t)}.png`, await toPng(rendered[i], fv.size, fv.size));
        measures.push({ activation: m.mean[i * m.channels + t.channel], high_frequency: highFrequencyFraction(rendered[i], fv.size, fv.size), curve: curves[i] });
      }
      // Plain JSON, not the cache's canonical form: the merge rounds, and must round the exact values the whole run would.
      files.set(SHARD_MEASURES, new TextEncoder().encode(JSON.stringify(measures)));
      progress(total, total, `${(seconds.reduce((a, b) => a + b, 0) / seconds.length).toFixed(1)} s/neuron`);
      return files;
    },
    async merge(shards, parts, ctx) {
      const classifier = await env.classifier();
      const targets = shards.flatMap((s) => s.neurons);
      const layers = shards[0].layers;
      const measures = parts.flatMap((files) => JSON.parse(new TextDecoder().decode(files.get(SHARD_MEASURES))) as NeuronMeasure[]);
      if (measures.length !== targets.length) throw new Error(`internal: featurevis shards measured ${measures.length} neurons of ${targets.length}`);
      const files = new Map<string, Uint8Array>();
      ctx.progress(1, 1, 'measuring the reference photos');
      const photos = new Map<string, { images: number; channels: number; mean: Float32Array }>();
      for (const layer of layers.filter((l) => recorded.has(l))) {
        const { values, channels } = await referenceMeans(ctx.dependency(ACTIVATIONS), layer);
        photos.set(layer, { images: values.length / channels, channels, mean: values });
      }
      const unrecorded = layers.filter((l) => !recorded.has(l));
      if (unrecorded.length) for (const [layer, r] of await recordActivations(classifier, env.reference.length, (i) => loadImage(env.reference[i].path, classifier.preprocess), unrecorded, 16)) photos.set(layer, r);
      const photoHf: number[] = [];
      for await (const { items } of loadAhead(env.reference.length, 16, (i) => loadImage(env.reference[i].path, { resize: fv.size, crop: fv.size }))) {
        for (const pixels of items) photoHf.push(highFrequencyFraction(pixels, fv.size, fv.size));
      }
      const photoHfMedian = quantile(photoHf, 0.5);
      const neurons: RenderedNeuron[] = [];
      for (const [i, t] of targets.entries()) {
        const p = photos.get(t.layer)!;
        let best = -Infinity;
        let bestImage = -1;
        for (let k = 0; k < p.images; k++) if (p.mean[k * p.channels + t.channel] > best) [best, bestImage] = [p.mean[k * p.channels + t.channel], k];
        const { activation, high_frequency: hf, curve } = measures[i];
        const image = `${neuronFileStem(t)}.png`;
        const png = parts.find((f) => f.has(image))?.get(image);
        if (!png) throw new Error(`internal: no featurevis shard rendered ${image}`);
        files.set(image, png);
        neurons.push({
          layer: t.layer, channel: t.channel, chosen_by: t.chosenBy, image,
          objective: curve[curve.length - 1],
          activation: round(activation, 5),
          photo_max: round(best, 5),
          photo_max_image: env.reference[bestImage]?.name ?? null,
          ratio: round(activation / best, 4),
          high_frequency: round(hf, 5),
          high_frequency_ratio: round(hf / photoHfMedian, 4),
        });
      }
      files.set(CURVES_JSON.file, writeJson(CURVES_JSON, FEATUREVIS, Object.fromEntries(targets.map((t, i) => [`${t.layer}:${t.channel}`, measures[i].curve]))));
      files.set(FEATUREVIS_JSON.file, writeJson(FEATUREVIS_JSON, FEATUREVIS, {
        size: fv.size, steps: fv.steps, batch: fv.batch, param: fv.param,
        photos: { n: env.reference.length, high_frequency_median: round(photoHfMedian, 5) },
        neurons,
        summary: {
          n: neurons.length,
          beat_photos: neurons.filter((x) => x.ratio > 1).length,
          min_ratio: Math.min(...neurons.map((x) => x.ratio)),
          max_ratio: Math.max(...neurons.map((x) => x.ratio)),
          max_high_frequency_ratio: Math.max(...neurons.map((x) => x.high_frequency_ratio)),
        },
        // Wall time is not an output (it would break byte-identical caches); the step's log reports it.
      }));
      return files;
    },
  };
  return [{
    id: FEATUREVIS,
    kind: 'featurevis',
    needs,
    params: { model: env.model, seed: env.spec.seed, ...fv, images: reference },
    code: [import.meta.filename, CLASSIFIER_CODE],
    shards: sharding as Sharding,
    compute: (ctx) => computeInOnePiece(sharding, ctx),
  }];
}

/** A featurevis shard: whole render batches of the step's neurons, and every layer the step measures. */
interface FeaturevisShard {
  neurons: Target[];
  layers: string[];
}

/** A shard's measurements of one rendered neuron, exact (unrounded) for the merge. */
interface NeuronMeasure {
  activation: number;
  high_frequency: number;
  curve: number[];
}

/** The shard's file of measurements (the PNGs are its other files). */
const SHARD_MEASURES = 'measures.json';

type Choice = NonNullable<ExperimentSpec['featurevis']>['choose'][number];
type Target = ReturnType<typeof parseChannel> & { chosenBy: string };

/**
 * The neurons to render: those the spec names, then for each `choose` rule the top of that ranking, read from the
 * step that ranked them; a neuron already chosen is skipped, so a rule may reach further down its ranking.
 */
async function chooseNeurons(named: ReturnType<typeof parseChannel>[], rules: readonly Choice[], ctx: StepContext): Promise<Target[]> {
  const out: Target[] = named.map((t) => ({ ...t, chosenBy: 'named in the spec' }));
  const taken = new Set(out.map((t) => `${t.layer}:${t.channel}`));
  const take = (layer: string, channel: number, chosenBy: string) => {
    const id = `${layer}:${channel}`;
    if (taken.has(id)) return false;
    taken.add(id);
    out.push({ layer, channel, chosenBy });
    return true;
  };
  for (const rule of rules) {
    let count = 0;
    if (rule.ranking === 'fragile') {
      const step = neuronsStepId(rule.attack);
      const neurons = await readJson(NEURONS_JSON, ctx.dependency(step), FEATUREVIS, step);
      const f = neurons.layers[rule.layer]?.fragility;
      if (!f) throw new Error(`featurevis: ${step} has no layer '${rule.layer}'`);
      for (const [rank, r] of f.ranking.entries()) {
        if (count === rule.top) break;
        const verdict = f.descriptive ? `descriptive, n = ${f.n}` : r.fragile ? `fragile, q = ${r.q!.toPrecision(2)}` : `not fragile, q = ${r.q!.toPrecision(2)}`;
        if (take(rule.layer, r.channel, `rank ${rank + 1} by fragility under ${rule.attack} (effect ${r.effect.toFixed(2)}σ; ${verdict})`)) count++;
      }
    } else {
      const poly = await readJson(POLYSEMANTIC_JSON, ctx.dependency(POLYSEMANTIC), FEATUREVIS, POLYSEMANTIC);
      const l = poly.layers[rule.layer];
      if (!l) throw new Error(`featurevis: ${POLYSEMANTIC} has no layer '${rule.layer}'`);
      for (const [rank, r] of l.ranking.entries()) {
        if (count === rule.top) break;
        const groups = r.groups.map((g) => g.name).join(' + ');
        if (take(rule.layer, r.channel, `rank ${rank + 1} by polysemanticity (${groups}; q = ${r.q.toPrecision(2)}, ${r.polysemantic ? 'polysemantic' : 'not polysemantic'})`)) count++;
      }
    }
  }
  if (out.length === 0) throw new Error('featurevis: no neuron to render (the rankings chose none)');
  return out;
}
