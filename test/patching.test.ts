// Activation patching (compute/analysis/patching.ts, onnx/patch-graph.ts, `atlas patch`). Tiny nets whose logits are
// a known function of one layer give expected values computed here on the host, independently of the patched graph:
// which channels the mask takes, the whole-layer and empty-set sanity properties, a planted effect (only one channel
// matters: ranked k = 1 recovers everything, random k = 1 about 1/C) and a null (all channels matter alike: the ranked
// selection is no better than random beyond the interval). Then MobileNetV2 on attacked photographs, checked against
// the model's own forward pass, and the command end to end.
import { copyFile, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PatchingFile, type PatchingInterval, type PatchingResult } from '../src/compute/analysis/patching-output.ts';
import { PatchedLayer, patching, rankByChange } from '../src/compute/analysis/patching.ts';
import { attackImages, type AttackResult } from '../src/compute/attacks/attack-images.ts';
import { loadImage } from '../src/compute/io/image.ts';
import { loadClassifier, type Classifier } from '../src/compute/model/classifier.ts';
import { DifferentiableModel } from '../src/compute/model/differentiable-model.ts';
import { softmax } from '../src/compute/model/predictions.ts';
import { atlas, expectOneLineError } from './helpers/atlas-cli.ts';
import { shared } from './helpers/shared.ts';
import { FLOAT, named, seeded, tinyModel } from './helpers/tiny-net.ts';

// ---- tiny nets: x [N,8,2,2] → mid = Relu(x) → (optionally x + mid) → 1×1 conv to [s − b, b − s] → mean → logits ----
// s = Σ_c w_c · mean_hw(mid_c) (+ mean_hw(x_c) with the skip), so p(class 0) = σ(2(s − b)).

const C = 8;
const AREA = 4;
const PER = C * AREA;

function headNet(w: readonly number[], bias: number, residual = false): Uint8Array {
  return tinyModel(FLOAT, [C, 2, 2], (net, x) => {
    const mid = named(net, 'mid', 'Relu', [x]);
    const into = residual ? net.b.op('Add', [x, mid]) : mid;
    const weight = net.constant('head.weight', [2, C, 1, 1], [...w, ...w.map((v) => -v)]);
    const conv = named(net, 'head', 'Conv', [into, weight, net.constant('head.bias', [2], [-bias, bias])]);
    return net.b.op('Flatten', [net.b.op('GlobalAveragePool', [conv])], { axis: 1 });
  });
}

const model = (bytes: Uint8Array) => DifferentiableModel.fromBytes(bytes, { name: 'x', dims: [C, 2, 2] });
const relu = (v: number) => Math.max(0, v);
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** p(class 0) of image i from the layer `mid` [C,2,2] (and the skip input), computed on the host. */
function p0(w: readonly number[], bias: number, mid: ArrayLike<number>, skip?: ArrayLike<number>): number {
  let s = 0;
  for (let c = 0; c < C; c++) {
    let m = 0;
    for (let k = 0; k < AREA; k++) m += mid[c * AREA + k] + (skip ? skip[c * AREA + k] : 0);
    s += (w[c] * m) / AREA;
  }
  return sigmoid(2 * (s - bias));
}

const reluOf = (x: Float32Array) => x.map(relu);
const image = (x: Float32Array, i: number) => x.subarray(i * PER, (i + 1) * PER);
const meanOf = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const pointAt = <P extends { k: number }>(curve: P[], k: number): P => curve.find((p) => p.k === k)!;
const restoreAt = (r: PatchingResult, sel: 'ranked' | 'random' | 'active', k: number) => pointAt(r.restore[sel], k);
const injectAt = (r: PatchingResult, sel: 'ranked' | 'random' | 'active', k: number) => pointAt(r.inject[sel], k);

/** Images where every channel value is drawn by `value(c, rand)`. */
function images(n: number, seed: number, value: (c: number, rand: () => number, i: number) => number): Float32Array {
  const rand = seeded(seed);
  const x = new Float32Array(n * PER);
  for (let i = 0; i < n; i++) for (let c = 0; c < C; c++) for (let k = 0; k < AREA; k++) x[i * PER + c * AREA + k] = value(c, rand, i);
  return x;
}

