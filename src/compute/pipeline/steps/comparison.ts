// A second model under the same attacks (the study's standard vs adversarially trained ResNet-50): the main model's
// attack and neuron-analysis steps, rebuilt for the compared model with ids prefixed `<id>/`, then one `comparison`
// step that sets the two side by side — success rate, confidence drop, perturbation visibility and fragile-neuron
// counts per layer, each with its n.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { cleanClassProbabilityAfter } from '../../attacks/attack-report.ts';
import { hashFile, sha256 } from '../../cache/hash.ts';
import { stableJson } from '../../cache/stable-json.ts';
import { loadClassifier, type Classifier } from '../../model/classifier.ts';
import { loadModelCard } from '../../model/model-card.ts';
import type { SessionOptions } from '../../runtime/session.ts';
import { ensureModel } from '../data.ts';
import type { ExperimentSpec } from '../spec.ts';
import type { Step } from '../step.ts';
import { analysisSteps, type AnalysisEnv } from './analysis.ts';
import { attackSteps, type StepEnv } from './attack.ts';

export const COMPARISON = 'comparison';

interface ComparedEnv extends AnalysisEnv {
  /** the main model's label in figures, and values per image ([C,H,W] of its input) */
  main: { label: string; pixels: number };
  session: SessionOptions;
  log: (line: string) => void;
}

/** The compared model's steps and the comparison step; none when the spec has no `compare:`. */
export async function comparisonSteps(env: ComparedEnv): Promise<Step[]> {
  const compare = env.spec.compare;
  if (!compare) return [];
  // compare.layers and compare.id are checked with the spec (spec.ts); the labels only now that the card is read.
  const label = compare.label ?? compare.id;
  if (label === env.main.label) {
    throw new Error(`compare: both models are labelled '${label}' in figures; give compare.label (or model.label) another name`);
  }
  const file = await ensureModel({ ...env.spec, model: { file: compare.file, url: compare.url, sha256: compare.sha256 } }, env.dataDir, env.log);
  const cardPath = compare.card ? path.resolve(env.dataDir, compare.card) : undefined;
  const card = await loadModelCard(file, cardPath);
  const cardText = await readFile(card.cardPath, 'utf8');
  if (card.classList.length !== env.classes.length || card.classList.some((c, k) => c.wnid !== env.classes[k].wnid)) {
    throw new Error(`compare: ${compare.file} predicts other classes than ${env.spec.model.file}; the attacks' classes would not mean the same`);
  }
  const prefix = `${compare.id}/`;
  const layerOf = (l: string) => compare.layers[l] ?? l;
  let classifier: Promise<Classifier> | undefined;
  // The same attacks on the same images with the same seeds; no ε sweeps and no featurevis: the comparison reads the
  // attacks at their own budget and the fragile neurons they leave.
  const spec: ExperimentSpec = {
    ...env.spec,
    attacks: Object.fromEntries(Object.entries(env.spec.attacks).map(([id, a]) => [id, { ...a, eps_sweep: undefined }])),
    layers: env.spec.layers.map(layerOf),
    featurevis: undefined,
  };
  const stepEnv: StepEnv = {
    ...env,
    spec,
    classifier: () => (classifier ??= loadClassifier(file, env.session, cardPath)),
    model: { sha256: await hashFile(file), card: sha256(cardText + JSON.stringify(card.classList)), ep: env.model.ep },
  };
  const own = await attackSteps(stepEnv);
  const analysis = (await analysisSteps({ ...env, ...stepEnv })).filter((s) => s.kind !== 'polysemantic');
  const compared = [...own, ...analysis].map((s) => withPrefix(s, prefix, compare.file));

  const attackIds = Object.keys(env.spec.attacks);
  const models = [
    { id: 'main', label: env.main.label, pixels: env.main.pixels, prefix: '', layer: (l: string) => l },
    { id: compare.id, label, pixels: pixelsOf(card.input.shape), prefix, layer: layerOf },
  ];
  const needs = models.flatMap((m) => attackIds.flatMap((a) => [`${m.prefix}${a}`, ...(env.spec.layers.length ? [`${m.prefix}neurons_${a}`] : [])]));
  const comparison: Step = {
    id: COMPARISON,
    kind: 'comparison',
    needs,
    params: { labels: models.map((m) => m.label), pixels: models.map((m) => m.pixels), layers: env.spec.layers, layer_map: compare.layers, fragile_z: env.spec.analysis.fragile_z },
    code: [import.meta.filename],
    async compute(ctx) {
      const rows: ComparisonRow[] = [];
      for (const m of models) {
        for (const attack of attackIds) {
          ctx.progress(rows.length, models.length * attackIds.length, `${m.label}, ${attack}`);
          const entry = ctx.dependency(`${m.prefix}${attack}`);
          const results = JSON.parse(await readFile(entry.file('results.json'), 'utf8'));
          const perImage = results.rows as AttackRowRead[];
          const n = perImage.length;
          const mean = (values: readonly number[]) => values.reduce((a, v) => a + v, 0) / n;
          const before = perImage.map((r) => r.top5_before[0].probability);
          const after = perImage.map(cleanClassProbabilityAfter);
          const changed = await Promise.all(perImage.map((r) => changedPixels(entry.file(r.images.clean), entry.file(r.images.adversarial))));
          const fragile: Record<string, { drops: number; spikes: number; channels: number }> = {};
          if (env.spec.layers.length) {
            const neurons = JSON.parse(await readFile(ctx.dependency(`${m.prefix}neurons_${attack}`).file('neurons.json'), 'utf8'));
            for (const layer of env.spec.layers) {
              const f = neurons.layers[m.layer(layer)].fragility;
              fragile[layer] = { drops: f.drops, spikes: f.spikes, channels: f.channels };
            }
          }
          rows.push({
            model: m.id,
            label: m.label,
            attack,
            n,
            success_rate: mean(perImage.map((r) => (r.success ? 1 : 0))),
            clean_probability: mean(before),
            adversarial_probability: mean(after),
            confidence_drop: mean(before.map((b, i) => b - after[i])),
            // Of the saved 8-bit adversarial image against the clean crop, in pixel units ([0,1]).
            mean_linf: mean(perImage.map((r) => r.linf)),
            mean_l2: mean(perImage.map((r) => r.l2)),
            // Root-mean-square change of a pixel value, in 8-bit levels: how visible the saved perturbation is.
            rms_levels: mean(perImage.map((r) => (r.l2 / Math.sqrt(m.pixels)) * 255)),
            changed_pixels: mean(changed),
            fragile,
          });
        }
      }
      // Per model, over every attacked image (each attack weighted by its n), for the prose.
      const summary = Object.fromEntries(models.map((m) => {
        const own = rows.filter((r) => r.model === m.id);
        const n = own.reduce((a, r) => a + r.n, 0);
        const weighted = (k: 'success_rate' | 'clean_probability' | 'adversarial_probability' | 'confidence_drop' | 'mean_linf' | 'mean_l2' | 'rms_levels' | 'changed_pixels') =>
          own.reduce((a, r) => a + r[k] * r.n, 0) / n;
        return [m.id, {
          label: m.label, n, attacks: own.length,
          success_rate: weighted('success_rate'), clean_probability: weighted('clean_probability'),
          adversarial_probability: weighted('adversarial_probability'), confidence_drop: weighted('confidence_drop'),
          mean_linf: weighted('mean_linf'), mean_l2: weighted('mean_l2'), rms_levels: weighted('rms_levels'), changed_pixels: weighted('changed_pixels'),
        }];
      }));
      return new Map([['comparison.json', new TextEncoder().encode(stableJson({
        models: models.map(({ id, label }) => ({ id, label })), layers: env.spec.layers, fragile_z: env.spec.analysis.fragile_z, rows, summary,
      }))]]);
    },
  };
  return [...compared, comparison];
}

