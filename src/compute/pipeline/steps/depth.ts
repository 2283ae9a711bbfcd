// The `depth` step (spec `depth:`): fragility through the whole network, not two chosen layers. For every layer the
// pattern names (`all`: every block output), the natural spread σ of each neuron over the reference photos and, per
// attack, the same test as the neuron analysis (analysis/fragility-effect.ts: each neuron's effect against the
// attack's control, sign-flip p, BH across the layer) — summarized per layer as the share of fragile neurons and the
// layer's mean effect with a bootstrap interval over the attacked images. The layers and σ are the `activations`
// step's, taken in its pass over the reference set (depth-layers.ts says which layers); here only the attacked
// images run.
import { layerFragilityEffect, MIN_IMAGES, standardizedChanges } from '../../analysis/fragility-effect.ts';
import { recordLayers } from '../../analysis/record.ts';
import { bootstrapMean } from '../../analysis/statistics/bootstrap.ts';
import { CLASSIFIER_CODE, type Classifier } from '../../model/classifier.ts';
import { RESULTS_JSON } from '../outputs/attack.ts';
import { DEPTH_JSON, type Depth } from '../outputs/depth.ts';
import { readJson, writeJson } from '../outputs/json-file.ts';
import type { Step } from '../step.ts';
import { ACTIVATIONS, DEPTH } from '../step-ids.ts';
import { depthSpread, type AnalysisEnv } from './activations.ts';
import { attackImages } from './attack-images.ts';
import { alignmentParams } from './depth-layers.ts';

const CI_LEVEL = 0.95;

export function depthStep(env: AnalysisEnv): Step[] {
  const { spec } = env;
  if (!spec.depth) return [];
  const pattern = spec.depth;
  const a = spec.analysis;
  const attacks = Object.keys(spec.attacks);
  return [{
    id: DEPTH,
    kind: 'depth',
    // ACTIVATIONS for σ over the reference set.
    needs: [...attacks, ACTIVATIONS],
    params: { model: env.model, pattern, fdr: a.fdr, min_effect: a.min_effect, batch: a.batch, seed: spec.seed, ...alignmentParams(env.alignTo) },
    code: [import.meta.filename, CLASSIFIER_CODE],
    async compute(ctx) {
      const classifier = await env.classifier();
      // The layers (for a compared model, as aligned) and σ are the activations step's, so the two always agree.
      const { layers, sigma: spread, aligned } = await depthSpread(ctx.dependency(ACTIVATIONS), DEPTH);
      const alignedOf = new Map(aligned?.flatMap((l) => (l.to === null ? [] : [[l.to, l] as const])));
      const info = layers.map((name) => classifier.model.layers.find((l) => l.name === name)!);
      const out: Depth['attacks'] = {};
      for (const attackId of attacks) {
        ctx.progress(Object.keys(out).length, attacks.length, `attack ${attackId}`);
        const attack = ctx.dependency(attackId);
        const results = await readJson(RESULTS_JSON, attack, DEPTH, attackId);
        const rows = results.rows;
        // The neuron analysis's images and control noise, so both steps test against the same control.
        const images = await attackImages(classifier, env.dataDir, spec.seed, attackId, attack, results);
        const { rng } = images;
        const mc = await imageMeans(classifier, images.clean, layers, a.batch);
        const ma = await imageMeans(classifier, images.adversarial, layers, a.batch);
        const mx = await imageMeans(classifier, images.control(), layers, a.batch);
        const descriptive = rows.length < MIN_IMAGES;
        const points = layers.map((layer, li) => {
          const channels = info[li].dims[1];
          const opts = { channels, clean: mc[li], adversarial: ma[li], control: mx[li], sigma: spread[li] };
          const z = standardizedChanges(opts);
          // Per image, the layer's mean |z_adv| − |z_ctrl|: the unit the interval resamples.
          const perImage = Float64Array.from({ length: z.n }, (_, i) => {
            let s = 0;
            for (let c = 0; c < channels; c++) s += Math.abs(z.adversarial[i * channels + c]) - Math.abs(z.control[i * channels + c]);
            return s / channels;
          });
          const boot = bootstrapMean(perImage, { seed: rng.fork(`depth/${layer}/bootstrap`), level: CI_LEVEL });
          const f = descriptive ? null : layerFragilityEffect({ ...opts, seed: rng.fork(`depth/${layer}/test`).uniformInt(0, 2 ** 31 - 1), fdr: a.fdr, minEffect: a.min_effect });
          return {
            layer,
            fragile: f ? f.fragile : null,
            fraction: f ? f.fragile / channels : null,
            mean_effect: boot.mean,
            ci: descriptive ? null : [boot.ci[0], boot.ci[1]] as [number, number],
          };
        });
        const shares = points.flatMap((pt) => (pt.fraction === null ? [] : [{ layer: pt.layer, fraction: pt.fraction }]));
        // The first layer of largest share: ties go to the shallower layer.
        const peak = shares.reduce<(typeof shares)[number] | null>((best, x) => (best === null || x.fraction > best.fraction ? x : best), null);
        out[attackId] = { n: rows.length, descriptive, points, first: shares[0] ?? null, peak, last: shares.at(-1) ?? null };
      }
      const depth: Depth = {
        pattern, n_reference: env.reference.length, fdr: a.fdr, min_effect: a.min_effect, ci_level: CI_LEVEL, attacks: out,
        layers: info.map((l) => {
          const al = alignedOf.get(l.name);
          return { layer: l.name, channels: l.dims[1], spatial: [l.dims[2], l.dims[3]] as [number, number], aligned: al ? { layer: al.layer, how: al.how as 'name' | 'activations', correlation: al.correlation } : null };
        }),
        unaligned: aligned?.filter((l) => l.to === null).map((l) => ({ layer: l.layer, correlation: l.correlation })) ?? [],
      };
      return new Map([[DEPTH_JSON.file, writeJson(DEPTH_JSON, DEPTH, depth)]]);
    },
  }];
}

/** Spatial means [N,C] of the images in each layer, averaged in the graph: only [N,C] per layer leaves onnxruntime. */
async function imageMeans(classifier: Classifier, images: readonly Float32Array[], layers: readonly string[], batch: number): Promise<Float32Array[]> {
  const { means } = await recordLayers(classifier, images.length, async (i) => images[i], { layers: [], means: layers }, batch);
  return layers.map((layer) => means.get(layer)?.values ?? new Float32Array(0));
}
