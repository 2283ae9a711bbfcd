// The `attack` step: one PGD attack from a spec (e.g. weasel → trailer truck) on the images of its source classes.
// Its outputs are the attack report (results.json with a summary, PNGs per image), cached under the hash of the model,
// the images, the parameters and the compute code.
import { attackImages } from '../../attacks/attack-images.ts';
import { attackReport, uniqueStems } from '../../attacks/attack-report.ts';
import { hashFile } from '../../cache/hash.ts';
import { loadImage } from '../../io/image.ts';
import { CLASSIFIER_CODE, type Classifier } from '../../model/classifier.ts';
import { findClass } from '../../model/classes.ts';
import type { ImageNetClass } from '../../model/model-card.ts';
import { createRng } from '../../random.ts';
import type { LabelledImage } from '../data.ts';
import { RESULTS_JSON, type AttackReportRow } from '../outputs/attack.ts';
import { writeJson } from '../outputs/json-file.ts';
import type { ExperimentSpec } from '../spec.ts';
import { computeInOnePiece, type Sharding, type Step } from '../step.ts';
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
    const stems = uniqueStems(chosen.map((im) => im.name));
    const sharding: Sharding<AttackShard> = {
      unit: 'images',
      // The CPU's largest automatic batch (attacks/attack-images.ts): a shard is one full batch there, and a few
      // seconds to minutes of PGD.
      size: 16,
      async plan(size) {
        const per = Number.isFinite(size) ? Math.max(1, Math.floor(size)) : chosen.length;
        const out: { shard: AttackShard; units: number }[] = [];
        for (let first = 0; first < chosen.length; first += per) {
          const names = chosen.slice(first, first + per).map((im) => im.name);
          out.push({ shard: { first, names }, units: names.length });
        }
        return out;
      },
      async compute({ first, names }, progress) {
        const part = chosen.slice(first, first + names.length);
        if (part.map((im) => im.name).join('\n') !== names.join('\n')) throw new Error(`internal: attack '${id}' shard from image ${first} names other images than this data directory's`);
        const classifier = await env.classifier();
        const inputs = await Promise.all(part.map(async (im) => ({ name: im.name, label: im.label, pixels: await loadImage(im.path, classifier.preprocess) })));
        const results = await attackImages(classifier, inputs, {
          norm: attack.norm, eps: attack.eps, alpha: attack.alpha, steps: attack.steps, target,
          randomStart: attack.random_start, seed, batch: attack.batch, firstImage: first,
        }, (p) => progress((p.batch - 1) * p.steps + p.step, Math.max(1, p.batches * p.steps), `batch ${p.batch}/${p.batches} (${p.images} images), step ${p.step}/${p.steps}`));
        const report = await attackReport(results, classifier, attack.eps, stems.slice(first, first + names.length));
        const files = new Map(report.files);
        // Plain JSON, not the cache's canonical form: the merge averages, and must average the exact values.
        files.set(SHARD_ROWS, new TextEncoder().encode(JSON.stringify(report.rows)));
        return files;
      },
      async merge(_shards, parts) {
        const rows = parts.flatMap((files) => JSON.parse(new TextDecoder().decode(files.get(SHARD_ROWS))) as AttackReportRow[]);
        const n = rows.length;
        if (n !== chosen.length) throw new Error(`internal: attack '${id}' shards returned ${n} rows for ${chosen.length} images`);
        const mean = (f: (r: AttackReportRow) => number) => rows.reduce((a, r) => a + f(r), 0) / n;
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
        const files = new Map<string, Uint8Array>();
        for (const part of parts) for (const [name, bytes] of part) if (name !== SHARD_ROWS) files.set(name, bytes);
        files.set(RESULTS_JSON.file, writeJson(RESULTS_JSON, id, {
          id, kind: 'attack', params, summary,
          rows: rows.map((r) => ({ ...r, credit: credits.get(r.file) ?? {} })),
        }));
        return files;
      },
    };
    steps.push({
      id,
      kind: 'attack',
      params: { model: env.model, images, params },
      code: [import.meta.filename, CLASSIFIER_CODE],
      shards: sharding as Sharding,
      compute: (ctx) => computeInOnePiece(sharding, ctx),
    });
  }
  return steps;
}

/** An attack shard: the images from index `first` of the step's images, named to check a worker has the same ones. */
interface AttackShard {
  first: number;
  names: string[];
}

/** The shard's report rows (its other files are the PNGs). */
const SHARD_ROWS = 'rows.json';

