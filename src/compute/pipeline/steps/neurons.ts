// The `neurons_<attack>` steps: per attack and layer, the fragile neurons — those the attack moves further than its
// control (random noise of the same ε, attacks/control.ts) does, with an interval, a test and false-discovery control
// (analysis/fragility.ts) — heatmaps of the most fragile before and after the attack, and per-group statistics of the
// source images clean and adversarial and of the target class's clean reference images.
import path from 'node:path';
import { isUnder } from '../../analysis/class-groups.ts';
import { layerFragility } from '../../analysis/fragility.ts';
import { mapShift } from '../../analysis/heatmap.ts';
import { channelSpread, groupStats, type GroupStats } from '../../analysis/neuron-stats.ts';
import { receptiveFields, type ReceptiveField } from '../../analysis/receptive-field.ts';
import { recordActivations } from '../../analysis/record.ts';
import { CLASSIFIER_CODE, type Classifier } from '../../model/classifier.ts';
import { quantile } from '../../numbers.ts';
import type { Rng } from '../../random.ts';
import { classSelectivity, selectivityGroup, targetNeuronsTurnedOn } from '../../analysis/selectivity.ts';
import { NEURONS_JSON, NeuronsSummary, type NeuronsLayer, type TargetSelectivity } from '../outputs/analysis.ts';
import { RESULTS_JSON } from '../outputs/attack.ts';
import { readJson, writeJson } from '../outputs/json-file.ts';
import type { Step } from '../step.ts';
import { ACTIVATIONS, neuronsStepId } from '../step-ids.ts';
import { fileOf, referenceMaxima, referenceMeans, type AnalysisEnv } from './activations.ts';
import { attackImages } from './attack-images.ts';

/** Neurons per layer and attack that get heatmaps (the most fragile). */
const HEATMAP_NEURONS = 3;

export function neuronsSteps(env: AnalysisEnv): Step[] {
  const { spec } = env;
  const a = spec.analysis;
  const steps: Step[] = [];
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
      // The control's noise and the bootstrap and sign-flip draws come from the spec's seed, in streams of this attack.
      params: { model: env.model, layers: spec.layers, top_fraction: a.top_fraction, fdr: a.fdr, min_effect: a.min_effect, groups: a.groups, batch: a.batch, seed: spec.seed },
      code: [import.meta.filename, CLASSIFIER_CODE],
      async compute(ctx) {
        const classifier = await env.classifier();
        const attack = ctx.dependency(attackId);
        const acts = ctx.dependency(ACTIVATIONS);
        const results = await readJson(RESULTS_JSON, attack, id, attackId);
        const rows = results.rows;
        const images = await attackImages(classifier, env.dataDir, spec.seed, attackId, attack, results);
        const { clean: cleanPixels, adversarial: advPixels, rng } = images;
        const clean = await recordActivations(classifier, rows.length, async (i) => cleanPixels[i], spec.layers, a.batch);
        const adversarial = await recordActivations(classifier, rows.length, async (i) => advPixels[i], spec.layers, a.batch);
        const controlPixels = images.control();
        const control = await recordActivations(classifier, rows.length, async (i) => controlPixels[i], spec.layers, a.batch);
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
            layer, channels: c.channels, clean: c.mean, adversarial: x.mean, control: control.get(layer)!.mean, sigma: std,
            seed: rng.fork(`test/${layer}`).uniformInt(0, 2 ** 31 - 1),
            targetClean: targetGroup ? pickRows(ref.values, ref.channels, targetGroup.rows) : undefined,
            fdr: a.fdr, minEffect: a.min_effect, topFraction: a.top_fraction,
          });
          const all = [...Array(c.images).keys()];
          const heatmaps = await fragileHeatmaps({ classifier, layer, channels: fragility.ranking.slice(0, HEATMAP_NEURONS).map((r) => r.channel), cleanPixels, advPixels,
            field: fields.get(classifier.model.layers.find((l) => l.name === layer)!.tensor)!, scale: quantile(await referenceMaxima(acts, layer), 0.99), stems: rows.map((r) => path.basename(r.file).replace(/\.[^.]+$/, '')) });
          const selectivity = target === null ? undefined : targetSelectivity({
            target, values: ref.values, channels: ref.channels, labels: refLabels, classes: env.classes, groups: a.groups, fdr: a.fdr,
            clean: c.mean, adversarial: x.mean, control: control.get(layer)!.mean, rng: rng.fork(`selectivity/${layer}`),
          });
          layers[layer] = {
            heatmaps,
            fragility,
            ...(selectivity ? { target_selectivity: selectivity } : {}),
            stats: {
              source_clean: statsJson('source images, clean', groupStats(c.mean, c.channels, all)),
              source_adversarial: statsJson('source images, adversarial', groupStats(x.mean, x.channels, all)),
              source_control: statsJson('source images, control', groupStats(control.get(layer)!.mean, x.channels, all)),
              ...(targetGroup ? { target_clean: statsJson(`target: ${targetGroup.name}, clean reference images`, groupStats(ref.values, ref.channels, targetGroup.rows)) } : {}),
            },
          };
        }
        const summary = Object.fromEntries(Object.entries(layers).map(([layer, { fragility: f }]) => [layer, NeuronsSummary.parse(pick(f, NeuronsSummary.keyof().options))]));
        files.set(NEURONS_JSON.file, writeJson(NEURONS_JSON, id, { attack: attackId, n: rows.length, summary, layers }));
        return files;
      },
    });
  }
  return steps;
}

