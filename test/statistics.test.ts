// The statistics behind fragility claims: Benjamini–Hochberg against a hand-computed example and a brute-force
// definition, the bootstrap and the sign-flip test against cases worked by hand and independent enumerations, their
// byte-identity for a seed, and the fragility effect on synthetic layers: planted fragile neurons recovered with the
// false-discovery proportion at or below q over seeds, null data flagging about α or fewer, no claim at n < 3, and
// the σ floor.
import { describe, expect, it } from 'vitest';
import { layerFragilityEffect, sigmaFloor, standardizedChanges } from '../src/compute/analysis/fragility-effect.ts';
import { bootstrapColumnMeans, bootstrapMean, bootstrapMeanDifference } from '../src/compute/analysis/statistics/bootstrap.ts';
import { benjaminiHochberg, significant } from '../src/compute/analysis/statistics/fdr.ts';
import { pairedSignFlipTest, signFlipColumns, signFlipTest } from '../src/compute/analysis/statistics/paired-test.ts';
import { createRng } from '../src/compute/random.ts';

const bytes = (a: ArrayLike<number>) => Buffer.from(Float64Array.from(a).buffer).toString('hex');
const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / a.length;

describe('Benjamini–Hochberg', () => {
  it('matches a hand-computed example with ties, a NaN and the cap at 1', () => {
    // m = 6 (the NaN is left out). Sorted: 0.005, 0.01, 0.03, 0.04, 0.04, 0.2; m·p/rank = 0.03, 0.03, 0.06, 0.06,
    // 0.048, 0.2; running minimum from the top: 0.03, 0.03, 0.048, 0.048, 0.048, 0.2.
    const q = benjaminiHochberg([0.01, 0.04, 0.03, 0.005, 0.2, NaN, 0.04]);
    const expected = [0.03, 0.048, 0.048, 0.03, 0.2, NaN, 0.048];
    expected.forEach((e, i) => (Number.isNaN(e) ? expect(q[i]).toBeNaN() : expect(q[i]).toBeCloseTo(e, 12)));
    expect([...q].map((v) => significant(v, 0.05))).toEqual([true, true, true, true, false, false, true]);
    expect([...q].map((v) => significant(v, 0.04))).toEqual([true, false, false, true, false, false, false]);
    // 2·0.9/1 = 1.8 is capped by the running minimum starting at 1; 2·0.95/2 = 0.95.
    expect([...benjaminiHochberg([0.9, 0.95])]).toEqual([0.95, 0.95]);
    expect([...benjaminiHochberg([1, 1, 1])]).toEqual([1, 1, 1]);
    expect([...benjaminiHochberg([0.02])]).toEqual([0.02]);
    expect(benjaminiHochberg([]).length).toBe(0);
    expect([...benjaminiHochberg([NaN, NaN])].every(Number.isNaN)).toBe(true);
  });

  it('equals the definition min over j ≥ i of m·p_(j)/j, is monotone in p and never below p', () => {
    const rng = createRng(3);
    for (let trial = 0; trial < 20; trial++) {
      // Rounded to a grid so ties are common.
      const p = Array.from({ length: 40 }, () => Math.round(rng.uniform() ** 2 * 50) / 50);
      const q = benjaminiHochberg(p);
      const sorted = [...p].sort((a, b) => a - b);
      const m = p.length;
      p.forEach((pi, i) => {
        let best = 1;
        sorted.forEach((pj, j) => { if (pj >= pi) best = Math.min(best, (m * pj) / (j + 1)); });
        expect(q[i]).toBeCloseTo(best, 12);
        expect(q[i]).toBeGreaterThanOrEqual(pi);
      });
      for (let a = 0; a < m; a++) for (let b = 0; b < m; b++) if (p[a] <= p[b]) expect(q[a]).toBeLessThanOrEqual(q[b]);
    }
  });

  it('rejects p-values outside [0, 1]; null and NaN are never significant', () => {
    expect(() => benjaminiHochberg([0.1, 1.2])).toThrow(/outside/);
    expect(() => benjaminiHochberg([-0.1])).toThrow(/outside/);
    expect(significant(null, 0.05)).toBe(false);
    expect(significant(undefined, 0.05)).toBe(false);
    expect(significant(NaN, 1)).toBe(false);
    expect(significant(0.05, 0.05)).toBe(true);
  });
});

