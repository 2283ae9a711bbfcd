// How much of an image's energy sits at high spatial frequencies: the check that a feature visualization shows
// structure rather than the checkerboard noise an unregularised pixel optimisation produces. Measured on luminance,
// mean removed, as the fraction of the spectrum's energy (DC excluded) above half the Nyquist frequency.
// Natural photographs put a few percent there (their spectra fall as 1/f²); adversarial-noise images put half.
import { makeDft, type Dft } from './param/dft.ts';

/** Radial frequency, in cycles per pixel, above which energy counts as high (Nyquist is 0.5). */
export const HIGH_FREQUENCY = 0.25;

/** Fraction of the (non-DC) spectral energy of `image` [3,H,W] above {@link HIGH_FREQUENCY}. */
export function highFrequencyFraction(image: ArrayLike<number>, h: number, w: number): number {
  const plane = h * w;
  const { rows, cols, high: isHigh, spectrum, line } = planFor(h, w);
  // ITU-R BT.601 luma: the eye's (and the photos') dominant channel.
  let mean = 0;
  for (let i = 0; i < plane; i++) {
    const luma = 0.299 * image[i] + 0.587 * image[plane + i] + 0.114 * image[2 * plane + i];
    spectrum[2 * i] = luma;
    mean += luma / plane;
  }
  for (let i = 0; i < plane; i++) {
    spectrum[2 * i] -= mean;
    spectrum[2 * i + 1] = 0;
  }
  for (let y = 0; y < h; y++) rows.forward(spectrum.subarray(2 * y * w, 2 * (y + 1) * w));
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++) {
      line[2 * y] = spectrum[2 * (y * w + x)];
      line[2 * y + 1] = spectrum[2 * (y * w + x) + 1];
    }
    cols.forward(line);
    for (let y = 0; y < h; y++) {
      spectrum[2 * (y * w + x)] = line[2 * y];
      spectrum[2 * (y * w + x) + 1] = line[2 * y + 1];
    }
  }
  let total = 0;
  let high = 0;
  for (let k = 0; k < plane; k++) {
    const e = spectrum[2 * k] ** 2 + spectrum[2 * k + 1] ** 2;
    total += e;
    if (isHigh[k]) high += e;
  }
  return total === 0 ? 0 : high / total;
}

interface Plan {
  rows: Dft;
  cols: Dft;
  /** [H,W]: 1 where the frequency's radius exceeds HIGH_FREQUENCY */
  high: Uint8Array;
  /** [H,W] complex, interleaved */
  spectrum: Float64Array;
  /** one column, complex */
  line: Float64Array;
}

// The reference set's 3100 photos are measured at one size: its transforms, radii and buffers are made once.
let plan: (Plan & { h: number; w: number }) | undefined;

function planFor(h: number, w: number): Plan {
  if (plan?.h === h && plan.w === w) return plan;
  const high = new Uint8Array(h * w);
  for (let ky = 0; ky < h; ky++) {
    const fy = Math.min(ky, h - ky) / h;
    for (let kx = 0; kx < w; kx++) {
      const fx = Math.min(kx, w - kx) / w;
      high[ky * w + kx] = Math.hypot(fy, fx) > HIGH_FREQUENCY ? 1 : 0;
    }
  }
  plan = { h, w, rows: makeDft(w), cols: makeDft(h), high, spectrum: new Float64Array(2 * h * w), line: new Float64Array(2 * h) };
  return plan;
}