describe('the patched graph on a tiny net', () => {
  const w = [0.9, -0.4, 0.7, 0.2, -1.1, 0.5, 0.3, -0.6];

  it('takes exactly the masked channels of each image from the injected tensor, and nothing with an all-zero mask', async () => {
    const m = await model(headNet(w, 0.1));
    const patched = await PatchedLayer.compile(m, 'mid');
    try {
      const n = 5;
      const x = images(n, 11, (_c, r) => 2 * r() - 1); // negative values too, so the Relu matters
      const injected = images(n, 12, (_c, r) => 3 * r());
      const rand = seeded(13);
      const mask = Float32Array.from({ length: n * C }, () => (rand() < 0.5 ? 1 : 0)); // a different set per image
      const logits = (await patched.run(x, mask, injected)).logits;
      const none = await patched.capture(x);
      for (let i = 0; i < n; i++) {
        const own = reluOf(image(x, i));
        const mixed = own.map((v, k) => (mask[i * C + Math.floor(k / AREA)] ? injected[i * PER + k] : v));
        expect(softmax(logits.subarray(2 * i, 2 * i + 2))[0]).toBeCloseTo(p0(w, 0.1, mixed), 5);
        expect(softmax(none.logits.subarray(2 * i, 2 * i + 2))[0]).toBeCloseTo(p0(w, 0.1, own), 5);
        // The capture returns the layer itself, unpatched.
        for (let k = 0; k < PER; k++) expect(none.activation[i * PER + k]).toBeCloseTo(own[k], 6);
      }
      // The same patch with a patched tensor the mask never selects changes nothing.
      const ignored = await patched.run(x, new Float32Array(n * C), injected);
      for (let k = 0; k < none.logits.length; k++) expect(ignored.logits[k]).toBeCloseTo(none.logits[k], 6);
    } finally {
      await patched.release();
    }
  });

  it('continues a capture from the layer: the network after it gives the patched probabilities, a skip connection\'s input fed too', async () => {
    for (const residual of [false, true]) {
      const patched = await PatchedLayer.compile(await model(headNet(w, 0.1, residual)), 'mid');
      try {
        // The layer alone, or the layer and the skip connection's input: what the head reads from before the patch.
        expect(patched.frontier).toHaveLength(residual ? 2 : 1);
        const n = 5;
        const x = images(n, 31, (_c, r) => 2 * r() - 1);
        const injected = images(n, 32, (_c, r) => 3 * r());
        const rand = seeded(33);
        const mask = Float32Array.from({ length: n * C }, () => (rand() < 0.5 ? 1 : 0));
        const captured = await patched.capture(x);
        const logits = await patched.continue(captured, mask, injected);
        const unpatched = await patched.continue(captured, new Float32Array(n * C), new Float32Array(n * PER));
        for (let i = 0; i < n; i++) {
          const own = reluOf(image(x, i));
          const mixed = own.map((v, k) => (mask[i * C + Math.floor(k / AREA)] ? injected[i * PER + k] : v));
          const skip = residual ? image(x, i) : undefined;
          expect(softmax(logits.subarray(2 * i, 2 * i + 2))[0]).toBeCloseTo(p0(w, 0.1, mixed, skip), 5);
          expect(softmax(unpatched.subarray(2 * i, 2 * i + 2))[0]).toBeCloseTo(p0(w, 0.1, own, skip), 5);
        }
        // …the same as patching the pixels through the whole graph.
        const whole = (await patched.run(x, mask, injected)).logits;
        for (let k = 0; k < whole.length; k++) expect(logits[k]).toBeCloseTo(whole[k], 6);
      } finally {
        await patched.release();
      }
    }
  });

  it('knows whether a skip connection bypasses the layer', async () => {
    const plain = await PatchedLayer.compile(await model(headNet(w, 0)), 'mid');
    const skip = await PatchedLayer.compile(await model(headNet(w, 0, true)), 'mid');
    expect(plain.cut).toBe(true);
    expect(skip.cut).toBe(false);
    await plain.release();
    await skip.release();
  });
});

