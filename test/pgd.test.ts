// PGD and FGSM against an analytic model (a linear softmax classifier on tiny images, its cross-entropy gradient
// written out by hand), so the attack logic is checked independently of onnxruntime.
import { describe, expect, it } from 'vitest';
import { fgsm, pgd, type LossGradient, type PgdOptions } from '../src/compute/attacks/pgd.ts';
import { createRng } from '../src/compute/random.ts';

const [N, C, H, W] = [3, 3, 4, 4];
const D = C * H * W;
const K = 5;
const dims = [N, C, H, W] as const;

function linearModel(seed: number): LossGradient {
  const rng = createRng(seed);
  const weights = Float64Array.from({ length: K * D }, () => rng.normal());
  return async (x, labels) => {
    const n = labels.length;
    const logits = new Float32Array(n * K);
    const loss = new Float32Array(n);
    const grad = new Float32Array(n * D);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < K; k++) {
        let z = 0;
        for (let d = 0; d < D; d++) z += weights[k * D + d] * x[i * D + d];
        logits[i * K + k] = z;
      }
      const row = Array.from(logits.subarray(i * K, (i + 1) * K));
      const max = Math.max(...row);
      const exps = row.map((z) => Math.exp(z - max));
      const total = exps.reduce((a, b) => a + b, 0);
      loss[i] = Math.log(total) + max - row[labels[i]];
      // dCE/dz = softmax − onehot; dz/dx = W
      for (let k = 0; k < K; k++) {
        const dz = exps[k] / total - (k === labels[i] ? 1 : 0);
        for (let d = 0; d < D; d++) grad[i * D + d] += dz * weights[k * D + d];
      }
    }
    return { loss, grad, logits };
  };
}

const model = linearModel(3);
const rng = createRng(5);
const x0 = Float32Array.from({ length: N * D }, () => rng.uniform());
// Pixels at the edges of [0,1] exercise the second clip.
x0[0] = 0;
x0[1] = 1;
const labels = Int32Array.from([0, 1, 2]);
const base: PgdOptions = { norm: 'linf', eps: 8 / 255, alpha: 2 / 255, steps: 6, targeted: false };

function checkInside(adv: Float32Array, eps: number, norm: 'linf' | 'l2') {
  for (const v of adv) expect(v >= 0 && v <= 1).toBe(true);
  for (let i = 0; i < N; i++) {
    let m = 0;
    let s = 0;
    for (let d = 0; d < D; d++) {
      const delta = adv[i * D + d] - x0[i * D + d];
      m = Math.max(m, Math.abs(delta));
      s += delta * delta;
    }
    if (norm === 'linf') expect(m).toBeLessThanOrEqual(eps + 1e-6);
    else expect(Math.sqrt(s)).toBeLessThanOrEqual(eps + 1e-6);
  }
}

describe('PGD', () => {
  it('stays inside the eps-ball and [0,1] after every step count', async () => {
    for (let steps = 1; steps <= 6; steps++) {
      const r = await pgd(model, x0, dims, labels, { ...base, steps });
      checkInside(r.adv, base.eps, 'linf');
    }
  });

  it('one untargeted step is x + α·sign(∇), clipped', async () => {
    const { grad } = await model(x0, labels);
    const r = await pgd(model, x0, dims, labels, { ...base, steps: 1 });
    for (let k = 0; k < x0.length; k++) {
      const expected = Math.min(1, Math.max(0, x0[k] + base.alpha * Math.sign(grad[k])));
      expect(r.adv[k]).toBeCloseTo(expected, 6);
    }
  });

  it('untargeted raises the true-label loss; targeted lowers the target loss', async () => {
    const before = (await model(x0, labels)).loss;
    const up = await pgd(model, x0, dims, labels, base);
    up.loss.forEach((l, i) => expect(l).toBeGreaterThan(before[i]));
    const targets = Int32Array.from([4, 4, 4]);
    const beforeT = (await model(x0, targets)).loss;
    const down = await pgd(model, x0, dims, targets, { ...base, targeted: true });
    down.loss.forEach((l, i) => expect(l).toBeLessThan(beforeT[i]));
  });

  it('FGSM is one PGD step with α = ε', async () => {
    const a = await fgsm(model, x0, dims, labels, 4 / 255);
    const b = await pgd(model, x0, dims, labels, { norm: 'linf', eps: 4 / 255, alpha: 4 / 255, steps: 1, targeted: false });
    expect(Array.from(a.adv)).toEqual(Array.from(b.adv));
    expect(a.steps).toBe(1);
  });

  it('random start is seeded: same seed, same result; another seed, another start', async () => {
    const opts = { ...base, steps: 0, randomStart: true };
    const a = await pgd(model, x0, dims, labels, { ...opts, seed: 1 });
    const b = await pgd(model, x0, dims, labels, { ...opts, seed: 1 });
    const c = await pgd(model, x0, dims, labels, { ...opts, seed: 2 });
    expect(Array.from(a.adv)).toEqual(Array.from(b.adv));
    expect(Array.from(a.adv)).not.toEqual(Array.from(c.adv));
    expect(Array.from(a.adv)).not.toEqual(Array.from(x0));
    checkInside(a.adv, base.eps, 'linf');
  });

  it('L2: perturbations stay within the L2 ball, with and without random start', async () => {
    for (const randomStart of [false, true]) {
      const r = await pgd(model, x0, dims, labels, { ...base, norm: 'l2', eps: 0.5, alpha: 0.2, steps: 8, randomStart, seed: 3 });
      checkInside(r.adv, 0.5, 'l2');
      const before = (await model(x0, labels)).loss;
      r.loss.forEach((l, i) => expect(l).toBeGreaterThan(before[i]));
    }
  });

  it('early stop halts once every image succeeds, and is off by default', async () => {
    const flipped = (logits: ArrayLike<number>, i: number) => {
      let best = 0;
      for (let k = 1; k < K; k++) if (logits[i * K + k] > logits[i * K + best]) best = k;
      return best !== labels[i];
    };
    const stopped = await pgd(model, x0, dims, labels, { ...base, eps: 1, alpha: 0.5, steps: 50, earlyStop: flipped });
    expect(stopped.steps).toBeLessThan(50);
    for (let i = 0; i < N; i++) expect(flipped(stopped.logits, i)).toBe(true);
    const full = await pgd(model, x0, dims, labels, { ...base, eps: 1, alpha: 0.5, steps: 50 });
    expect(full.steps).toBe(50);
  });

  it('rejects bad options with a clear message', async () => {
    await expect(pgd(model, x0, dims, labels, { ...base, eps: Number.NaN })).rejects.toThrow(/eps/);
    await expect(pgd(model, x0, dims, labels, { ...base, alpha: 0 })).rejects.toThrow(/alpha/);
    await expect(pgd(model, x0, dims, labels, { ...base, steps: 1.5 })).rejects.toThrow(/steps/);
    await expect(pgd(model, x0, dims, Int32Array.from([0]), base)).rejects.toThrow(/labels/);
    await expect(pgd(model, x0.subarray(1), dims, labels, base)).rejects.toThrow(/dims/);
  });
});
