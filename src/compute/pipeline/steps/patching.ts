// The `patching_<attack>` steps (spec `patching:`): does the attack work through its fragile neurons? Activation
// patching of one layer on the attack's images (analysis/patching.ts): restore the clean activations of the top k
// neurons by fragility effect in the adversarial run, inject their adversarial activations into the clean run, against
// k random neurons and the k most active, k = 1, 2, 4, … C. The fragility effect is the neuron analysis's (against
// the same control, in the same natural σ), but cross-fitted (analysis/held-out-ranking.ts): each image is patched
// with the order measured on the other fold's images, so no image ranks the neurons it is tested with.
import { heldOutOrders } from '../../analysis/held-out-ranking.ts';
import { channelSpread } from '../../analysis/neuron-stats.ts';
import { defaultKs, patching } from '../../analysis/patching.ts';
import { recordActivations } from '../../analysis/record.ts';
import type { PatchingResult } from '../../analysis/patching-output.ts';
import { CLASSIFIER_CODE } from '../../model/classifier.ts';
import { RESULTS_JSON } from '../outputs/attack.ts';
import { readJson, writeJson } from '../outputs/json-file.ts';
import { PATCHING_JSON, type PatchingStep } from '../outputs/patching.ts';
import type { Step } from '../step.ts';
import { ACTIVATIONS, patchingStepId } from '../step-ids.ts';
import { referenceMeans, type AnalysisEnv } from './activations.ts';
import { attackImages } from './attack-images.ts';

/** The k the article quotes: this share of the layer's neurons. */
const SUMMARY_SHARE = 0.05;
/** Cross-fitting folds: two, so each ranking still rests on half the images. */
const FOLDS = 2;

export function patchingSteps(env: AnalysisEnv): Step[] {
  const { spec } = env;
  return spec.patching.map((p) => {
    const { layer } = p;
    const id = patchingStepId(p.attack);
    return {
      id,
      kind: 'patching',
      needs: [p.attack, ACTIVATIONS],
      params: { model: env.model, layer, draws: p.draws, folds: FOLDS, seed: spec.seed, batch: spec.analysis.batch },
      code: [import.meta.filename, CLASSIFIER_CODE],
      async compute(ctx) {
        const classifier = await env.classifier();
        const attack = ctx.dependency(p.attack);
        const results = await readJson(RESULTS_JSON, attack, id, p.attack);
        const rows = results.rows;
        if (rows.length < FOLDS) throw new Error(`step ${id}: ${rows.length} attacked image(s); cross-fitted patching needs at least ${FOLDS}`);
        const images = await attackImages(classifier, env.dataDir, spec.seed, p.attack, attack, results);
        const per = classifier.inputDims.reduce((a, b) => a * b, 1);
        // [N,C,H,W], as the patching graph takes them.
        const clean = new Float32Array(rows.length * per);
        const adversarial = new Float32Array(rows.length * per);
        images.clean.forEach((x, i) => clean.set(x, i * per));
        images.adversarial.forEach((x, i) => adversarial.set(x, i * per));
        // The neuron analysis's measurements at this layer: spatial means of clean, adversarial and control images
        // (the same control draw), σ over the reference photos.
        const record = async (pixels: Float32Array[]) => (await recordActivations(classifier, pixels.length, async (i) => pixels[i], [layer], spec.analysis.batch)).get(layer)!;
        const [c, x, k] = [await record(images.clean), await record(images.adversarial), await record(images.control())];
        const ref = await referenceMeans(ctx.dependency(ACTIVATIONS), layer);
        const orders = heldOutOrders({
          channels: c.channels, clean: c.mean, adversarial: x.mean, control: k.mean, sigma: channelSpread(ref.values, ref.channels).std,
          k: FOLDS, rng: images.rng.fork(`patching/${layer}/folds`),
        });
        const targeted = results.params.target !== null;
        const result = await patching(classifier, {
          layer, clean, adversarial, seed: spec.seed, draws: p.draws, batch: spec.analysis.batch,
          cleanClass: rows.map((r) => r.label),
          ...(targeted ? { target: rows.map(() => results.params.target!) } : {}),
          names: rows.map((r) => r.file),
          ranking: {
            from: `fragility effect against the control, cross-fitted: each image patched with the order from the other of ${FOLDS} random folds of the ${rows.length} images`,
            channels: orders.all, heldOut: orders,
          },
          onProgress: (pr) => ctx.progress(pr.done, pr.total, `${layer}: ${pr.done}/${pr.total} runs`),
        });
        const out: PatchingStep = { ...result, attack: p.attack, summary: summarize(result) };
        return new Map([[PATCHING_JSON.file, writeJson(PATCHING_JSON, id, out)]]);
      },
    };
  });
}

/** Ranked against random and most active at one k, for both directions. */
export function summarize(r: PatchingResult): PatchingStep['summary'] {
  const want = Math.max(1, Math.round(SUMMARY_SHARE * r.channels));
  const k = r.ks.reduce((best, x) => (Math.abs(x - want) < Math.abs(best - want) ? x : best), r.ks[0] ?? defaultKs(r.channels)[0]);
  const contrast = <M extends 'recovery' | 'drop'>(curves: Record<'ranked' | 'random' | 'active', ({ k: number } & Record<M, { mean: number | null; ci: [number, number] | null; n: number }>)[]>, measure: M) => {
    const at = (sel: 'ranked' | 'random' | 'active') => curves[sel].find((pt) => pt.k === k)![measure];
    const [ranked, random, active] = [at('ranked'), at('random'), at('active')];
    return {
      measure, n: ranked.n,
      ranked: ranked.mean, ranked_low: ranked.ci?.[0] ?? null,
      random: random.mean, random_high: random.ci?.[1] ?? null,
      active: active.mean, active_high: active.ci?.[1] ?? null,
    };
  };
  return { k, restore: contrast(r.restore, 'recovery'), inject: contrast(r.inject, 'drop') };
}
