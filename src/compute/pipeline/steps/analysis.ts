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
import { stableJson } from '../../cache/stable-json.ts';
import { hwcToChw, loadImage } from '../../io/image.ts';
import { encodeNpy, parseNpy } from '../../io/npy.ts';
import type { CacheEntry } from '../../cache/store.ts';
import type { LabelledImage } from '../data.ts';
import type { Step } from '../step.ts';
import type { StepEnv } from './attack.ts';

export const ACTIVATIONS = 'activations';

/** File-name-safe form of a layer name. */
const fileOf = (layer: string) => layer.replace(/[^\w.-]/g, '_');

export interface AnalysisEnv extends StepEnv {
  reference: readonly LabelledImage[];
  dataDir: string;
  /** cache key of an earlier step */
  keyOf(id: string): string;
}

export async function analysisSteps(env: AnalysisEnv): Promise<Step[]> {
  const { spec } = env;
  if (spec.layers.length === 0) return [];
  const a = spec.analysis;
  const steps: Step[] = [];
  const reference = await Promise.all(env.reference.map(async (im) => ({ name: im.name, sha256: await hashFile(im.path), label: im.label })));
  steps.push({
    id: ACTIVATIONS,
    kind: 'activations',
    inputs: { code: env.code, model: env.model, layers: spec.layers, images: reference, batch: a.batch },
    async compute(ctx) {
      const classifier = await env.classifier();
      const records = await recordActivations(classifier, env.reference.length, (i) => loadImage(env.reference[i].path, classifier.preprocess), spec.layers, a.batch,
        (done, total) => ctx.progress(done, total, `${done}/${total} images`));
      const files = new Map<string, Uint8Array>();
      const layers: Record<string, unknown> = {};
      for (const [layer, r] of records) {
        files.set(`${fileOf(layer)}.mean.npy`, encodeNpy(r.mean, [r.images, r.channels]));
        files.set(`${fileOf(layer)}.max.npy`, encodeNpy(r.max, [r.images, r.channels]));
        files.set(`${fileOf(layer)}.argmax.npy`, encodeNpy(r.argmax, [r.images, r.channels]));
        layers[layer] = { file: fileOf(layer), channels: r.channels, spatial: r.spatial };
      }
      files.set('activations.json', new TextEncoder().encode(stableJson({ layers, images: env.reference.map((im) => ({ name: im.name, label: im.label })) })));
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
    const id = `neurons_${attackId}`;
    steps.push({
      id,
      kind: 'neurons',
      needs: [attackId, ACTIVATIONS],
      inputs: { code: env.code, attack: env.keyOf(attackId), activations: env.keyOf(ACTIVATIONS), top_fraction: a.top_fraction, z: a.fragile_z, groups: a.groups },
      async compute(ctx) {
        const classifier = await env.classifier();
        const attack = ctx.dependency(attackId);
        const acts = ctx.dependency(ACTIVATIONS);
        const results = JSON.parse(await readFile(attack.file('results.json'), 'utf8'));
        const rows: { file: string; label: number; target?: number; images: { adversarial: string } }[] = results.rows;
        const [, h, w] = classifier.inputDims;
        const clean = await recordActivations(classifier, rows.length, (i) => loadImage(path.resolve(env.dataDir, rows[i].file), classifier.preprocess), spec.layers, a.batch);
        const adversarial = await recordActivations(classifier, rows.length, async (i) => hwcToChw(await sharp(attack.file(rows[i].images.adversarial)).removeAlpha().raw().toBuffer(), h, w), spec.layers, a.batch);
        const target: number | null = results.params.target;
        const layers: Record<string, unknown> = {};
        for (const [li, layer] of spec.layers.entries()) {
          ctx.progress(li, spec.layers.length, layer);
          const ref = await referenceMeans(acts, layer);
          const { std } = channelSpread(ref.values, ref.channels);
          const targetGroup = target === null ? undefined : groupOf(target);
          const c = clean.get(layer)!;
          const x = adversarial.get(layer)!;
          const fragility = layerFragility({
            layer, channels: c.channels, clean: c.mean, adversarial: x.mean, sigma: std,
            targetClean: targetGroup ? pickRows(ref.values, ref.channels, targetGroup.rows) : undefined,
            z: a.fragile_z, topFraction: a.top_fraction,
          });
          const all = [...Array(c.images).keys()];
          layers[layer] = {
            fragility,
            stats: {
              source_clean: statsJson('source images, clean', groupStats(c.mean, c.channels, all)),
              source_adversarial: statsJson('source images, adversarial', groupStats(x.mean, x.channels, all)),
              ...(targetGroup ? { target_clean: statsJson(`target: ${targetGroup.name}, clean reference images`, groupStats(ref.values, ref.channels, targetGroup.rows)) } : {}),
            },
          };
        }
        const summary = Object.fromEntries(Object.entries(layers).map(([layer, v]) => {
          const f = (v as { fragility: ReturnType<typeof layerFragility> }).fragility;
          return [layer, { drops: f.drops, spikes: f.spikes, fragile_fraction: f.fragile_fraction, mean_abs_score: f.mean_abs_score, topk_retained: f.topk_retained, topk_target_overlap: f.topk_target_overlap }];
        }));
        return new Map([['neurons.json', new TextEncoder().encode(stableJson({ attack: attackId, n: rows.length, summary, layers }))]]);
      },
    });
  }

  steps.push({
    id: 'polysemantic',
    kind: 'polysemantic',
    needs: [ACTIVATIONS],
    inputs: { code: env.code, activations: env.keyOf(ACTIVATIONS), percentile: a.percentile },
    async compute(ctx) {
      const acts = ctx.dependency(ACTIVATIONS);
      const layers: Record<string, unknown> = {};
      const histograms: Record<string, unknown> = {};
      for (const [li, layer] of spec.layers.entries()) {
        ctx.progress(li, spec.layers.length, layer);
        const ref = await referenceMeans(acts, layer);
        const poly = layerPolysemanticity({ layer, channels: ref.channels, values: ref.values, labels: refLabels, classes: env.classes, percentile: a.percentile });
        layers[layer] = { ...poly, ranking: poly.ranking.map((r) => ({ ...r, strong: r.strong.map((s) => ({ ...s, file: env.reference[s.image].name })) })) };
        histograms[layer] = neuronHistograms(ref.values, ref.channels);
      }
      return new Map([
        ['polysemantic.json', new TextEncoder().encode(stableJson({ n: env.reference.length, layers }))],
        ['histograms.json', new TextEncoder().encode(stableJson(histograms))],
      ]);
    },
  });
  return steps;
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