describe('patching on tiny nets', () => {
  // All channels matter alike; the bias centres the logits between clean (channels ~0.8) and adversarial (~0.4).
  const equal = new Array(C).fill(1);
  const N = 30;
  const clean = images(N, 21, (_c, r) => 0.6 + 0.4 * r());
  const adversarial = clean.map((v, k) => v * (0.2 + 0.6 * seeded(22 + k)())); // every value scaled by its own factor
  const bias = 4.8;
  const cleanP = [...Array(N).keys()].map((i) => p0(equal, bias, reluOf(image(clean, i))));
  const advP = [...Array(N).keys()].map((i) => p0(equal, bias, reluOf(image(adversarial, i))));
  const counted = cleanP.filter((p, i) => p - advP[i] >= 0.05).length;
  let equalModel: DifferentiableModel;
  beforeAll(async () => {
    equalModel = await model(headNet(equal, bias));
  });

  it('restores the clean probabilities with the whole layer and changes nothing with no channel (both directions)', async () => {
    expect(counted).toBeGreaterThan(N / 2); // the fixture: most images are moved by the "attack"
    const r = await patching({ model: equalModel }, { layer: 'mid', clean, adversarial, cleanClass: new Array(N).fill(0), ks: [0, 1, 4, C], draws: 3, seed: 1 });
    expect(r.cut).toBe(true);
    expect(r.ks).toEqual([0, 1, 4, C]);
    r.images.forEach((im, i) => {
      expect(im.p_clean.clean).toBeCloseTo(cleanP[i], 5);
      expect(im.p_clean.adversarial).toBeCloseTo(advP[i], 5);
    });
    for (const sel of ['ranked', 'random', 'active'] as const) {
      const whole = restoreAt(r, sel, C);
      expect(whole.p_clean.mean!).toBeCloseTo(meanOf(cleanP), 5);
      expect(whole.recovery.n).toBe(counted);
      expect(whole.recovery.mean!).toBeCloseTo(1, 4);
      expect(injectAt(r, sel, C).p_clean.mean!).toBeCloseTo(meanOf(advP), 5);
      expect(injectAt(r, sel, C).drop.mean!).toBeCloseTo(1, 4);
      const none = restoreAt(r, sel, 0);
      expect(none.p_clean.mean!).toBeCloseTo(meanOf(advP), 5);
      expect(none.recovery.mean!).toBeCloseTo(0, 4);
      expect(injectAt(r, sel, 0).p_clean.mean!).toBeCloseTo(meanOf(cleanP), 5);
      expect(injectAt(r, sel, 0).drop.mean!).toBeCloseTo(0, 4);
      expect(injectAt(r, sel, 0).p_clean.n).toBe(N);
    }
    // Between the ends, restoring more channels recovers more (every channel pushes towards the clean class).
    expect(restoreAt(r, 'random', 4).recovery.mean!).toBeGreaterThan(restoreAt(r, 'random', 1).recovery.mean! + 0.05);
  });

  it('null: when all channels matter alike, a fixed ranking is no better than random beyond the interval', async () => {
    const rand = seeded(31);
    const order = [...Array(C).keys()].sort(() => rand() - 0.5); // an arbitrary fixed order
    const r = await patching({ model: equalModel }, {
      layer: 'mid', clean, adversarial, cleanClass: new Array(N).fill(0), ranking: { from: 'arbitrary', channels: order }, ks: [1, 2, 4], draws: 10, seed: 2,
    });
    const overlap = (a: PatchingInterval, b: PatchingInterval) => a.ci![0] <= b.ci![1] && b.ci![0] <= a.ci![1];
    for (const k of [1, 2, 4]) {
      expect(overlap(restoreAt(r, 'ranked', k).recovery, restoreAt(r, 'random', k).recovery), `restore k=${k}`).toBe(true);
      expect(overlap(injectAt(r, 'ranked', k).drop, injectAt(r, 'random', k).drop), `inject k=${k}`).toBe(true);
    }
  });

  describe('planted: only channel 0 reaches the logits', () => {
    const planted = [6, 0, 0, 0, 0, 0, 0, 0];
    const n = 24;
    // Channel 3 is the most active on every clean image, channel 0 the second: "most active" k = 1 misses the one
    // that matters, k = 2 finds it. The attack moves channel 0 far and the others a little.
    const clean = images(n, 41, (c, r) => (c === 3 ? 0.95 : c === 0 ? 0.6 + 0.3 * r() : 0.1 + 0.4 * r()));
    const adversarial = images(n, 42, (c, r) => (c === 0 ? 0.1 * r() : 0)).map((d, k) => (k % PER < AREA ? d : clean[k] + 0.1 * (seeded(43 + k)() - 0.5)));
    let r: PatchingResult;
    beforeAll(async () => {
      const m = await model(headNet(planted, 0));
      r = await patching({ model: m }, { layer: 'mid', clean, adversarial, cleanClass: new Array(n).fill(0), ks: [1, 2, 4], draws: 20, seed: 3 });
    });

    it('ranks channel 0 first by mean |change| when no ranking is given', () => {
      expect(r.ranking.channels[0]).toBe(0);
      expect([...r.ranking.channels].sort()).toEqual([...Array(C).keys()]);
    });

    it('restoring or injecting the ranked channel alone is the whole effect; random k = 1 gets about 1/C', () => {
      expect(r.images.every((im) => im.counted)).toBe(true);
      expect(restoreAt(r, 'ranked', 1).recovery.mean!).toBeCloseTo(1, 5);
      expect(restoreAt(r, 'ranked', 1).recovery.ci![0]).toBeCloseTo(1, 5);
      expect(injectAt(r, 'ranked', 1).drop.mean!).toBeCloseTo(1, 5);
      // A uniform k-set holds channel 0 with probability k/C; 20 draws × 24 images put the mean within ±0.07.
      expect(Math.abs(restoreAt(r, 'random', 1).recovery.mean! - 1 / C)).toBeLessThan(0.07);
      expect(Math.abs(restoreAt(r, 'random', 4).recovery.mean! - 4 / C)).toBeLessThan(0.1);
      expect(Math.abs(injectAt(r, 'random', 1).drop.mean! - 1 / C)).toBeLessThan(0.07);
      // The criterion the null test uses does separate here.
      expect(restoreAt(r, 'ranked', 1).recovery.ci![0]).toBeGreaterThan(restoreAt(r, 'random', 1).recovery.ci![1]);
    });

    it('"most active" takes each clean image\'s largest channels', () => {
      expect(restoreAt(r, 'active', 1).recovery.mean!).toBeCloseTo(0, 5);
      expect(restoreAt(r, 'active', 2).recovery.mean!).toBeCloseTo(1, 5);
    });
  });

  it('with a held-out ranking, patches each image with its fold\'s order', async () => {
    // Even images are in fold 0, whose order puts the planted channel 0 first; odd ones in fold 1, whose order starts
    // with channel 5, which the logits ignore. Restoring the top 1 then recovers everything on even images and
    // nothing on odd ones (every image counts: the attack moves channel 0 far on all of them).
    const n = 24;
    const clean = images(n, 41, (c, rr) => (c === 0 ? 0.6 + 0.3 * rr() : 0.1 + 0.4 * rr()));
    const adversarial = images(n, 42, (c, rr) => (c === 0 ? 0.1 * rr() : 0)).map((d, k) => (k % PER < AREA ? d : clean[k]));
    const m = await model(headNet([6, 0, 0, 0, 0, 0, 0, 0], 0));
    const first = (c: number) => [c, ...[...Array(C).keys()].filter((x) => x !== c)];
    const folds = [...Array(n).keys()].map((i) => i % 2);
    const h = await patching({ model: m }, {
      layer: 'mid', clean, adversarial, cleanClass: new Array(n).fill(0), ks: [1], draws: 1, seed: 4,
      ranking: { from: 'planted folds', channels: first(0), heldOut: { folds, orders: [first(0), first(5)] } },
    });
    expect(h.images.every((im) => im.counted)).toBe(true);
    expect(restoreAt(h, 'ranked', 1).recovery.mean!).toBeCloseTo(0.5, 5);
    expect(injectAt(h, 'ranked', 1).drop.mean!).toBeCloseTo(0.5, 5);
    expect(h.ranking.held_out).toEqual({ folds, orders: [first(0), first(5)] });
    await expect(patching({ model: m }, {
      layer: 'mid', clean, adversarial, cleanClass: new Array(n).fill(0), ks: [1], seed: 4,
      ranking: { from: 'x', channels: first(0), heldOut: { folds: folds.map((f) => f + 1), orders: [first(0), first(5)] } },
    })).rejects.toThrow(/fold 2 has no order/);
  });

  it('targeted: with two classes the target lost is the recovery, and the target gained the drop', async () => {
    const r = await patching({ model: equalModel }, { layer: 'mid', clean, adversarial, cleanClass: new Array(N).fill(0), target: new Array(N).fill(1), ks: [2], draws: 2, seed: 4 });
    expect(r.targeted).toBe(true);
    for (const sel of ['ranked', 'random', 'active'] as const) {
      const p = restoreAt(r, sel, 2);
      expect(p.target_lost!.n).toBe(p.recovery.n);
      expect(p.target_lost!.mean!).toBeCloseTo(p.recovery.mean!, 6);
      expect(p.p_target!.mean!).toBeCloseTo(1 - p.p_clean.mean!, 6);
      expect(injectAt(r, sel, 2).target_gain!.mean!).toBeCloseTo(injectAt(r, sel, 2).drop.mean!, 6);
    }
  });

  it('inside a residual block the whole layer restores only its own path', async () => {
    const n = 6;
    const cleanX = images(n, 51, (_c, r) => 0.6 + 0.4 * r());
    const advX = images(n, 52, (_c, r) => 0.1 * r());
    const m = await model(headNet(equal, 2 * 4.8, true));
    const r = await patching({ model: m }, { layer: 'mid', clean: cleanX, adversarial: advX, cleanClass: new Array(n).fill(0), ks: [C], draws: 1, seed: 5 });
    expect(r.cut).toBe(false);
    // Adversarial skip, clean branch: computed here from the inputs.
    const expected = [...Array(n).keys()].map((i) => p0(equal, 2 * 4.8, reluOf(image(cleanX, i)), image(advX, i)));
    expect(restoreAt(r, 'ranked', C).p_clean.mean!).toBeCloseTo(meanOf(expected), 5);
    expect(restoreAt(r, 'ranked', C).recovery.mean!).toBeLessThan(0.9);
  });

  it('is seeded: the same seed gives the same numbers, another seed other random draws', async () => {
    const run = (seed: number) => patching({ model: equalModel }, { layer: 'mid', clean, adversarial, cleanClass: new Array(N).fill(0), ks: [2], draws: 2, seed, resamples: 200 });
    const a = await run(7);
    expect(await run(7)).toEqual(a);
    expect((await run(8)).restore.random[0].recovery.mean).not.toBe(a.restore.random[0].recovery.mean);
  });

  it('refuses k outside [0, C], a ranking that does not order every channel, and classes out of range', async () => {
    const base = { layer: 'mid', clean, adversarial, cleanClass: new Array(N).fill(0), seed: 0 };
    await expect(patching({ model: equalModel }, { ...base, ks: [C + 1] })).rejects.toThrow(/k = 9 is out of range.*\[0, 8\]/);
    await expect(patching({ model: equalModel }, { ...base, ranking: { from: 'x', channels: [0, 1, 2] } })).rejects.toThrow(/lists 3 channels.*8/);
    await expect(patching({ model: equalModel }, { ...base, ranking: { from: 'x', channels: [0, 0, 1, 2, 3, 4, 5, 6] } })).rejects.toThrow(/appears twice/);
    await expect(patching({ model: equalModel }, { ...base, cleanClass: new Array(N).fill(2) })).rejects.toThrow(/class 2 is not in \[0, 1\]/);
    await expect(patching({ model: equalModel }, { ...base, layer: 'nope' })).rejects.toThrow(/no layer named 'nope'/);
  });

  it('rankByChange orders by mean absolute change, ties by channel', () => {
    // Channel 1 moves by 3 on one image; channel 0 by 1 on both (up and down: the sign must not cancel).
    expect(rankByChange([0, 0, 0, 0, 0, 0], [1, 3, 0, -1, 0, 0], 3)).toEqual([1, 0, 2]);
  });
});

