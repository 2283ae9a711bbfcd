// One attack over a set of images, batched: clean predictions, PGD on the model's cross-entropy, the adversarial
// image rounded onto the 8-bit pixel grid inside the eps-ball (what gets saved and shown), and the predictions on
// that saved image. The CLI and the build pipeline both call this; neither knows how PGD works.
import { crossEntropy } from '../autodiff/objectives.ts';
import type { Classifier } from '../model/classifier.ts';
import { argmax, topK, type Prediction } from '../model/predictions.ts';
import { l2PerImage, linfPerImage } from './perturbation-stats.ts';
import { bytesPerImage, chooseBatch, deviceMemory } from '../runtime/memory.ts';
import { devicePgd } from './device-pgd.ts';
import { gridToFloat, quantizeInBall, quantizeInL2Ball } from './quantize.ts';

export interface AttackOptions {
  norm: 'linf' | 'l2';
  eps: number;
  alpha: number;
  steps: number;
  /** target class for a targeted attack (every image); untargeted when undefined */
  target?: number;
  randomStart?: boolean;
  seed?: number;
  /** stop a batch once every image in it has succeeded (off by default so runs stay comparable) */
  earlyStop?: boolean;
  /** images per run; 'auto' (the default) fits it to the provider's free memory (runtime/memory.ts) */
  batch?: number | 'auto';
  /** told which batch 'auto' chose, and why */
  onBatch?: (reason: string) => void;
  /**
   * The index of `inputs[0]` in the whole attack (default 0). Random starts are drawn per image index, so a shard of
   * the images (pipeline/steps/attack.ts) draws the same starts as the whole run.
   */
  firstImage?: number;
}

export interface AttackInput {
  name: string;
  /** [C,H,W] in [0,1] */
  pixels: Float32Array;
  /** true class (cross-entropy label for untargeted attacks); the clean top-1 when unknown */
  label?: number;
}

export interface AttackResult {
  name: string;
  label: number;
  labelSource: 'given' | 'prediction';
  target?: number;
  top5Before: Prediction[];
  top5After: Prediction[];
  success: boolean;
  /** perturbation of the saved (8-bit) image, in [0,1] pixel units */
  linf: number;
  l2: number;
  steps: number;
  lossBefore: number;
  lossAfter: number;
  clean: Float32Array;
  /** the saved adversarial image, on the 8-bit grid, [C,H,W] in [0,1] */
  adversarial: Float32Array;
  adversarialBytes: Uint8Array;
}

export interface AttackProgress {
  batch: number;
  batches: number;
  step: number;
  steps: number;
  images: number;
}

export async function attackImages(
  classifier: Classifier,
  inputs: readonly AttackInput[],
  opts: AttackOptions,
  onProgress?: (p: AttackProgress) => void,
): Promise<AttackResult[]> {
  const { model, classes } = classifier;
  const [c, h, w] = classifier.inputDims;
  const per = c * h * w;
  const k = classes.length;
  if (opts.target !== undefined && !(Number.isInteger(opts.target) && opts.target >= 0 && opts.target < k)) {
    throw new Error(`target class ${opts.target} is out of range: must be an integer in [0, ${k - 1}]`);
  }
  for (const input of inputs) {
    if (input.pixels.length !== per) throw new Error(`${input.name}: expected ${c}×${h}×${w} pixels, got ${input.pixels.length} values`);
    if (input.label !== undefined && !(Number.isInteger(input.label) && input.label >= 0 && input.label < k)) {
      throw new Error(`${input.name}: label ${input.label} is out of range: must be an integer in [0, ${k - 1}]`);
    }
  }
  let batchSize: number;
  if (opts.batch === undefined || opts.batch === 'auto') {
    const ep = model.session.ep ?? 'cpu';
    // The CPU's throughput stops growing after a few images (npm run bench); a GPU's keeps growing to dozens.
    const choice = chooseBatch(bytesPerImage(model.prepared), await deviceMemory(ep), { max: ep === 'cpu' ? 16 : 64 });
    batchSize = choice.batch;
    opts.onBatch?.(choice.reason);
  } else {
    batchSize = Math.max(1, Math.floor(opts.batch));
  }
  const batches = Math.ceil(inputs.length / batchSize);
  const results: AttackResult[] = [];
  for (let bi = 0; bi < batches; bi++) {
    const chunk = inputs.slice(bi * batchSize, (bi + 1) * batchSize);
    const n = chunk.length;
    const x = new Float32Array(n * per);
    chunk.forEach((input, i) => x.set(input.pixels, i * per));
    const evaluated = Int32Array.from(chunk, (input) => input.label ?? 0);
    const clean = await model.evaluate(x, crossEntropy(), evaluated);
    const cleanTop1 = chunk.map((_, i) => argmax(clean.logits, i, k));
    const labels = Int32Array.from(chunk, (input, i) => input.label ?? cleanTop1[i]);
    const lossLabels = opts.target === undefined ? labels : new Int32Array(n).fill(opts.target);
    const succeeded = (logits: ArrayLike<number>, i: number) =>
      opts.target === undefined ? argmax(logits, i, k) !== cleanTop1[i] : argmax(logits, i, k) === opts.target;
    const run = await devicePgd(model, x, [n, c, h, w], lossLabels, {
      norm: opts.norm,
      eps: opts.eps,
      alpha: opts.alpha,
      steps: opts.steps,
      targeted: opts.target !== undefined,
      randomStart: opts.randomStart,
      // Each image draws its own random start, so the result does not depend on the batch size.
      seed: opts.seed,
      firstImage: (opts.firstImage ?? 0) + bi * batchSize,
      earlyStop: opts.earlyStop ? succeeded : undefined,
      onStep: (step) => onProgress?.({ batch: bi + 1, batches, step, steps: opts.steps, images: n }),
    });
    const bytes = opts.norm === 'linf' ? quantizeInBall(run.adv, x, opts.eps, 'linf') : quantizeInL2Ball(run.adv, x, opts.eps, n);
    const saved = gridToFloat(bytes);
    const after = await model.evaluate(saved, crossEntropy(), lossLabels);
    const linf = linfPerImage(saved, x, n);
    const l2 = l2PerImage(saved, x, n);
    // The loss before is the one the attack climbed: of the target, or of the label (a photo without one climbs its clean
    // top-1, which the first evaluation could not know).
    const cleanLoss = lossLabels.every((l, i) => l === evaluated[i])
      ? clean.objective
      : (await model.evaluate(x, crossEntropy(), lossLabels)).objective;
    chunk.forEach((input, i) => {
      results.push({
        name: input.name,
        label: labels[i],
        labelSource: input.label === undefined ? 'prediction' : 'given',
        target: opts.target,
        top5Before: topK(clean.logits, i, 5, classes),
        top5After: topK(after.logits, i, 5, classes),
        success: succeeded(after.logits, i),
        linf: linf[i],
        l2: l2[i],
        steps: run.steps,
        lossBefore: cleanLoss[i],
        lossAfter: after.objective[i],
        clean: input.pixels,
        adversarial: saved.slice(i * per, (i + 1) * per),
        adversarialBytes: bytes.slice(i * per, (i + 1) * per),
      });
    });
  }
  return results;
}