describe('bootstrap interval of a mean', () => {
  it('is byte-identical for a seed, differs for another, and accepts a forked stream', () => {
    const rng = createRng(5);
    const x = Array.from({ length: 25 }, () => rng.normal());
    const a = bootstrapMean(x, { seed: 11 });
    const b = bootstrapMean(x, { seed: 11 });
    expect(bytes(a.ci)).toBe(bytes(b.ci));
    expect(bytes(bootstrapMean(x, { seed: 12 }).ci)).not.toBe(bytes(a.ci));
    const viaFork = (s: number) => bootstrapMean(x, { seed: createRng(s).fork('bootstrap') }).ci;
    expect(bytes(viaFork(11))).toBe(bytes(viaFork(11)));
    expect(a.mean).toBe(mean(x));
    expect(a.ci[0]).toBeLessThan(a.mean);
    expect(a.ci[1]).toBeGreaterThan(a.mean);
  });

  it('hand-checkable cases: constant data, two values, pairs resampled together', () => {
    expect(bootstrapMean([2.5, 2.5, 2.5, 2.5], { seed: 1 }).ci).toEqual([2.5, 2.5]);
    // From [0, 1] a resample's mean is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4: the 2.5 % and 97.5 % quantiles
    // of 2000 such means are 0 and 1.
    expect(bootstrapMean([0, 1], { seed: 1 }).ci).toEqual([0, 1]);
    // a = b + 3 exactly while b varies widely: resampling pairs leaves every difference 3.
    const b = [10, -40, 7, 300, 2, -9];
    const r = bootstrapMeanDifference(b.map((v) => v + 3), b, { seed: 4 });
    expect(r.mean).toBeCloseTo(3, 12);
    expect(r.ci[0]).toBeCloseTo(3, 12);
    expect(r.ci[1]).toBeCloseTo(3, 12);
    expect(bootstrapMean([], { seed: 1 }).ci.every(Number.isNaN)).toBe(true);
    expect(bootstrapMean([1, NaN, 2], { seed: 1 }).ci.every(Number.isNaN)).toBe(true);
  });

  it('columns share the image draws: each column equals its own bootstrap with the same seed', () => {
    const rng = createRng(8);
    const n = 12;
    const C = 3;
    const m = Float64Array.from({ length: n * C }, () => rng.normal());
    const cols = bootstrapColumnMeans(m, C, { seed: 21, resamples: 500 });
    for (let c = 0; c < C; c++) {
      const one = bootstrapMean(Array.from({ length: n }, (_, i) => m[i * C + c]), { seed: 21, resamples: 500 });
      expect(cols.lo[c]).toBeCloseTo(one.ci[0], 12);
      expect(cols.hi[c]).toBeCloseTo(one.ci[1], 12);
    }
  });

  it('covers the true mean of normal samples (n = 30) about 95 % of the time', () => {
    const rng = createRng(17);
    const reps = 400;
    let covered = 0;
    for (let r = 0; r < reps; r++) {
      const x = Array.from({ length: 30 }, () => 1 + 2 * rng.normal());
      const { ci } = bootstrapMean(x, { seed: r, resamples: 1000 });
      if (ci[0] <= 1 && 1 <= ci[1]) covered++;
    }
    // Percentile intervals under-cover slightly at n = 30 (about 0.93–0.94); 400 trials have a standard error ≈ 0.012.
    expect(covered / reps).toBeGreaterThan(0.9);
    expect(covered / reps).toBeLessThan(0.98);
  });
});

/** Two-sided sign-flip p by enumerating all 2^n sign vectors, without the test's symmetry or tolerance. */
function bruteForceP(d: number[]): number {
  const observed = Math.abs(d.reduce((s, v) => s + v, 0));
  let count = 0;
  for (let mask = 0; mask < 2 ** d.length; mask++) {
    let s = 0;
    d.forEach((v, i) => { s += (mask >> i) & 1 ? -v : v; });
    if (Math.abs(s) >= observed - 1e-12) count++;
  }
  return count / 2 ** d.length;
}

