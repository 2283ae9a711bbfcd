import { describe, expect, it } from 'vitest';
import { createRng } from '../src/compute/random.ts';

describe('seeded RNG', () => {
  it('same seed, same sequence; different seeds and forks differ', () => {
    const draw = (seed: number) => { const r = createRng(seed); return Array.from({ length: 20 }, () => r.uniform()); };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
    const r = createRng(42);
    const a = Array.from({ length: 5 }, () => r.fork('a').uniform());
    expect(new Set(a).size).toBe(1); // a fork depends only on seed and label
    expect(createRng(42).fork('a').uniform()).not.toBe(createRng(42).fork('b').uniform());
  });

  it('uniform in [0,1) with mean 1/2; normal with mean 0 and variance 1', () => {
    const r = createRng(7);
    const u = Array.from({ length: 20000 }, () => r.uniform());
    expect(Math.min(...u)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...u)).toBeLessThan(1);
    expect(u.reduce((a, b) => a + b) / u.length).toBeCloseTo(0.5, 1);
    const g = Array.from({ length: 20000 }, () => r.normal());
    const mean = g.reduce((a, b) => a + b) / g.length;
    const variance = g.reduce((a, b) => a + (b - mean) ** 2, 0) / g.length;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
    const ints = Array.from({ length: 2000 }, () => r.uniformInt(-2, 2));
    expect(new Set(ints)).toEqual(new Set([-2, -1, 0, 1, 2]));
  });
});
