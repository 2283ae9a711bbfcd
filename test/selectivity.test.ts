// Class selectivity: AUROC and Mann–Whitney U against hand-computed values with ties, the permutation p against full
// enumeration, null data flagging about α or fewer, planted selective channels found (permutation for a class of
// three images, the normal approximation for a large group), pooling thin classes through WordNet, the count of
// target-selective channels an attack turns on against the control, and byte-identity for a seed.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  auroc, classAurocs, classSelectivity, columnMidranks, mannWhitneyU, selectivityGroup, targetNeuronsTurnedOn, upperNormalTail,
} from '../src/compute/analysis/selectivity.ts';
import { createRng } from '../src/compute/random.ts';
import { shared } from './helpers/shared.ts';

const classes: { index: number; wnid: string; name: string }[] = JSON.parse(readFileSync(shared('models', 'imagenet-classes.json'), 'utf8'));

/** Brute-force AUROC: wins plus half the ties over all pairs. */
function pairwiseAuroc(x: number[], y: number[]): number {
  let s = 0;
  for (const a of x) for (const b of y) s += a > b ? 1 : a === b ? 0.5 : 0;
  return s / (x.length * y.length);
}

/** ReLU-like activations [N,C]: about half the values exactly 0, so ties are the rule. */
function reluLayer(n: number, channels: number, seed: number): Float32Array {
  const rng = createRng(seed).fork('values');
  return Float32Array.from({ length: n * channels }, () => Math.max(0, rng.normal()));
}

describe('AUROC and Mann–Whitney U', () => {
  it('match a case worked by hand, with ties', () => {
    // Pooled values 0 1 1 2 2 2 3 have midranks 1 2.5 2.5 5 5 5 7; the positives 3, 1, 2 sum to 7 + 2.5 + 5 = 14.5,
    // U = 14.5 − 3·4/2 = 8.5 of 3·4 = 12 pairs (3 beats all four; 1 beats 0 and ties 1; 2 beats 1 and 0 and ties
    // both 2s), AUROC = 8.5/12. Tie term Σ(t³ − t) = 6 + 24 = 30, σ² = 3·4/12 · (8 − 30/42) = 7.2857,
    // z = (8.5 − 6 − 0.5)/σ = 0.74096, p = 0.22936 (R: wilcox.test(c(3,1,2), c(1,0,2,2), "greater", exact = FALSE)).
    const r = mannWhitneyU([3, 1, 2], [1, 0, 2, 2]);
    expect(r.u).toBe(8.5);
    expect(r.auroc).toBe(8.5 / 12);
    expect(auroc([3, 1, 2], [1, 0, 2, 2])).toBe(8.5 / 12);
    expect(r.z).toBeCloseTo(2 / Math.sqrt(8 - 30 / 42), 12);
    expect(r.p).toBeCloseTo(0.2293592793625111, 6);
    expect(mannWhitneyU([3, 1, 2], [1, 0, 2, 2], 'two-sided').p).toBeCloseTo(0.4587185587250222, 6);
    const ranks = columnMidranks([0, 1, 1, 2, 2, 2, 3], 1);
    expect([...ranks.ranks]).toEqual([1, 2.5, 2.5, 5, 5, 5, 7]);
    expect(ranks.ties[0]).toBe(30);
    expect(auroc([5], [5, 5])).toBe(0.5);
    expect(mannWhitneyU([5], [5, 5]).p).toBe(1);
    expect(auroc([], [1])).toBeNaN();
  });

  it('equal the pairwise definition on random data with ties, and the normal tail is accurate', () => {
    const rng = createRng(2);
    for (let t = 0; t < 30; t++) {
      const x = Array.from({ length: 1 + rng.uniformInt(0, 6) }, () => rng.uniformInt(0, 4));
      const y = Array.from({ length: 1 + rng.uniformInt(0, 9) }, () => rng.uniformInt(0, 4));
      expect(auroc(x, y)).toBeCloseTo(pairwiseAuroc(x, y), 12);
    }
    for (const [z, tail] of [[1, 0.15865525393145707], [3, 0.0013498980316300957], [5, 2.866515718791946e-7], [8, 6.220960574271819e-16]]) {
      expect(Math.abs(upperNormalTail(z) / tail - 1)).toBeLessThan(2e-7);
      expect(Math.abs(upperNormalTail(-z) - (1 - tail))).toBeLessThan(1e-7);
    }
  });
});