// ---- MobileNetV2 on attacked photographs ----

describe('patching MobileNetV2', () => {
  const LAYER = 'features.17.conv.2';
  let classifier: Classifier;
  let attacked: AttackResult[];
  let clean: Float32Array;
  let adversarial: Float32Array;
  let per: number;

  beforeAll(async () => {
    classifier = await loadClassifier(shared('models', 'mobilenetv2.onnx'));
    const dir = shared('images', 'nips17-dev');
    const labels: { file: string; index: number }[] = JSON.parse(await readFile(path.join(dir, 'labels.json'), 'utf8'));
    const inputs = [];
    for (const l of labels.slice(0, 3)) inputs.push({ name: l.file, pixels: await loadImage(path.join(dir, l.file), classifier.preprocess), label: l.index });
    attacked = await attackImages(classifier, inputs, { norm: 'linf', eps: 4 / 255, alpha: 1 / 255, steps: 3, batch: 3 });
    per = classifier.inputDims.reduce((a, b) => a * b, 1);
    clean = new Float32Array(attacked.length * per);
    adversarial = new Float32Array(attacked.length * per);
    attacked.forEach((a, i) => { clean.set(a.clean, i * per); adversarial.set(a.adversarial, i * per); });
  });

  const probabilities = (logits: ArrayLike<number>, i: number) => softmax(Array.from(logits).slice(i * 1000, (i + 1) * 1000));
  const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, k) => Math.max(m, Math.abs(v - b[k])), 0);

  it.each(['features.17.conv.2', 'features.14.conv.1'])('%s: an all-zero mask is the model; the whole layer from another image gives that image\'s probabilities', async (layer) => {
    const own = await classifier.model.forward(clean, [layer]);
    const act = own.activations.get(layer)!;
    const patched = await PatchedLayer.compile(classifier.model, layer);
    try {
      const n = attacked.length;
      const c = patched.channels;
      const zero = await patched.capture(clean);
      for (let i = 0; i < n; i++) expect(maxDiff(probabilities(zero.logits, i), probabilities(own.logits!, i))).toBeLessThan(1e-5);
      const scale = Array.from(act.data).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expect(maxDiff(zero.activation, act.data) / scale).toBeLessThan(1e-5);
      // Image i runs with image (i+1)'s activations, taken from the model's own forward pass (not the patched graph).
      const shift = new Float32Array(act.data.length);
      const size = patched.size;
      for (let i = 0; i < n; i++) shift.set(act.data.subarray(((i + 1) % n) * size, ((i + 1) % n + 1) * size), i * size);
      const swapped = await patched.run(clean, new Float32Array(n * c).fill(1), shift);
      // The same patch continued from the capture, through the network after the layer only.
      const continued = await patched.continue(zero, new Float32Array(n * c).fill(1), shift);
      for (let i = 0; i < n; i++) {
        const other = probabilities(own.logits!, (i + 1) % n);
        expect(maxDiff(probabilities(swapped.logits, i), other)).toBeLessThan(1e-5);
        expect(maxDiff(probabilities(continued, i), other)).toBeLessThan(1e-5);
        // …and that is a different answer from the image's own, or the check would prove nothing.
        expect(maxDiff(probabilities(own.logits!, i), other)).toBeGreaterThan(0.1);
      }
    } finally {
      await patched.release();
    }
  });

  it('inside a residual block, continues a capture with the block\'s input fed beside the layer: the same probabilities as patching the pixels', async () => {
    const layer = 'features.16.conv.1';
    const patched = await PatchedLayer.compile(classifier.model, layer);
    try {
      expect(patched.cut).toBe(false);
      expect(patched.frontier).toHaveLength(2); // the layer and the block's input, which the residual Add reads
      const n = attacked.length;
      const c = patched.channels;
      const adv = await patched.capture(adversarial);
      // Half the channels of each image from its clean activations (restore), a different half per image.
      const own = await patched.capture(clean);
      const mask = Float32Array.from({ length: n * c }, (_, k) => ((k * 7 + Math.floor(k / c)) % 2));
      const continued = await patched.continue(adv, mask, own.activation);
      const whole = (await patched.run(adversarial, mask, own.activation)).logits;
      for (let i = 0; i < n; i++) expect(maxDiff(probabilities(continued, i), probabilities(whole, i))).toBeLessThan(1e-5);
      // …and the patch changed something, or the comparison would prove nothing.
      expect(Math.max(...Array.from({ length: n }, (_, i) => maxDiff(probabilities(continued, i), probabilities(adv.logits, i))))).toBeGreaterThan(1e-3);
    } finally {
      await patched.release();
    }
  });

  it('knows which layers a residual connection bypasses (blocks 15 and 16 add their input; 14 and 17 do not)', async () => {
    for (const [layer, cut] of [['features.14.conv.1', true], ['features.17.conv.2', true], ['features.15.conv.1', false], ['features.16.conv.2', false]] as const) {
      const p = await PatchedLayer.compile(classifier.model, layer);
      expect(p.cut, layer).toBe(cut);
      await p.release();
    }
  });

  it('on attacked photographs: k = C restores the clean and injects the adversarial probabilities, k = 0 neither', async () => {
    const fwdClean = (await classifier.model.forward(clean)).logits!;
    const fwdAdv = (await classifier.model.forward(adversarial)).logits!;
    const cls = attacked.map((a) => a.label);
    const pClean = cls.map((k, i) => probabilities(fwdClean, i)[k]);
    const pAdv = cls.map((k, i) => probabilities(fwdAdv, i)[k]);
    expect(attacked.every((a) => a.success)).toBe(true);
    const r = await patching(classifier, { layer: LAYER, clean, adversarial, cleanClass: cls, ks: [0, 1, 320], draws: 2, seed: 0 });
    expect(r.channels).toBe(320);
    expect(r.ks).toEqual([0, 1, 320]);
    expect(r.images.every((im) => im.counted)).toBe(true);
    for (const sel of ['ranked', 'random', 'active'] as const) {
      expect(restoreAt(r, sel, 320).p_clean.mean!).toBeCloseTo(meanOf(pClean), 5);
      expect(restoreAt(r, sel, 320).recovery.mean!).toBeCloseTo(1, 4);
      expect(injectAt(r, sel, 320).p_clean.mean!).toBeCloseTo(meanOf(pAdv), 5);
      expect(injectAt(r, sel, 320).drop.mean!).toBeCloseTo(1, 4);
      expect(restoreAt(r, sel, 0).p_clean.mean!).toBeCloseTo(meanOf(pAdv), 5);
      expect(restoreAt(r, sel, 0).recovery.mean!).toBeCloseTo(0, 4);
      expect(injectAt(r, sel, 0).drop.mean!).toBeCloseTo(0, 4);
    }
    r.images.forEach((im, i) => expect(im.p_clean.clean).toBeCloseTo(pClean[i], 5));
  });
});

