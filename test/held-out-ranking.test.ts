// Cross-fitted fragility rankings (analysis/held-out-ranking.ts): an image's order never reflects that image. Planted
// data with the expected orders worked out here: a neuron every image moves ranks first in every fold, a neuron only
// one image moves ranks first only in the order the OTHER fold is patched with (an in-sample ranking would put it
// first for that image too), and the control is subtracted.
import { describe, expect, it } from 'vitest';
import { heldOutOrders } from '../src/compute/analysis/held-out-ranking.ts';
import { createRng } from '../src/compute/random.ts';

const C = 4;
const N = 10;

/** [N,C] rows from a function of (image, channel). */
const rows = (f: (i: number, c: number) => number) => Float64Array.from({ length: N * C }, (_, k) => f(Math.floor(k / C), k % C));
const clean = rows(() => 1);
const sigma = [1, 1, 1, 1];

describe('held-out fragility orders', () => {
  it('puts a neuron every image moves first in every fold, and one image\'s outlier only in the other fold\'s order', () => {
    // Channel 1 moves by 3 σ on every image; channel 2 by 100 σ on image 0 only; channels 0 and 3 stay.
    const adversarial = rows((i, c) => 1 + (c === 1 ? 3 : 0) + (c === 2 && i === 0 ? 100 : 0));
    const r = heldOutOrders({ channels: C, clean, adversarial, control: clean, sigma, k: 2, rng: createRng(7) });
    const own = r.folds[0];
    const other = 1 - own;
    expect(r.orders[own][0]).toBe(1);
    expect(r.orders[own].indexOf(2)).toBeGreaterThan(1);
    expect(r.orders[other].slice(0, 2)).toEqual([2, 1]);
    // Over all images the outlier's mean (100/10 = 10) beats channel 1's 3.
    expect(r.all.slice(0, 2)).toEqual([2, 1]);
  });

  it('subtracts the control: a neuron that noise moves as far as the attack does not rank first', () => {
    const adversarial = rows((_, c) => 1 + (c === 0 ? 5 : c === 3 ? 2 : 0));
    const control = rows((_, c) => 1 + (c === 0 ? 5 : 0));
    const r = heldOutOrders({ channels: C, clean, adversarial, control, sigma, k: 2, rng: createRng(1) });
    for (const order of [...r.orders, r.all]) expect(order[0]).toBe(3);
  });

  it('deals the images into folds of equal size, by the seed', () => {
    const r = heldOutOrders({ channels: C, clean, adversarial: clean, control: clean, sigma, k: 3, rng: createRng(3) });
    const sizes = [0, 1, 2].map((f) => r.folds.filter((x) => x === f).length).sort();
    expect(sizes).toEqual([3, 3, 4]);
    expect(heldOutOrders({ channels: C, clean, adversarial: clean, control: clean, sigma, k: 3, rng: createRng(3) }).folds).toEqual(r.folds);
    const others = [4, 5, 6, 8].map((seed) => heldOutOrders({ channels: C, clean, adversarial: clean, control: clean, sigma, k: 3, rng: createRng(seed) }).folds.join());
    expect(others.some((f) => f !== r.folds.join())).toBe(true);
    for (const order of r.orders) expect([...order].sort()).toEqual([0, 1, 2, 3]);
  });

  it('refuses fewer than two folds or more folds than images', () => {
    const base = { channels: C, clean, adversarial: clean, control: clean, sigma, rng: createRng(0) };
    expect(() => heldOutOrders({ ...base, k: 1 })).toThrow(/folds must be an integer in \[2, 10\]/);
    expect(() => heldOutOrders({ ...base, k: 11 })).toThrow(/folds must be an integer in \[2, 10\]/);
  });
});