describe('class selectivity', () => {
  it('gives the permutation p of full enumeration', () => {
    // 10 images, 2 channels with ties; the class is images 0 and 3. All 45 two-image subsets give the exact p.
    const values = [3, 1, 0, 2, 0, 5, 1, 0, 2, 2, 1, 4, 0, 3, 2, 2, 3, 1, 0, 0];
    const rows = [0, 3];
    const { ranks } = columnMidranks(values, 2);
    const exact = [0, 1].map((c) => {
      const sum = (a: number, b: number) => ranks[a * 2 + c] + ranks[b * 2 + c];
      const observed = sum(rows[0], rows[1]);
      let greater = 0;
      let total = 0;
      for (let a = 0; a < 10; a++) for (let b = a + 1; b < 10; b++) { total++; if (sum(a, b) >= observed) greater++; }
      return greater / total;
    });
    const B = 99_999;
    const r = classSelectivity({ channels: 2, values, rows, seed: 3, permutations: B, exceedances: B + 1, minAuroc: 0 });
    expect(r.method).toBe('permutation');
    r.neurons.forEach((x, c) => expect(Math.abs(x.p! - exact[c])).toBeLessThan(4 * Math.sqrt((exact[c] * (1 - exact[c])) / B) + 1e-5));
    // Sequential stopping (20 exceedances) estimates the same p, less precisely.
    const sequential = classSelectivity({ channels: 2, values, rows, seed: 3, permutations: B, minAuroc: 0 });
    sequential.neurons.forEach((x, c) => expect(Math.abs(x.p! - exact[c])).toBeLessThan(0.2));
    // One image ranked first among N: exact p = 1/N.
    const single = classSelectivity({ channels: 1, values: [9, 1, 2, 3, 4, 5, 6, 7], rows: [0], seed: 1, permutations: B, exceedances: B + 1 });
    expect(single.neurons[0].auroc).toBe(1);
    expect(Math.abs(single.neurons[0].p! - 1 / 8)).toBeLessThan(4 * Math.sqrt((1 / 8) * (7 / 8) / B));
  });

  it('flags about α or fewer on null data with ties and 1–5 images per class', () => {
    // 600 images × 100 ReLU channels (half the values 0); 60 disjoint "classes" of 1–5 random images. Measured:
    // raw p ≤ 0.05 for 4.95 % of the 6000 tests, 1 channel selective (0.02 %). BH runs per class, so what it bounds
    // by α is the share of classes with any selective channel: over 1000 such classes, 0–5 % for each size 1–5.
    const n = 600;
    const channels = 100;
    const alpha = 0.05;
    const values = reluLayer(n, channels, 5);
    const ranks = columnMidranks(values, channels);
    const rng = createRng(6).fork('classes');
    const order = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) { const j = rng.uniformInt(0, i); [order[i], order[j]] = [order[j], order[i]]; }
    let small = 0;
    let flagged = 0;
    let classesFlagged = 0;
    let tests = 0;
    const classCount = 60;
    for (let k = 0, at = 0; k < classCount; k++) {
      const size = 1 + (k % 5);
      const rows = order.slice(at, at + size);
      at += size;
      const r = classSelectivity({ channels, values, rows, ranks, seed: rng.fork(`class ${k}`), fdr: alpha });
      tests += channels;
      small += r.neurons.filter((x) => x.p! <= alpha).length;
      flagged += r.count;
      if (r.count > 0) classesFlagged++;
    }
    // Margins: raw p ≤ α at most α + 3 SDs of 6000 tests; classes with any flag ≤ α + 2 SDs of 60 classes.
    expect(small / tests).toBeLessThanOrEqual(alpha + 3 * Math.sqrt((alpha * (1 - alpha)) / tests));
    expect(classesFlagged / classCount).toBeLessThanOrEqual(alpha + 2 * Math.sqrt((alpha * (1 - alpha)) / classCount));
    expect(flagged / tests).toBeLessThanOrEqual(alpha);
  });

  it('finds planted selective channels: by permutation for 3 images, by the normal approximation for a group', () => {
    const n = 600;
    const channels = 100;
    const values = reluLayer(n, channels, 7);
    const rows = [10, 200, 470];
    for (const i of rows) for (let c = 0; c < 5; c++) values[i * channels + c] += 10;
    const r = classSelectivity({ channels, values, rows, seed: 8 });
    expect(r.method).toBe('permutation');
    expect(r).toMatchObject({ n: 3, rest: 597, permutations: 49_999, smallest_p: 1 / 50_000, alternative: 'greater', fdr: 0.05, min_auroc: 0.75 });
    expect(r.neurons.filter((x) => x.selective).map((x) => x.channel)).toEqual([0, 1, 2, 3, 4]);
    expect(r.count).toBe(5);
    for (let c = 0; c < 5; c++) expect(r.neurons[c]).toMatchObject({ auroc: 1, u: 3 * 597, p: 1 / 50_000 });

    const group = Array.from({ length: 120 }, (_, k) => k * 5);
    for (const i of group) for (let c = 10; c < 13; c++) values[i * channels + c] += 1.5;
    const g = classSelectivity({ channels, values, rows: group, seed: 8 });
    expect(g.method).toBe('normal');
    expect(g.permutations).toBeNull();
    expect(g.neurons.filter((x) => x.selective).map((x) => x.channel)).toEqual([10, 11, 12]);
    // The normal p agrees with mannWhitneyU's on the same column.
    const column = (c: number) => Array.from({ length: n }, (_, i) => values[i * channels + c]);
    const inGroup = new Set(group);
    const x = column(11).filter((_, i) => inGroup.has(i));
    const y = column(11).filter((_, i) => !inGroup.has(i));
    expect(g.neurons[11].p).toBe(mannWhitneyU(x, y).p);
    expect(g.neurons[11].auroc).toBeCloseTo(pairwiseAuroc(x, y), 12);
  });

  it('computes every class at once from shared ranks', () => {
    const n = 200;
    const channels = 7;
    const values = reluLayer(n, channels, 9);
    const labels = Array.from({ length: n }, (_, i) => i % 30);
    const ranks = columnMidranks(values, channels);
    const all = classAurocs(ranks, labels, 31);
    for (const k of [0, 7, 29]) {
      const rows = labels.flatMap((l, i) => (l === k ? [i] : []));
      const r = classSelectivity({ channels, values, rows, ranks, seed: 1, permutations: 99 });
      for (let c = 0; c < channels; c++) expect(all[k * channels + c]).toBeCloseTo(r.neurons[c].auroc!, 12);
    }
    expect(Number.isNaN(all[30 * channels])).toBe(true);
  });

  it('is byte-identical for a seed and refuses malformed rows', () => {
    const values = reluLayer(300, 20, 10);
    const run = (seed: number) => JSON.stringify(classSelectivity({ channels: 20, values, rows: [4, 9, 100], seed, permutations: 4999 }));
    expect(run(1)).toBe(run(1));
    expect(run(1)).not.toBe(run(2));
    expect(() => classSelectivity({ channels: 20, values, rows: [4, 4], seed: 1 })).toThrow(/twice/);
    expect(() => classSelectivity({ channels: 20, values, rows: [300], seed: 1 })).toThrow(/not an image index/);
    expect(() => classSelectivity({ channels: 20, values, rows: [], seed: 1 })).toThrow(/at least one image/);
  });
});