// ---- the command ----

describe('atlas patch', () => {
  const MODEL = () => shared('models', 'mobilenetv2.onnx');
  let dir: string;
  let attack: string;


  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'atlas-patch-'));
    const photos = path.join(dir, 'photos');
    await mkdir(photos);
    const src = shared('images', 'nips17-dev');
    const labels: { file: string }[] = JSON.parse(await readFile(path.join(src, 'labels.json'), 'utf8'));
    for (const l of labels.slice(3, 5)) await copyFile(path.join(src, l.file), path.join(photos, l.file));
    attack = path.join(dir, 'attack');
    const r = await atlas('attack', '--model', MODEL(), '--images', photos, '--eps', '4/255', '--alpha', '1/255', '--steps', '3', '--out', attack);
    expect(r.code, r.stderr).toBe(0);
  });

  const args = (out: string, ...extra: string[]) => ['patch', '--model', MODEL(), '--clean', attack, '--adversarial', attack, '--layer', 'features.17.conv.2', '--out', out, ...extra];

  it('writes patching.json (schema-checked, classes from the attack, C always added) and prints the table', async () => {
    const out = path.join(dir, 'out');
    const r = await atlas(...args(out, '--k', '2,1', '--draws', '2'));
    expect(r.code, r.stderr).toBe(0);
    const file = PatchingFile.parse(JSON.parse(await readFile(path.join(out, 'patching.json'), 'utf8')));
    const rows: { label: number; images: { adversarial: string } }[] = JSON.parse(await readFile(path.join(attack, 'results.json'), 'utf8'));
    expect(file.ks).toEqual([1, 2, 320]);
    expect(file.n).toBe(2);
    expect(file.classes_from).toBe('attack');
    expect(file.images.map((im) => im.clean_class)).toEqual(file.pairs.map((p) => rows.find((row) => row.images.adversarial === p.adversarial)!.label));
    expect(file.ranking.channels).toHaveLength(320);
    expect(file.restore.ranked.at(-1)!.recovery.mean!).toBeCloseTo(1, 4);
    expect(file.inject.random.at(-1)!.drop.mean!).toBeCloseTo(1, 4);
    const table = r.stdout.trim().split('\n');
    expect(table[0]).toMatch(/^features\.17\.conv\.2: 320 channels, 2 pair\(s\), untargeted/);
    expect(table.slice(-3).map((l) => l.trim().split(/\s+/)[0])).toEqual(['1', '2', '320']);
    expect(r.stderr).toMatch(/wrote .*patching\.json/);
  });

  it('takes a ranking file', async () => {
    const out = path.join(dir, 'ranked');
    const order = [...Array(320).keys()].reverse();
    const ranking = path.join(dir, 'ranking.json');
    await writeFile(ranking, JSON.stringify({ channels: order }));
    const r = await atlas(...args(out, '--k', '1', '--draws', '1', '--ranking', ranking));
    expect(r.code, r.stderr).toBe(0);
    const file = PatchingFile.parse(JSON.parse(await readFile(path.join(out, 'patching.json'), 'utf8')));
    expect(file.ranking).toEqual({ from: 'given (ranking.json)', channels: order, held_out: null });
  });

  it('without results.json, takes each clean class from the model\'s clean top-1', async () => {
    const cleanDir = path.join(dir, 'bare-clean');
    const advDir = path.join(dir, 'bare-adversarial');
    await mkdir(cleanDir);
    await mkdir(advDir);
    const rows: { top5_before: { class: number }[]; images: { clean: string; adversarial: string } }[] = JSON.parse(await readFile(path.join(attack, 'results.json'), 'utf8'));
    for (const row of rows) {
      await copyFile(path.join(attack, row.images.clean), path.join(cleanDir, row.images.clean));
      await copyFile(path.join(attack, row.images.adversarial), path.join(advDir, row.images.adversarial));
    }
    const out = path.join(dir, 'bare');
    const r = await atlas('patch', '--model', MODEL(), '--clean', cleanDir, '--adversarial', advDir, '--layer', 'features.17.conv.2', '--k', '1', '--draws', '1', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const file = PatchingFile.parse(JSON.parse(await readFile(path.join(out, 'patching.json'), 'utf8')));
    expect(file.classes_from).toBe('prediction');
    expect(file.images.map((im) => im.clean_class)).toEqual(file.pairs.map((p) => rows.find((row) => row.images.clean === p.clean)!.top5_before[0].class));
  });

  it('orders channels by the fragility effect of an `atlas analyse` fragility.json', async () => {
    const src = shared('images', 'nips17-dev');
    const labels: { file: string }[] = JSON.parse(await readFile(path.join(src, 'labels.json'), 'utf8'));
    const reference = path.join(dir, 'reference');
    await mkdir(reference);
    const chosen = labels.slice(10, 22); // 12 photos: polysemanticity needs more than its 10 strongest
    for (const l of chosen) await copyFile(path.join(src, l.file), path.join(reference, l.file));
    await writeFile(path.join(reference, 'labels.json'), JSON.stringify(chosen));
    const analysis = path.join(dir, 'analysis');
    const a = await atlas('analyse', '--model', MODEL(), '--reference', reference, '--layer', 'features.17.conv.2', '--clean', attack, '--adversarial', attack, '--out', analysis);
    expect(a.code, a.stderr).toBe(0);
    const fragility: { layers: Record<string, { channel: number; effect: number }[]> } = JSON.parse(await readFile(path.join(analysis, 'fragility.json'), 'utf8'));
    const byEffect = [...fragility.layers['features.17.conv.2']].sort((x, y) => y.effect - x.effect || x.channel - y.channel).map((x) => x.channel);
    const out = path.join(dir, 'by-fragility');
    const r = await atlas(...args(out, '--k', '4', '--draws', '1', '--ranking', path.join(analysis, 'fragility.json')));
    expect(r.code, r.stderr).toBe(0);
    const file = PatchingFile.parse(JSON.parse(await readFile(path.join(out, 'patching.json'), 'utf8')));
    expect(file.ranking).toEqual({ from: 'fragility effect (fragility.json)', channels: byEffect, held_out: null });
    expectOneLineError(await atlas('patch', '--model', MODEL(), '--clean', attack, '--adversarial', attack, '--layer', 'features.14.conv.1', '--ranking', path.join(analysis, 'fragility.json'), '--out', out),
      /fragility\.json has no layer 'features\.14\.conv\.1' \(it has features\.17\.conv\.2\)/);
  });

  it('stops bad input with one line: unpaired files, unknown layer, k out of range, an incomplete ranking', async () => {
    const out = path.join(dir, 'bad');
    const lonely = path.join(dir, 'lonely');
    await mkdir(lonely);
    const oneClean = (await readdir(attack)).find((f) => f.endsWith('.clean.png'))!;
    await copyFile(path.join(attack, oneClean), path.join(lonely, 'stray.png'));
    expectOneLineError(await atlas('patch', '--model', MODEL(), '--clean', lonely, '--adversarial', attack, '--layer', 'features.17.conv.2', '--out', out), /unpaired images .*stray\.png/);
    expectOneLineError(await atlas('patch', '--model', MODEL(), '--clean', attack, '--adversarial', attack, '--layer', 'features.99', '--out', out), /no layer named 'features\.99'/);
    expectOneLineError(await atlas(...args(out, '--k', '1,400')), /--k 400 is out of range: layer features\.17\.conv\.2 has 320 channels/);
    expectOneLineError(await atlas(...args(out, '--k', 'x')), /--k must be/);
    const partial = path.join(dir, 'partial.json');
    await writeFile(partial, JSON.stringify({ channels: [0, 1, 2] }));
    expectOneLineError(await atlas(...args(out, '--ranking', partial)), /orders 3 channels; the layer has 320/);
  });
});
