import type { Rng } from '../../random.ts';
import type { ImageParam } from './param.ts';

/** Lucent's `pixel_image`: the pixels themselves (before colour and sigmoid), initialised at sd 0.01. */
export function pixelImage(o: { batch: number; channels: number; h: number; w: number; sd?: number; rng: Rng }): ImageParam {
  const sd = o.sd ?? 0.01;
  const params = Float32Array.from({ length: o.batch * o.channels * o.h * o.w }, () => o.rng.normal() * sd);
  return { params, dims: [o.batch, o.channels, o.h, o.w], image: (p) => Float32Array.from(p), backward: (g) => Float32Array.from(g) };
}
