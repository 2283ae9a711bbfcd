// A second model under the same attacks (the study's standard vs adversarially trained ResNet-50): the main model's
// attack and neuron-analysis steps, rebuilt for the compared model with ids prefixed `<id>/`, then one `comparison`
// step that sets the two side by side — success rate, confidence drop, perturbation visibility and fragile-neuron
// counts per layer, each with its n.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { hashFile, hashJson, sha256 } from '../../cache/hash.ts';
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
  const unknown = Object.keys(compare.layers).filter((l) => !env.spec.layers.includes(l));
  if (unknown.length > 0) {
    throw new Error(`compare.layers: ${unknown.map((l) => `'${l}'`).join(', ')} not in the spec's layers (${env.spec.layers.join(', ')})`);
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
  const keys = new Map<string, string>();
  const stepEnv: StepEnv = {
    ...env,
    spec,
    classifier: () => (classifier ??= loadClassifier(file, env.session, cardPath)),
    model: { sha256: await hashFile(file), card: sha256(cardText + JSON.stringify(card.classList)), ep: env.model.ep },
  };
  const own = await attackSteps(stepEnv);
  for (const s of own) keys.set(s.id, keyOfInputs(s));
  const analysis = (await analysisSteps({ ...env, ...stepEnv, keyOf: (id) => keys.get(id)! })).filter((s) => s.kind !== 'polysemantic');
  const compared = [...own, ...analysis].map((s) => withPrefix(s, prefix));

  const attackIds = Object.keys(env.spec.attacks);
  const models = [
    { id: 'main', label: env.main.label, pixels: env.main.pixels, prefix: '', layer: (l: string) => l },
    { id: compare.id, label: compare.label ?? compare.id, pixels: pixelsOf(card.input.shape), prefix, layer: layerOf },
  ];
  const needs = models.flatMap((m) => attackIds.flatMap((a) => [`${m.prefix}${a}`, ...(env.spec.layers.length ? [`${m.prefix}neurons_${a}`] : [])]));
  const comparison: Step = {
    id: COMPARISON,
    kind: 'comparison',
    needs,
    inputs: { code: env.code, steps: Object.fromEntries(needs.map((id) => [id, id.startsWith(prefix) ? keyOfInputs([...compared].find((s) => s.id === id)!) : env.keyOf(id)])), labels: models.map((m) => m.label) },
    async compute(ctx) {
      const rows = [];
      for (const m of models) {
        for (const attack of attackIds) {
          const results = JSON.parse(await readFile(ctx.dependency(`${m.prefix}${attack}`).file('results.json'), 'utf8'));
          const perImage = results.rows as { success: boolean; linf: number; l2: number; top5_before: { class: number; probability: number }[]; top5_after: { class: number; probability: number }[] }[];
          const n = perImage.length;
          const mean = (f: (r: (typeof perImage)[number]) => number) => perImage.reduce((a, r) => a + f(r), 0) / n;
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
            success_rate: mean((r) => (r.success ? 1 : 0)),
            // The clean top-1 class's probability before minus after (after = 0 once it leaves the top 5, as in the
            // ε figure), so a drop is at most overstated by the 5th probability.
            confidence_drop: mean((r) => r.top5_before[0].probability - (r.top5_after.find((p) => p.class === r.top5_before[0].class)?.probability ?? 0)),
            mean_linf: mean((r) => r.linf),
            // Root-mean-square change of a pixel value, in 8-bit levels: how visible the saved perturbation is.
            rms_levels: mean((r) => (r.l2 / Math.sqrt(m.pixels)) * 255),
            fragile,
          });
        }
      }
      return new Map([['comparison.json', new TextEncoder().encode(stableJson({ models: models.map(({ id, label }) => ({ id, label })), layers: env.spec.layers, rows }))]]);
    },
  };
  return [...compared, comparison];
}

/** Values per image of a model card's input shape [N,C,H,W]. */
export function pixelsOf(shape: readonly (string | number)[]): number {
  return shape.slice(1).reduce<number>((a, d) => a * Number(d), 1);
}

/** The step for the compared model: its id and its dependencies renamed into the model's namespace. */
function withPrefix(step: Step, prefix: string): Step {
  return {
    ...step,
    id: `${prefix}${step.id}`,
    needs: step.needs?.map((n) => `${prefix}${n}`),
    compute: (ctx) => step.compute({ ...ctx, dependency: (id) => ctx.dependency(`${prefix}${id}`) }),
  };
}

function keyOfInputs(step: Step): string {
  return hashJson(step.inputs);
}
