// A fragility ranking that never sees the image it is used on (cross-fitting). Ranking neurons by their fragility
// effect on the same images that activation patching then tests favours the ranking: a neuron that happened to move
// most on image i ranks high and is then patched on image i. Here the images are split into K folds at random (seeded),
// and the images of fold f are patched with the order measured on the other folds only, so every image is tested with
// a held-out ranking and none is left out of the test. The effect is the neuron analysis's (fragility-effect.ts):
// mean over images of |z_adv| − |z_ctrl|, in natural σ with the same σ floor.
import type { Rng } from '../random.ts';
import { standardizedChanges } from './fragility-effect.ts';

export interface HeldOutOrders {
  /** [N] the fold of each image */
  folds: number[];
  /** per fold, every channel once, largest effect on the OTHER folds' images first (ties: lower channel first) */
  orders: number[][];
  /** every channel once, by the effect over all images (the neuron analysis's order, for reference) */
  all: number[];
}

export interface HeldOutOptions {
  channels: number;
  /** spatial means [N,C] of the clean, adversarial and control images at the layer */
  clean: ArrayLike<number>;
  adversarial: ArrayLike<number>;
  control: ArrayLike<number>;
  /** [C] natural standard deviation over the clean reference set */
  sigma: ArrayLike<number>;
  /** folds (≥ 2, at most the number of images) */
  k: number;
  rng: Rng;
}

export function heldOutOrders(opts: HeldOutOptions): HeldOutOrders {
  const { channels, k } = opts;
  const z = standardizedChanges(opts);
  const n = z.n;
  if (!(Number.isInteger(k) && k >= 2 && k <= n)) throw new RangeError(`folds must be an integer in [2, ${n}] for ${n} images, got ${k}`);
  // A random permutation dealt round-robin: fold sizes differ by at most one.
  const perm = [...Array(n).keys()];
  for (let j = n - 1; j > 0; j--) {
    const r = opts.rng.uniformInt(0, j);
    [perm[j], perm[r]] = [perm[r], perm[j]];
  }
  const folds = new Array<number>(n);
  perm.forEach((image, j) => { folds[image] = j % k; });
  const orderOver = (use: (i: number) => boolean) => {
    const effect = new Float64Array(channels);
    for (let i = 0; i < n; i++) {
      if (!use(i)) continue;
      for (let c = 0; c < channels; c++) effect[c] += Math.abs(z.adversarial[i * channels + c]) - Math.abs(z.control[i * channels + c]);
    }
    // Sums, not means: within one order every channel has the same number of images, so the order is the same.
    return [...effect.keys()].sort((a, b) => effect[b] - effect[a] || a - b);
  };
  return {
    folds,
    orders: Array.from({ length: k }, (_, f) => orderOver((i) => folds[i] !== f)),
    all: orderOver(() => true),
  };
}
