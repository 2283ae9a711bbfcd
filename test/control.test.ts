// The attack's control: random noise of the attack's size, on the saved images' 8-bit grid and inside the same ball.
import { describe, expect, it } from 'vitest';
import { controlImage } from '../src/compute/attacks/control.ts';
import { createRng } from '../src/compute/random.ts';

/** A clean image on the 8-bit grid, as loaded photos are, with values at both ends of the range. */
function cleanImage(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, k) => ((k * 37) % 256) / 255);
}

describe('control perturbation', () => {
  it('L∞: every value moves by ±ε where [0,1] allows, on the grid, with fair signs; the same seed gives the same bytes', () => {
    const clean = cleanImage(3 * 32 * 32);
    const eps = 4 / 255;
    const a = controlImage(clean, 'linf', eps, createRng(7).fork('control'));
    let up = 0;
    let inside = 0;
    for (let k = 0; k < clean.length; k++) {
      const d = a[k] - clean[k];
      expect(Math.abs(d)).toBeLessThanOrEqual(eps + 1e-6);
      expect(Math.abs(a[k] * 255 - Math.round(a[k] * 255))).toBeLessThan(1e-4);
      // Away from the ends of the range the move is exactly ε, one way or the other.
      if (clean[k] >= eps && clean[k] <= 1 - eps) {
        inside++;
        expect(Math.abs(Math.abs(d) - eps)).toBeLessThan(1e-6);
        if (d > 0) up++;
      }
    }
    // 3072 fair signs: the share up lies within 0.5 ± 0.05 (over 5 standard deviations).
    expect(Math.abs(up / inside - 0.5)).toBeLessThan(0.05);
    expect(controlImage(clean, 'linf', eps, createRng(7).fork('control'))).toEqual(a);
    expect(controlImage(clean, 'linf', eps, createRng(8).fork('control'))).not.toEqual(a);
  });

  it('L2: a random direction whose saved length is at most ε, and most of ε', () => {
    const clean = cleanImage(3 * 32 * 32);
    const eps = 0.5;
    const a = controlImage(clean, 'l2', eps, createRng(3));
    let d2 = 0;
    for (let k = 0; k < clean.length; k++) d2 += (a[k] - clean[k]) ** 2;
    expect(Math.sqrt(d2)).toBeLessThanOrEqual(eps + 1e-6);
    // Rounding 3072 values of ≈ 0.009 each onto a 1/255 grid, and clipping at 0 and 1, keeps most of the length.
    expect(Math.sqrt(d2)).toBeGreaterThan(0.7 * eps);
  });
});
