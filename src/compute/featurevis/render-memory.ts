// How large an image feature visualization can render here. Every pixel of every image in the batch lives in several
// float32 buffers while it is optimised: the parameters and their two Adam moments, the image, its gradient, and a
// buffer per transform stage and FFT pass. Sixteen such buffers bound that generously, so a size refused here would
// otherwise die with an allocation failure part-way, and one allowed fits.
import os from 'node:os';

export const BUFFERS_PER_PIXEL = 16;
/** The most elements one Float32Array may hold in V8: a batch's images share one. */
const MAX_ARRAY_LENGTH = 2 ** 32 - 1;

/** Bytes that `images` images of `size`×`size` px take while rendering. */
export function renderBytes(images: number, size: number): number {
  return images * 3 * size * size * 4 * BUFFERS_PER_PIXEL;
}

/** The largest side `images` images may have on a machine with `memory` bytes. */
export function maxRenderSize(images: number, memory = os.totalmem()): number {
  const byMemory = Math.sqrt(memory / renderBytes(images, 1));
  const byArray = Math.sqrt(MAX_ARRAY_LENGTH / (images * 3));
  return Math.floor(Math.min(byMemory, byArray));
}
