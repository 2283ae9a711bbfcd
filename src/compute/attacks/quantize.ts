// Saved adversarial images are 8-bit PNGs. Rounding to the nearest grey level can push a pixel just outside the
// eps-ball (x₀ + ε may fall between two levels), so the rounding is constrained to the grid values inside the ball:
// what a reader downloads is a valid adversarial example for the stated ε.
import { LEVELS } from '../io/levels.ts';

/** Round onto the 8-bit grid inside the L∞ ball of radius eps around `clean` and inside [0,255]. */
export function quantizeInBall(adv: ArrayLike<number>, clean: ArrayLike<number>, eps: number, _norm: 'linf' = 'linf'): Uint8Array {
  const out = new Uint8Array(adv.length);
  for (let k = 0; k < adv.length; k++) {
    // The slack absorbs float error when eps is an exact multiple of 1/255 and the clean pixel is on the grid: a
    // float32 v/255 times 255 is off by up to ~1.5e-5 levels, which a smaller slack turns into a lost level (3/255
    // instead of 4/255). 2e-4 of a level is 8e-7 in pixel units, so an off-grid pixel exceeds ε by less than 1e-6.
    const lo = Math.max(0, Math.ceil(255 * (clean[k] - eps) - 2e-4));
    const hi = Math.min(255, Math.floor(255 * (clean[k] + eps) + 2e-4));
    const v = Math.round(255 * adv[k]);
    // An empty interval only happens for an off-grid clean pixel with eps < 1/255: take the level nearest to it.
    out[k] = lo > hi ? Math.min(255, Math.max(0, Math.round(255 * clean[k]))) : Math.min(hi, Math.max(lo, v));
  }
  return out;
}

/**
 * Round onto the 8-bit grid, then restore the L2 bound per image: while the rounded perturbation is longer than eps,
 * move the value whose rounding lengthened it most one level back toward the clean pixel.
 */
export function quantizeInL2Ball(adv: ArrayLike<number>, clean: ArrayLike<number>, eps: number, n: number): Uint8Array {
  const out = new Uint8Array(adv.length);
  const per = adv.length / n;
  for (let k = 0; k < adv.length; k++) out[k] = Math.min(255, Math.max(0, Math.round(255 * adv[k])));
  for (let i = 0; i < n; i++) {
    const idx = Array.from({ length: per }, (_, j) => i * per + j);
    const dist2 = () => idx.reduce((s, k) => s + (out[k] / 255 - clean[k]) ** 2, 0);
    let d2 = dist2();
    if (d2 <= eps * eps) continue;
    // Largest outward rounding first: these moves shrink the norm most per changed level.
    const order = idx
      .map((k) => ({ k, excess: Math.abs(out[k] / 255 - clean[k]) - Math.abs(adv[k] - clean[k]) }))
      .sort((a, b) => b.excess - a.excess);
    for (let pass = 0; d2 > eps * eps && pass < 255; pass++) {
      let moved = false;
      for (const { k } of order) {
        if (d2 <= eps * eps) break;
        const diff = out[k] / 255 - clean[k];
        if (Math.abs(diff) < 0.5 / 255) continue;
        const before = diff * diff;
        out[k] += diff > 0 ? -1 : 1;
        d2 += (out[k] / 255 - clean[k]) ** 2 - before;
        moved = true;
      }
      if (!moved) break;
    }
  }
  return out;
}

export function gridToFloat(u8: Uint8Array): Float32Array {
  const out = new Float32Array(u8.length);
  for (let k = 0; k < u8.length; k++) out[k] = LEVELS[u8[k]];
  return out;
}