interface AttackRowRead {
  success: boolean;
  linf: number;
  l2: number;
  top5_before: { class: number; probability: number }[];
  top5_after: { class: number; probability: number }[];
  images: { clean: string; adversarial: string };
}

export interface ComparisonRow {
  model: string;
  label: string;
  attack: string;
  /** attacked images; every other field is a mean over them */
  n: number;
  success_rate: number;
  /** probability of the clean top-1 class on the clean image */
  clean_probability: number;
  /** probability of that same class on the adversarial image (0 when outside its top 5) */
  adversarial_probability: number;
  /** clean_probability − adversarial_probability */
  confidence_drop: number;
  mean_linf: number;
  mean_l2: number;
  rms_levels: number;
  /** fraction of pixel positions where the saved adversarial image differs from the clean crop in some channel */
  changed_pixels: number;
  /** per layer (the main model's name): neurons whose |score| ≥ fragile_z, dropping or spiking */
  fragile: Record<string, { drops: number; spikes: number; channels: number }>;
}

/** The fraction of pixel positions where two 8-bit images (same size) differ in any channel. */
async function changedPixels(cleanPng: string, adversarialPng: string): Promise<number> {
  const [a, b] = await Promise.all([cleanPng, adversarialPng].map((f) => sharp(f).removeAlpha().raw().toBuffer({ resolveWithObject: true })));
  const c = a.info.channels;
  if (a.data.length !== b.data.length) throw new Error(`comparison: ${cleanPng} and ${adversarialPng} differ in size`);
  let changed = 0;
  for (let i = 0; i < a.data.length; i += c) {
    for (let k = 0; k < c; k++) {
      if (a.data[i + k] !== b.data[i + k]) {
        changed++;
        break;
      }
    }
  }
  return changed / (a.data.length / c);
}

/** Values per image of a model card's input shape [N,C,H,W]. */
export function pixelsOf(shape: readonly (string | number)[]): number {
  return shape.slice(1).reduce<number>((a, d) => a * Number(d), 1);
}

/** The step for the compared model: its id and its dependencies renamed into the model's namespace. */
function withPrefix(step: Step, prefix: string, model: string): Step {
  return {
    ...step,
    id: `${prefix}${step.id}`,
    needs: step.needs?.map((n) => `${prefix}${n}`),
    async compute(ctx) {
      try {
        return await step.compute({ ...ctx, dependency: (id) => ctx.dependency(`${prefix}${id}`) });
      } catch (err) {
        // e.g. a layer of compare.layers that the compared model does not have
        throw new Error(`step ${prefix}${step.id} (compared model ${model}): ${(err as Error).message}`, { cause: err });
      }
    },
  };
}