describe('sign-flip permutation test', () => {
  it('exact p-values worked by hand, ties included', () => {
    // ±1±2±3 ∈ {±6, ±4, ±2, 0, 0}: |Σ| ≥ 6 twice in 8.
    expect(signFlipTest([1, 2, 3], { seed: 1 }).p).toBe(0.25);
    // Four ±1: |Σ| = 4 (2 vectors), 2 (8), 0 (6); |Σ| ≥ 2 for 10 of 16.
    expect(signFlipTest([1, 1, 1, -1], { seed: 1 }).p).toBe(0.625);
    expect(signFlipTest([1, 2, -3], { seed: 1 }).p).toBe(1);
    // 0.1 + 0.2 − 0.3 is 5.6e-17 in floating point and −0.1 − 0.2 + 0.3 is not its negation bit for bit: still a tie.
    expect(signFlipTest([0.1, 0.2, -0.3], { seed: 1 }).p).toBe(1);
    expect(signFlipTest([0, 0, 0, 0], { seed: 1 }).p).toBe(1);
    expect(signFlipTest([5], { seed: 1 }).p).toBe(1);
    // Six equal differences: only all-plus and all-minus reach |Σ| = 6.
    expect(signFlipTest([1, 1, 1, 1, 1, 1], { seed: 1 }).p).toBe(2 / 64);
    expect(pairedSignFlipTest([3, 4, 5], [2, 2, 2], { seed: 1 }).p).toBe(0.25);
    expect(signFlipTest([1, NaN, 2], { seed: 1 }).p).toBeNaN();
    expect(signFlipTest([], { seed: 1 }).p).toBeNaN();
  });

  it('enumerates when 2^(n−1) fits the budget and then equals a brute-force enumeration', () => {
    const rng = createRng(9);
    for (let trial = 0; trial < 5; trial++) {
      const d = Array.from({ length: 10 }, () => rng.normal() + 0.5);
      const r = signFlipTest(d, { seed: 1 });
      expect(r.exact).toBe(true);
      expect(r.permutations).toBe(512);
      expect(r.p).toBeCloseTo(bruteForceP(d), 12);
    }
    expect(signFlipTest(new Array(14).fill(1), { seed: 1, permutations: 9999 }).exact).toBe(true);
    expect(signFlipTest(new Array(15).fill(1), { seed: 1, permutations: 9999 }).exact).toBe(false);
  });

  it('Monte Carlo: near the exact p, +1 corrected, never 0, byte-identical for a seed', () => {
    const rng = createRng(10);
    const d = Array.from({ length: 16 }, () => rng.normal() + 0.45);
    const exact = bruteForceP(d);
    const B = 4999;
    const mc = signFlipTest(d, { seed: 2, permutations: B, exact: false });
    expect(mc.exact).toBe(false);
    expect(Math.abs(mc.p - exact)).toBeLessThan(4 * Math.sqrt((exact * (1 - exact)) / B) + 1 / B);
    const k = mc.p * (B + 1);
    expect(Math.abs(k - Math.round(k))).toBeLessThan(1e-6);
    expect(k).toBeGreaterThanOrEqual(1);
    expect(bytes([mc.p])).toBe(bytes([signFlipTest(d, { seed: 2, permutations: B, exact: false }).p]));
    expect(signFlipTest(d, { seed: 3, permutations: B, exact: false }).p).not.toBe(mc.p);
    // Forty clearly positive differences: no random sign vector reaches the observed sum, so p = 1 / (B + 1).
    const strong = Array.from({ length: 40 }, () => 2 + rng.uniform());
    expect(signFlipTest(strong, { seed: 1, permutations: 999 }).p).toBe(1 / 1000);
    // More than 32 images take two 32-bit words of signs per vector: a null sample must not look significant.
    const wide = Array.from({ length: 70 }, () => rng.normal());
    expect(signFlipTest(wide, { seed: 1, permutations: 999 }).p).toBeCloseTo(normalApproxP(wide), 1);
  });

  it('columns share sign vectors and each equals the single-column test with the same seed', () => {
    const rng = createRng(12);
    const n = 20;
    const C = 4;
    const m = Float64Array.from({ length: n * C }, (_, k) => rng.normal() + (k % C) * 0.3);
    const cols = signFlipColumns(m, C, { seed: 6, permutations: 999 });
    for (let c = 0; c < C; c++) {
      const one = signFlipTest(Array.from({ length: n }, (_, i) => m[i * C + c]), { seed: 6, permutations: 999 });
      expect(cols.p[c]).toBe(one.p);
    }
  });

  it('under the null, p ≤ 0.05 about 5 % of the time', () => {
    const rng = createRng(13);
    const reps = 600;
    let hits = 0;
    for (let r = 0; r < reps; r++) {
      const d = Array.from({ length: 20 }, () => rng.normal());
      if (signFlipTest(d, { seed: r, permutations: 199 }).p <= 0.05) hits++;
    }
    // Standard error at 600 trials ≈ 0.009.
    expect(hits / reps).toBeGreaterThan(0.02);
    expect(hits / reps).toBeLessThan(0.08);
  });
});

