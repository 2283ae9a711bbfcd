// A second model under the same attacks (the study's standard vs adversarially trained ResNet-50): the main model's
// attack and neuron-analysis steps, rebuilt for the compared model with ids prefixed `<id>/`, then one `comparison`
// step that sets the two side by side — success rate, confidence drop, perturbation visibility and fragile-neuron
// counts per layer, each with its n.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { cleanClassProbabilityAfter } from '../../attacks/attack-report.ts';
import { hashFile, sha256 } from '../../cache/hash.ts';
import { loadClassifier, type Classifier } from '../../model/classifier.ts';
import { loadModelCard } from '../../model/model-card.ts';
import type { SessionOptions } from '../../runtime/session.ts';
import { ensureModel } from '../data.ts';
import { NEURONS_JSON } from '../outputs/analysis.ts';
import { RESULTS_JSON } from '../outputs/attack.ts';
import { COMPARISON_JSON, type ComparisonRow, type FragileCount } from '../outputs/comparison.ts';
import { readJson, writeJson } from '../outputs/json-file.ts';
import type { ExperimentSpec } from '../spec.ts';
import type { Step } from '../step.ts';
import { COMPARISON, attackStepId, comparedStepId, neuronsStepId } from '../step-ids.ts';
import { analysisSteps, type AnalysisEnv } from './analysis.ts';
import { attackSteps, type StepEnv } from './attack.ts';

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
  // Depth through the main model's layers, each found in this model (by name, else by its activations).
  const alignTo = { classifier: env.classifier, model: env.model };
  const analysis = (await analysisSteps({ ...env, ...stepEnv, alignTo })).filter((s) => s.kind !== 'polysemantic' && s.kind !== 'atlas' && s.kind !== 'patching');
  const compared = [...own, ...analysis].map((s) => withPrefix(s, compare.id, compare.file));

  const attackIds = Object.keys(env.spec.attacks);
  const models = [
    { id: 'main', label: env.main.label, pixels: env.main.pixels, step: (id: string) => id, layer: (l: string) => l },
    { id: compare.id, label, pixels: pixelsOf(card.input.shape), step: (id: string) => comparedStepId(compare.id, id), layer: layerOf },
  ];
  const needs = models.flatMap((m) => attackIds.flatMap((a) => [m.step(attackStepId(a)), ...(env.spec.layers.length ? [m.step(neuronsStepId(a))] : [])]));
  const comparison: Step = {
    id: COMPARISON,
    kind: 'comparison',
    needs,
    params: { labels: models.map((m) => m.label), pixels: models.map((m) => m.pixels), layers: env.spec.layers, layer_map: compare.layers, fdr: env.spec.analysis.fdr, min_effect: env.spec.analysis.min_effect },
    code: [import.meta.filename],
    async compute(ctx) {
      const rows: ComparisonRow[] = [];
      for (const m of models) {
        for (const attack of attackIds) {
          ctx.progress(rows.length, models.length * attackIds.length, `${m.label}, ${attack}`);
          const attackStep = m.step(attackStepId(attack));
          const entry = ctx.dependency(attackStep);
          const perImage = (await readJson(RESULTS_JSON, entry, COMPARISON, attackStep)).rows;
          const n = perImage.length;
          const mean = (values: readonly number[]) => values.reduce((a, v) => a + v, 0) / n;
          const before = perImage.map((r) => r.top5_before[0].probability);
          const after = perImage.map(cleanClassProbabilityAfter);
          const changed = await Promise.all(perImage.map((r) => changedPixels(entry.file(r.images.clean), entry.file(r.images.adversarial))));
          const fragile: Record<string, FragileCount> = {};
          if (env.spec.layers.length) {
            const neuronsStep = m.step(neuronsStepId(attack));
            const neurons = await readJson(NEURONS_JSON, ctx.dependency(neuronsStep), COMPARISON, neuronsStep);
            for (const layer of env.spec.layers) {
              const analysed = neurons.layers[m.layer(layer)];
              if (!analysed) throw new Error(`step ${COMPARISON}: ${neuronsStep} has no layer '${m.layer(layer)}' (it has ${Object.keys(neurons.layers).join(', ')})`);
              const f = analysed.fragility;
              fragile[layer] = { drops: f.drops, spikes: f.spikes, channels: f.channels, descriptive: f.descriptive };
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
      return new Map([[COMPARISON_JSON.file, writeJson(COMPARISON_JSON, COMPARISON, {
        models: models.map(({ id, label }) => ({ id, label })), layers: env.spec.layers, fdr: env.spec.analysis.fdr, min_effect: env.spec.analysis.min_effect, rows, summary,
      })]]);
    },
  };
  return [...compared, comparison];
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
function withPrefix(step: Step, modelId: string, model: string): Step {
  const prefixed = (id: string) => comparedStepId(modelId, id);
  return {
    ...step,
    id: prefixed(step.id),
    needs: step.needs?.map(prefixed),
    async compute(ctx) {
      try {
        return await step.compute({ ...ctx, dependency: (id) => ctx.dependency(prefixed(id)) });
      } catch (err) {
        // e.g. a layer of compare.layers that the compared model does not have
        throw new Error(`step ${prefixed(step.id)} (compared model ${model}): ${(err as Error).message}`, { cause: err });
      }
    },
  };
}
