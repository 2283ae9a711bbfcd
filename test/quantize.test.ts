import { describe, expect, it } from 'vitest';
import { gridToFloat, quantizeInBall, quantizeInL2Ball } from '../src/compute/attacks/quantize.ts';
import { createRng } from '../src/compute/random.ts';

describe('8-bit quantization inside the eps-ball', () => {
  it('L∞: every saved pixel stays within eps of the clean one, for on- and off-grid images and odd eps', () => {
    const rng = createRng(9);
    for (const eps of [4 / 255, 8 / 255, 0.01, 0.003, 1 / 255, 0.5 / 255]) {
      for (const onGrid of [true, false]) {
        const clean = Float32Array.from({ length: 4000 }, () => (onGrid ? Math.round(rng.uniform() * 255) / 255 : rng.uniform()));
        // An adversarial image anywhere in the ball, often on its boundary, as PGD leaves it.
        const adv = clean.map((c) => Math.min(1, Math.max(0, c + eps * (rng.uniform() < 0.5 ? Math.sign(rng.uniform() - 0.5) : 2 * rng.uniform() - 1))));
        const saved = gridToFloat(quantizeInBall(adv, clean, eps));
        for (let k = 0; k < clean.length; k++) {
          const bound = onGrid || eps >= 1 / 255 ? eps + 1e-6 : Math.max(eps, 0.5 / 255) + 1e-6;
          expect(Math.abs(saved[k] - clean[k])).toBeLessThanOrEqual(bound);
          expect(saved[k] >= 0 && saved[k] <= 1).toBe(true);
        }
      }
    }
  });

  it('L∞: a float32 pixel on the grid can move the whole budget (4 levels for 4/255), not a level less', () => {
    const clean = Float32Array.from({ length: 256 }, (_, v) => v / 255);
    const up = Float32Array.from(clean, (c) => Math.min(1, c + 4 / 255));
    const down = Float32Array.from(clean, (c) => Math.max(0, c - 4 / 255));
    expect(Array.from(quantizeInBall(up, clean, 4 / 255))).toEqual(Array.from({ length: 256 }, (_, v) => Math.min(255, v + 4)));
    expect(Array.from(quantizeInBall(down, clean, 4 / 255))).toEqual(Array.from({ length: 256 }, (_, v) => Math.max(0, v - 4)));
  });

  it('rounds to the nearest level when the ball is not binding', () => {
    const clean = Float32Array.from([128 / 255, 51 / 255, 230 / 255]);
    const adv = Float32Array.from([(128 + 1.4) / 255, (51 - 0.6) / 255, (230 + 0.5 - 1e-3) / 255]);
    expect(Array.from(quantizeInBall(adv, clean, 4 / 255))).toEqual([129, 50, 230]);
  });

  it('L2: the saved perturbation is no longer than eps', () => {
    const rng = createRng(4);
    const n = 3;
    const per = 300;
    const clean = Float32Array.from({ length: n * per }, () => Math.round(rng.uniform() * 255) / 255);
    const eps = 0.3;
    const adv = new Float32Array(clean.length);
    for (let i = 0; i < n; i++) {
      const dir = Array.from({ length: per }, () => rng.normal());
      const norm = Math.hypot(...dir);
      for (let k = 0; k < per; k++) adv[i * per + k] = Math.min(1, Math.max(0, clean[i * per + k] + (eps * dir[k]) / norm));
    }
    const saved = gridToFloat(quantizeInL2Ball(adv, clean, eps, n));
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = 0; k < per; k++) s += (saved[i * per + k] - clean[i * per + k]) ** 2;
      expect(Math.sqrt(s)).toBeLessThanOrEqual(eps + 1e-6);
    }
  });
});