/** Large-n two-sided p of a mean by the normal approximation of the sign-flip distribution (variance Σ d²). */
function normalApproxP(d: number[]): number {
  const z = Math.abs(d.reduce((s, v) => s + v, 0)) / Math.sqrt(d.reduce((s, v) => s + v * v, 0));
  // Abramowitz–Stegun 7.1.26 for erfc.
  const x = z / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erfc = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-x * x);
  return erfc;
}

interface Synthetic {
  clean: Float64Array; // [N,C]
  adversarial: Float64Array; // [N,C]
  control: Float64Array; // [N,C]
  sigma: Float64Array; // [C]
  planted: Set<number>;
}

/**
 * A layer of `channels` neurons on `n` images. Every neuron has its own scale σ_c; each image has its own sensitivity
 * (how much any perturbation moves the network there), shared by attack and control. Control and the non-planted
 * neurons under attack move by noise·σ·sensitivity; the planted ones additionally by ±shift·σ, alternating in sign
 * across images so that their signed mean cancels, as over photos of different classes.
 */
function synthetic(seed: number, o: { n: number; channels: number; planted: number; shift?: number; noise?: number }): Synthetic {
  const rng = createRng(seed);
  const { n, channels } = o;
  const shift = o.shift ?? 1.5;
  const noise = o.noise ?? 0.3;
  const sigma = Float64Array.from({ length: channels }, () => 0.3 * 10 ** rng.uniform()); // a decade of scales, all above the floor
  const mu = Float64Array.from({ length: channels }, () => rng.normal());
  const order = [...Array(channels).keys()];
  for (let i = channels - 1; i > 0; i--) {
    const j = rng.uniformInt(0, i);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const planted = new Set(order.slice(0, o.planted));
  const sensitivity = Float64Array.from({ length: n }, () => 0.5 + rng.uniform());
  const clean = new Float64Array(n * channels);
  const adversarial = new Float64Array(n * channels);
  const control = new Float64Array(n * channels);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < channels; c++) {
      const k = i * channels + c;
      clean[k] = mu[c] + sigma[c] * rng.normal();
      control[k] = clean[k] + sigma[c] * sensitivity[i] * noise * rng.normal();
      const push = planted.has(c) ? (i % 2 ? shift : -shift) : 0;
      adversarial[k] = clean[k] + sigma[c] * (sensitivity[i] * noise * rng.normal() + push);
    }
  }
  return { clean, adversarial, control, sigma, planted };
}