/** Clean and adversarial maps of the given neurons on each attack image, with the shift numbers. */
async function fragileHeatmaps(o: {
  classifier: Classifier; layer: string; channels: number[]; cleanPixels: Float32Array[]; advPixels: Float32Array[];
  field: ReceptiveField; scale: number; stems: string[];
}): Promise<NeuronsLayer['heatmaps']> {
  const [, h, w] = o.classifier.inputDims;
  const per = 3 * h * w;
  const maps = async (pixels: Float32Array[]) => {
    const x = new Float32Array(pixels.length * per);
    pixels.forEach((p, i) => x.set(p, i * per));
    return (await o.classifier.model.activations(x, [o.layer])).activations.get(o.layer)!;
  };
  const clean = await maps(o.cleanPixels);
  const adv = await maps(o.advPixels);
  const [, channels, mh, mw] = clean.dims;
  const area = mh * mw;
  // Four significant digits: the figures draw colours from them, and the JSON stays small.
  const rounded = (m: ArrayLike<number>) => Array.from(m, (v) => Number(v.toPrecision(4)));
  const out: NeuronsLayer['heatmaps']['neurons'] = [];
  for (const ch of o.channels) {
    for (let i = 0; i < o.cleanPixels.length; i++) {
      const at = (i * channels + ch) * area;
      const cm = clean.data.subarray(at, at + area);
      const am = adv.data.subarray(at, at + area);
      out.push({ channel: ch, image: o.stems[i], maps: { clean: rounded(cm), adversarial: rounded(am) }, ...mapShift(cm, am, mh, mw, o.field) });
    }
  }
  return { scale: o.scale, geometry: { spatial: [mh, mw], start: o.field.start, jump: o.field.jump, input: [h, w] }, neurons: out };
}

function pick<T extends object, K extends keyof T>(value: T, keys: readonly K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((k) => [k, value[k]])) as Pick<T, K>;
}

function pickRows(values: ArrayLike<number>, channels: number, rows: readonly number[]): Float32Array {
  const out = new Float32Array(rows.length * channels);
  rows.forEach((r, i) => { for (let c = 0; c < channels; c++) out[i * channels + c] = values[r * channels + c]; });
  return out;
}

/** The target's selective neurons, and how many of them the attack turns on against the control. */
function targetSelectivity(o: {
  target: number; values: Float32Array; channels: number; labels: readonly number[]; classes: AnalysisEnv['classes'];
  groups: Record<string, string>; fdr: number; clean: Float32Array; adversarial: Float32Array; control: Float32Array; rng: Rng;
}): TargetSelectivity | undefined {
  let group;
  try {
    group = selectivityGroup({ labels: o.labels, classes: o.classes, target: o.target, groups: o.groups });
  } catch {
    return undefined; // no group above the class has two reference images: nothing to be selective for
  }
  // A group holding every reference image leaves nothing to be selective against.
  if (group.rows.length >= o.labels.length) return undefined;
  const sel = classSelectivity({ channels: o.channels, values: o.values, rows: group.rows, seed: o.rng.fork('auroc'), fdr: o.fdr });
  const selective = sel.neurons.filter((x) => x.selective).sort((a, b) => b.auroc! - a.auroc! || a.channel - b.channel);
  const threshold = groupStats(o.values, o.channels, group.rows).median;
  const on = targetNeuronsTurnedOn({
    channels: o.channels, clean: o.clean, adversarial: o.adversarial, control: o.control,
    selective: selective.map((x) => x.channel), threshold, seed: o.rng.fork('turned-on'),
  });
  return {
    group: group.name, pooled: group.pooled, n: sel.n, rest: sel.rest, method: sel.method, fdr: sel.fdr, min_auroc: sel.min_auroc,
    selective: selective.map((x) => ({ channel: x.channel, auroc: x.auroc!, q: x.q! })),
    turned_on: {
      n: on.n, adversarial: on.turned_on.adversarial.mean, control: on.turned_on.control.mean,
      difference: on.difference, p: on.p, descriptive: on.descriptive,
    },
  };
}

function statsJson(group: string, s: GroupStats) {
  return { group, n: s.n, mean: Array.from(s.mean), median: Array.from(s.median), max: Array.from(s.max) };
}
