// The `attack` step: one PGD attack from a spec (e.g. weasel → trailer truck) on the images of its source classes.
// Its outputs are the attack report (results.json with a summary, PNGs per image), cached under the hash of the model,
// the images, the parameters and the compute code.
import { attackImages } from '../../attacks/attack-images.ts';
import { attackReport } from '../../attacks/attack-report.ts';
import { hashFile } from '../../cache/hash.ts';
import { loadImage } from '../../io/image.ts';
import { CLASSIFIER_CODE, type Classifier } from '../../model/classifier.ts';
import { findClass } from '../../model/classes.ts';
import type { ImageNetClass } from '../../model/model-card.ts';
import { createRng } from '../../random.ts';
import type { LabelledImage } from '../data.ts';
import { RESULTS_JSON } from '../outputs/attack.ts';
import { writeJson } from '../outputs/json-file.ts';
import type { ExperimentSpec } from '../spec.ts';
import type { Step } from '../step.ts';
import { sweepStepId } from '../step-ids.ts';

export interface StepEnv {
  spec: ExperimentSpec;
  /** loaded only when some step has to compute */
  classifier: () => Promise<Classifier>;
  /** what identifies the model in cache keys: file and card hashes, and the execution provider it runs on */
  model: { sha256: string; card: string; ep: string };
  classes: readonly ImageNetClass[];
  images: readonly LabelledImage[];
  /** the images of another folder of the data directory (loaded once) */
  imagesOf: (folder: string) => Promise<readonly LabelledImage[]>;
}

export async function attackSteps(env: StepEnv): Promise<Step[]> {
  const steps: Step[] = [];
  // A sweep keeps the attack's step size relative to its budget, so every ε gets the same number of effective steps.
  const expanded = Object.entries(env.spec.attacks).flatMap(([id, attack]) => [
    [id, attack] as const,
    ...(attack.eps_sweep ?? []).map((eps, k) => [sweepStepId(id, k), { ...attack, eps, alpha: attack.alpha * (eps / attack.eps) }] as const),
  ]);
  for (const [id, attack] of expanded) {
    const where = `attack '${id}'`;
    const resolve = (c: string | number) => {
      try {
        return findClass(c, env.classes);
      } catch (err) {
        throw new Error(`${where}: ${(err as Error).message}`);
      }
    };
    const any = attack.from === '*';
    const sources = any ? [] : (Array.isArray(attack.from) ? attack.from : [attack.from]).map(resolve);
    const target = attack.target === undefined ? undefined : resolve(attack.target);
    const folder = attack.folder ?? env.spec.images.folder;
    const pool = attack.folder ? await env.imagesOf(attack.folder) : env.images;
    const chosen = pool.filter((im) => (any ? im.label !== target : sources.includes(im.label))).slice(0, attack.max_images);
    if (chosen.length === 0) {
      throw new Error(`${where}: no images of ${sources.map((s) => `${env.classes[s].name} (${s})`).join(', ')} in ${folder}`);
    }
    // Each step draws from its own stream of the spec's seed, so adding an attack never changes another's result.
    const seed = createRng(env.spec.seed).fork(`attack:${id}`).uniformInt(0, 2 ** 31 - 1);
    const params = {
      norm: attack.norm, eps: attack.eps, alpha: attack.alpha, steps: attack.steps, target: target ?? null,
      random_start: attack.random_start, seed,
      // A CPU result does not depend on the batch (runtime/memory.ts), so only a batch the spec fixes is part of the key.
      ...(attack.batch === 'auto' ? {} : { batch: attack.batch }),
    };
    // Everything of an image that reaches the results: its credit and licence too, so a withdrawn licence recomputes.
    const images = await Promise.all(chosen.map(async (im) => ({ name: im.name, sha256: await hashFile(im.path), label: im.label, credit: im.meta })));
    steps.push({
      id,
      kind: 'attack',
      params: { model: env.model, images, params },
      code: [import.meta.filename, CLASSIFIER_CODE],
      async compute(ctx) {
        const classifier = await env.classifier();
        const inputs = await Promise.all(chosen.map(async (im) => ({ name: im.name, label: im.label, pixels: await loadImage(im.path, classifier.preprocess) })));
        const results = await attackImages(classifier, inputs, {
          norm: attack.norm, eps: attack.eps, alpha: attack.alpha, steps: attack.steps, target,
          randomStart: attack.random_start, seed, batch: attack.batch,
        }, (p) => ctx.progress((p.batch - 1) * p.steps + p.step, Math.max(1, p.batches * p.steps), `batch ${p.batch}/${p.batches} (${p.images} images), step ${p.step}/${p.steps}`));
        const report = await attackReport(results, classifier, attack.eps);
        const n = report.rows.length;
        const mean = (f: (r: (typeof report.rows)[number]) => number) => report.rows.reduce((a, r) => a + f(r), 0) / n;
        const credits = new Map(chosen.map((im) => [im.name, im.meta]));
        const summary = {
          n,
          sources: sources.map((s) => env.classes[s].name),
          target: target === undefined ? null : env.classes[target].name,
          success_rate: mean((r) => (r.success ? 1 : 0)),
          clean_top1_probability: mean((r) => r.top5_before[0].probability),
          adversarial_top1_probability: mean((r) => r.top5_after[0].probability),
          mean_linf: mean((r) => r.linf),
          mean_l2: mean((r) => r.l2),
        };
        const files = new Map(report.files);
        files.set(RESULTS_JSON.file, writeJson(RESULTS_JSON, id, {
          id, kind: 'attack', params, summary,
          rows: report.rows.map((r) => ({ ...r, credit: credits.get(r.file) ?? {} })),
        }));
        return files;
      },
    });
  }
  return steps;
}