describe('fragility effect', () => {
  it('recovers planted fragile neurons with the false-discovery proportion at or below q over seeds', () => {
    const seeds = 60;
    const channels = 200;
    const planted = 20;
    const level = 0.05;
    let fdpVerdict = 0;
    let fdpSignificance = 0;
    let recovered = 0;
    for (let seed = 0; seed < seeds; seed++) {
      const s = synthetic(seed, { n: 20, channels, planted });
      const r = layerFragilityEffect({ channels, ...s, seed, fdr: level, resamples: 200, permutations: 999 });
      expect(r.descriptive).toBe(false);
      expect(r.exact).toBe(false);
      const flagged = r.neurons.filter((x) => x.fragile).map((x) => x.channel);
      const sig = r.neurons.filter((x) => significant(x.q, level)).map((x) => x.channel);
      const fdp = (set: number[]) => (set.length ? set.filter((c) => !s.planted.has(c)).length / set.length : 0);
      fdpVerdict += fdp(flagged) / seeds;
      fdpSignificance += fdp(sig) / seeds;
      recovered += flagged.filter((c) => s.planted.has(c)).length / planted / seeds;
      if (seed === 0) {
        // The signed score of fragility.ts (mean signed change / σ) sees none of the planted neurons.
        const z = standardizedChanges({ channels, clean: s.clean, adversarial: s.adversarial, control: s.control, sigma: s.sigma });
        const signed = (c: number) => Array.from({ length: z.n }, (_, i) => z.adversarial[i * channels + c]).reduce((a, v) => a + v, 0) / z.n;
        expect([...s.planted].filter((c) => Math.abs(signed(c)) >= 2)).toEqual([]);
      }
      for (const c of s.planted) {
        const x = r.neurons[c];
        // The signed change cancels across images; the effect does not.
        expect(Math.abs(x.signed_change)).toBeLessThan(0.3);
        expect(x.effect).toBeGreaterThan(0.8);
        expect(x.ci![0]).toBeLessThanOrEqual(x.effect);
        expect(x.ci![1]).toBeGreaterThanOrEqual(x.effect);
      }
    }
    console.log(`planted: recovered ${(recovered * 100).toFixed(1)} %, mean FDP ${fdpVerdict.toFixed(4)} (fragile), ${fdpSignificance.toFixed(4)} (q ≤ ${level} alone)`);
    expect(recovered).toBeGreaterThan(0.99);
    expect(fdpVerdict).toBeLessThanOrEqual(level);
    // BH alone bounds the expected FDP by π0·q = 0.045 here; the minimum effect removes the rest.
    expect(fdpSignificance).toBeLessThanOrEqual(level);
  });

  it('null data (adversarial drawn like the control) flags about α or fewer', () => {
    // 50 channels and 4999 sign vectors: the smallest Monte Carlo p (0.0002) is below α/m = 0.001, so BH could
    // discover something under the null; with too few permutations it never could and the check would be empty.
    const seeds = 100;
    const channels = 50;
    const level = 0.05;
    let flagged = 0;
    let significantQ = 0;
    let rawP = 0;
    let anyDiscovery = 0;
    for (let seed = 0; seed < seeds; seed++) {
      const s = synthetic(1000 + seed, { n: 20, channels, planted: 0 });
      const r = layerFragilityEffect({ channels, ...s, seed, fdr: level, resamples: 200, permutations: 4999 });
      flagged += r.fragile / channels / seeds;
      const q = r.neurons.filter((x) => significant(x.q, level)).length;
      significantQ += q / channels / seeds;
      anyDiscovery += (q > 0 ? 1 : 0) / seeds;
      rawP += r.neurons.filter((x) => significant(x.p, level)).length / channels / seeds;
    }
    console.log(`null: fragile ${(flagged * 100).toFixed(2)} %, q ≤ α ${(significantQ * 100).toFixed(2)} %, raw p ≤ α ${(rawP * 100).toFixed(2)} %, seeds with any discovery ${(anyDiscovery * 100).toFixed(0)} %`);
    expect(flagged).toBeLessThanOrEqual(level);
    expect(significantQ).toBeLessThanOrEqual(level);
    // Uncorrected p is calibrated: about α of null channels (5000 tests, standard error ≈ 0.003).
    expect(rawP).toBeGreaterThan(0.03);
    expect(rawP).toBeLessThan(0.07);
    // Under the complete null BH controls the chance of any discovery at α (binomial sd over 100 seeds ≈ 0.022).
    expect(anyDiscovery).toBeLessThanOrEqual(0.1);
  });

  it('makes no significance claim with fewer than 3 images', () => {
    for (const n of [1, 2]) {
      const s = synthetic(7, { n, channels: 10, planted: 5, shift: 10 });
      const r = layerFragilityEffect({ channels: 10, ...s, seed: 1 });
      expect(r.descriptive).toBe(true);
      expect(r.fragile).toBe(0);
      expect(r.exact).toBeNull();
      for (const x of r.neurons) {
        expect(x.p).toBeNull();
        expect(x.q).toBeNull();
        expect(x.ci).toBeNull();
        expect(x.fragile).toBe(false);
        // Per-image values are still reported: the effect is the mean of |z_adv| − |z_ctrl| computed here directly.
        let e = 0;
        for (let i = 0; i < n; i++) {
          const k = i * 10 + x.channel;
          e += (Math.abs(s.adversarial[k] - s.clean[k]) - Math.abs(s.control[k] - s.clean[k])) / Math.max(s.sigma[x.channel], r.sigma_floor) / n;
        }
        expect(x.effect).toBeCloseTo(e, 10);
      }
      expect(r.neurons.filter((x) => s.planted.has(x.channel)).every((x) => x.effect > 5)).toBe(true);
    }
    const three = layerFragilityEffect({ channels: 10, ...synthetic(7, { n: 3, channels: 10, planted: 5 }), seed: 1 });
    expect(three.descriptive).toBe(false);
    expect(three.neurons.every((x) => typeof x.p === 'number' && x.ci !== null)).toBe(true);
  });

  it('floors σ so a near-constant or dead channel cannot explode, and gates on the minimum effect', () => {
    // σ = 1, 1, 1, 1e-9, 0: the varying channels' median σ is 1, so the floor is 0.1.
    const sigma = [1, 1, 1, 1e-9, 0];
    expect(sigmaFloor(sigma)).toBe(0.1);
    expect(sigmaFloor([0, 0, 2, 4, 6])).toBeCloseTo(0.4, 12);
    expect(sigmaFloor([0, 0, NaN])).toBe(1);
    const n = 8;
    const C = 5;
    const clean = new Float64Array(n * C);
    const adversarial = new Float64Array(n * C);
    for (let i = 0; i < n; i++) {
      adversarial[i * C + 0] = 1; // one natural σ
      adversarial[i * C + 3] = 0.01; // 1e7 of its own σ, 0.1 floored σ
      adversarial[i * C + 4] = 0.02; // dead channel: 0.2 floored σ
    }
    const control = new Float64Array(n * C);
    const r = layerFragilityEffect({ channels: C, clean, adversarial, control, sigma, seed: 1 });
    expect(r.sigma_floor).toBe(0.1);
    expect(r.neurons.map((x) => x.effect).map((e) => Math.round(e * 1e12) / 1e12)).toEqual([1, 0, 0, 0.1, 0.2]);
    // Every image moves channels 0, 3 and 4 the same way: exact p = 2/2^8; channels 1 and 2 never move: p = 1.
    expect(r.exact).toBe(true);
    expect(r.neurons.map((x) => x.p)).toEqual([1 / 128, 1, 1, 1 / 128, 1 / 128]);
    // Three tied p among m = 5: q = 5·(1/128)/3.
    for (const c of [0, 3, 4]) expect(r.neurons[c].q).toBeCloseTo(5 / 384, 12);
    // Channels 3 and 4 are significant but below the minimum effect of 0.5 σ.
    expect(r.neurons.map((x) => x.fragile)).toEqual([true, false, false, false, false]);
    expect(layerFragilityEffect({ channels: C, clean, adversarial, control, sigma, seed: 1, minEffect: 0.1 }).fragile).toBe(2);
    const absolute = standardizedChanges({ channels: C, clean, adversarial, control, sigma, sigmaFloor: 0.5 });
    expect([...absolute.sigma]).toEqual([1, 1, 1, 0.5, 0.5]);
    expect(absolute.adversarial[3]).toBeCloseTo(0.02, 12);
  });

  it('is byte-identical for a seed; a NaN channel gets no p and is never fragile', () => {
    const s = synthetic(31, { n: 24, channels: 30, planted: 4 });
    const run = (seed: number) => JSON.stringify(layerFragilityEffect({ channels: 30, ...s, seed, resamples: 300, permutations: 499 }));
    expect(run(5)).toBe(run(5));
    expect(run(6)).not.toBe(run(5));
    s.adversarial[2 * 30 + 7] = NaN;
    const r = layerFragilityEffect({ channels: 30, ...s, seed: 5, resamples: 300, permutations: 499 });
    expect(r.neurons[7].p).toBeNull();
    expect(r.neurons[7].q).toBeNull();
    expect(r.neurons[7].fragile).toBe(false);
    expect(r.neurons.filter((x) => x.channel !== 7).every((x) => typeof x.q === 'number')).toBe(true);
  });

  it('rejects mismatched shapes', () => {
    const z = new Float64Array(6);
    expect(() => layerFragilityEffect({ channels: 3, clean: z, adversarial: z, control: new Float64Array(3), sigma: [1, 1, 1], seed: 1 })).toThrow(/differ in size/);
    expect(() => layerFragilityEffect({ channels: 3, clean: z, adversarial: z, control: z, sigma: [1, 1], seed: 1 })).toThrow(/σ has 2/);
    expect(() => layerFragilityEffect({ channels: 4, clean: z, adversarial: z, control: z, sigma: [1, 1, 1, 1], seed: 1 })).toThrow(/rows of 4/);
  });
});
