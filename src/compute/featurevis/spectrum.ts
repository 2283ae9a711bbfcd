// How much of an image's energy sits at high spatial frequencies: the check that a feature visualization shows
// structure rather than the checkerboard noise an unregularised pixel optimisation produces. Measured on luminance,
// mean removed, as the fraction of the spectrum's energy (DC excluded) above half the Nyquist frequency.
// Natural photographs put a few percent there (their spectra fall as 1/f²); adversarial-noise images put half.
import { makeDft } from './param/dft.ts';

/** Radial frequency, in cycles per pixel, above which energy counts as high (Nyquist is 0.5). */
export const HIGH_FREQUENCY = 0.25;

/** Fraction of the (non-DC) spectral energy of `image` [3,H,W] above {@link HIGH_FREQUENCY}. */
export function highFrequencyFraction(image: ArrayLike<number>, h: number, w: number): number {
  const plane = h * w;
  // ITU-R BT.601 luma: the eye's (and the photos') dominant channel.
  const luma = new Float64Array(plane);
  let mean = 0;
  for (let i = 0; i < plane; i++) {
    luma[i] = 0.299 * image[i] + 0.587 * image[plane + i] + 0.114 * image[2 * plane + i];
    mean += luma[i] / plane;
  }
  const spectrum = new Float64Array(2 * plane);
  for (let i = 0; i < plane; i++) spectrum[2 * i] = luma[i] - mean;
  const rows = makeDft(w);
  const cols = makeDft(h);
  const line = new Float64Array(2 * Math.max(h, w));
  for (let y = 0; y < h; y++) {
    const row = spectrum.subarray(2 * y * w, 2 * (y + 1) * w);
    rows.forward(row);
  }
  for (let x = 0; x < w; x++) {
    const col = line.subarray(0, 2 * h);
    for (let y = 0; y < h; y++) [col[2 * y], col[2 * y + 1]] = [spectrum[2 * (y * w + x)], spectrum[2 * (y * w + x) + 1]];
    cols.forward(col);
    for (let y = 0; y < h; y++) [spectrum[2 * (y * w + x)], spectrum[2 * (y * w + x) + 1]] = [col[2 * y], col[2 * y + 1]];
  }
  let total = 0;
  let high = 0;
  for (let ky = 0; ky < h; ky++) {
    const fy = Math.min(ky, h - ky) / h;
    for (let kx = 0; kx < w; kx++) {
      const fx = Math.min(kx, w - kx) / w;
      const e = spectrum[2 * (ky * w + kx)] ** 2 + spectrum[2 * (ky * w + kx) + 1] ** 2;
      total += e;
      if (Math.hypot(fy, fx) > HIGH_FREQUENCY) high += e;
    }
  }
  return total === 0 ? 0 : high / total;
}
