// An attack's images as the analyses of it read them: the clean photos at the model's input, the adversarial PNGs the
// attack saved, and the control — each clean image under random noise of the attack's size, drawn from the stream
// `neurons/<attack>` of the spec's seed, so every step that compares with the control (neuron analysis, depth) tests
// against the same noisy images.
import path from 'node:path';
import sharp from 'sharp';
import { controlImage } from '../../attacks/control.ts';
import type { CacheEntry } from '../../cache/store.ts';
import { hwcToChw, loadImage } from '../../io/image.ts';
import type { Classifier } from '../../model/classifier.ts';
import { createRng, type Rng } from '../../random.ts';
import type { AttackResults } from '../outputs/attack.ts';

export interface AttackImages {
  /** [C,H,W] pixels per attacked image, in the rows' order */
  clean: Float32Array[];
  adversarial: Float32Array[];
  /** the attack's stream (`neurons/<attack>` of the spec's seed), for the draws that follow the control's */
  rng: Rng;
  control(): Float32Array[];
}

export async function attackImages(classifier: Classifier, dataDir: string, seed: number, attackId: string, attack: CacheEntry, results: AttackResults): Promise<AttackImages> {
  const [, h, w] = classifier.inputDims;
  const rows = results.rows;
  const clean = await Promise.all(rows.map((r) => loadImage(path.resolve(dataDir, r.file), classifier.preprocess)));
  const adversarial = await Promise.all(rows.map(async (r) => hwcToChw(await sharp(attack.file(r.images.adversarial)).removeAlpha().raw().toBuffer(), h, w)));
  const rng = createRng(seed).fork(`neurons/${attackId}`);
  return {
    clean, adversarial, rng,
    control: () => rows.map((r, i) => controlImage(clean[i], results.params.norm, results.params.eps, rng.fork(`control/${r.file}`))),
  };
}
