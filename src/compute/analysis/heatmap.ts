// A neuron's spatial activation map on the image it came from, and the numbers that say how an attack moved
// it: the centre of mass of the activation (in input pixels) and the share of its mass inside the "object", taken
// as the top of the clean map (cells at ≥ 50 % of its maximum), since the photographs carry no masks.
import type { ReceptiveField } from './receptive-field.ts';

/** Bilinear resampling of a [h,w] map onto the input grid, each cell placed at its receptive-field centre. */
export function upsample(map: ArrayLike<number>, h: number, w: number, f: ReceptiveField, outH: number, outW: number): Float32Array {
  const out = new Float32Array(outH * outW);
  const coord = (p: number, a: 0 | 1, n: number) => Math.min(n - 1, Math.max(0, (p - f.start[a]) / f.jump[a]));
  for (let y = 0; y < outH; y++) {
    const fy = coord(y, 0, h);
    const y0 = Math.floor(fy);
    const y1 = Math.min(h - 1, y0 + 1);
    const ty = fy - y0;
    for (let x = 0; x < outW; x++) {
      const fx = coord(x, 1, w);
      const x0 = Math.floor(fx);
      const x1 = Math.min(w - 1, x0 + 1);
      const tx = fx - x0;
      const top = map[y0 * w + x0] * (1 - tx) + map[y0 * w + x1] * tx;
      const bottom = map[y1 * w + x0] * (1 - tx) + map[y1 * w + x1] * tx;
      out[y * outW + x] = top * (1 - ty) + bottom * ty;
    }
  }
  return out;
}

export interface MapShift {
  /** centre of mass [row, col] in input pixels, of the positive activation */
  com_clean: [number, number] | null;
  com_adversarial: [number, number] | null;
  /** distance between the two, in input pixels */
  com_shift: number | null;
  /** share of positive activation inside the object region (top of the clean map) */
  inside_clean: number | null;
  inside_adversarial: number | null;
}

export function mapShift(clean: ArrayLike<number>, adversarial: ArrayLike<number>, h: number, w: number, f: ReceptiveField): MapShift {
  const com = (m: ArrayLike<number>): [number, number] | null => {
    let total = 0;
    let sy = 0;
    let sx = 0;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const v = Math.max(0, m[y * w + x]);
      total += v;
      sy += v * (f.start[0] + y * f.jump[0]);
      sx += v * (f.start[1] + x * f.jump[1]);
    }
    return total > 0 ? [sy / total, sx / total] : null;
  };
  let peak = 0;
  for (let k = 0; k < h * w; k++) peak = Math.max(peak, clean[k]);
  const inside = (m: ArrayLike<number>) => {
    if (peak <= 0) return null;
    let total = 0;
    let within = 0;
    for (let k = 0; k < h * w; k++) {
      const v = Math.max(0, m[k]);
      total += v;
      if (clean[k] >= 0.5 * peak) within += v;
    }
    return total > 0 ? within / total : null;
  };
  const a = com(clean);
  const b = com(adversarial);
  return {
    com_clean: a,
    com_adversarial: b,
    com_shift: a && b ? Math.hypot(a[0] - b[0], a[1] - b[1]) : null,
    inside_clean: inside(clean),
    inside_adversarial: inside(adversarial),
  };
}