describe('thin classes and targeted attacks', () => {
  it('pools a class with too few images through a configured group, else its nearest WordNet hypernym', () => {
    const weasel = classes.findIndex((c) => c.name === 'weasel');
    const mink = classes.findIndex((c) => c.name === 'mink');
    const polecat = classes.findIndex((c) => c.name === 'polecat');
    const fox = classes.findIndex((c) => c.name === 'grey fox');
    const labels = [weasel, mink, mink, polecat, 0, 0, 1, fox];
    expect(selectivityGroup({ labels, classes, target: mink })).toEqual({ name: 'mink', wnid: classes[mink].wnid, rows: [1, 2], pooled: false });
    const nearest = selectivityGroup({ labels, classes, target: weasel });
    expect(nearest).toEqual({ name: 'musteline mammal', wnid: 'n02441326', rows: [0, 1, 2, 3], pooled: true });
    // A configured group wins over the nearest hypernym; of those, the smallest that holds enough images.
    const configured = selectivityGroup({ labels, classes, target: weasel, groups: { carnivores: 'n02075296', mustelids: 'n02441326' } });
    expect(configured).toMatchObject({ name: 'mustelids', rows: [0, 1, 2, 3], pooled: true });
    expect(selectivityGroup({ labels, classes, target: weasel, minImages: 1 }).pooled).toBe(false);
  });

  it('counts the target-selective channels the attack and the control turn on', () => {
    // Channels 0 and 2 are target-selective (threshold 1); channel 1 is not and is ignored.
    const clean = [0, 0, 2, /**/ 0, 0, 0, /**/ 2, 0, 0];
    const adversarial = [3, 0, 3, /**/ 1, 0, 1, /**/ 0, 0, 0];
    const control = [0, 0, 2, /**/ 1, 0, 0, /**/ 2, 0, 0];
    const r = targetNeuronsTurnedOn({ channels: 3, clean, adversarial, control, selective: [0, 2], threshold: [1, 99, 1], seed: 1 });
    expect(r.n).toBe(3);
    expect(r.selective).toBe(2);
    expect(r.on.clean.per_image).toEqual([1, 0, 1]);
    expect(r.on.adversarial.per_image).toEqual([2, 2, 0]);
    expect(r.on.control.per_image).toEqual([1, 1, 1]);
    expect(r.turned_on.adversarial).toEqual({ per_image: [1, 2, 0], mean: 1 });
    expect(r.turned_on.control).toEqual({ per_image: [0, 1, 0], mean: 1 / 3 });
    expect(r.difference).toBeCloseTo(2 / 3, 12);
    // Differences 1, 1, 0: of the 4 sign vectors (last sign fixed), |Σ| ≥ 2 for 2.
    expect(r.p).toBe(0.5);
    expect(r.descriptive).toBe(false);
    const two = targetNeuronsTurnedOn({ channels: 3, clean: clean.slice(0, 6), adversarial: adversarial.slice(0, 6), control: control.slice(0, 6), selective: [0, 2], threshold: [1, 99, 1], seed: 1 });
    expect(two).toMatchObject({ n: 2, p: null, descriptive: true });
    expect(() => targetNeuronsTurnedOn({ channels: 3, clean, adversarial, control, selective: [3], threshold: [1, 1, 1], seed: 1 })).toThrow(/not in/);
  });
});
