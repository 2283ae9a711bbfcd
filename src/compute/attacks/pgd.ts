// Projected gradient descent (Madry et al. 2018) against any differentiable loss, in pixel space. The update, the
// order of the two clips and sign(0) = 0 follow the PyTorch reference the golden test compares with:
//   x ← clip_[0,1]( clip_[x₀−ε, x₀+ε]( x ± α·sign(∇ₓL) ) )      (L∞)
//   x ← clip_[0,1]( x₀ + Π_{‖δ‖₂≤ε}( x ± α·∇ₓL/‖∇ₓL‖₂ − x₀ ) )  (L2)
// with + for untargeted attacks (raise the true label's loss) and − for targeted ones (lower the target's).
import { createRng } from '../random.ts';

export interface LossGradient {
  /**
   * x: [N,C,H,W] pixels in [0,1]; labels: per-image class (true label if untargeted, target if targeted).
   * Returns the loss per image [N], d(Σ loss)/dx [N,C,H,W] and the logits [N,K], all at x.
   */
  (x: Float32Array, labels: Int32Array): Promise<{ loss: ArrayLike<number>; grad: ArrayLike<number>; logits: ArrayLike<number> }>;
}

export interface PgdOptions {
  norm: 'linf' | 'l2';
  eps: number;
  alpha: number;
  steps: number;
  targeted: boolean;
  /** start from a uniform point of the L∞ ball / a uniform point of the L2 ball (seeded) */
  randomStart?: boolean;
  seed?: number;
  /**
   * Index of the batch's first image in the whole run: image i's random start is drawn from its own stream
   * (seed, firstImage + i), so it does not depend on how the run was cut into batches.
   */
  firstImage?: number;
  /** per-image success test on the logits at the current x; stop once every image passes (off when undefined) */
  earlyStop?: (logits: ArrayLike<number>, image: number) => boolean;
  onStep?: (step: number, loss: ArrayLike<number>) => void;
}

export interface PgdResult {
  adv: Float32Array;
  /** steps taken (fewer than asked only with early stopping) */
  steps: number;
  /** loss and logits at the returned adversarial images (one extra evaluation after the last step) */
  loss: Float32Array;
  logits: Float32Array;
  /** loss per image before each step, then at the end */
  lossCurve: Float32Array[];
}

export async function pgd(
  lossGrad: LossGradient,
  x0: Float32Array,
  dims: readonly [number, number, number, number],
  labels: Int32Array,
  opts: PgdOptions,
): Promise<PgdResult> {
  const [n, c, h, w] = dims;
  const per = c * h * w;
  validatePgd(x0, dims, labels, opts);
  const x = Float32Array.from(x0);
  if (opts.randomStart && opts.eps > 0) randomStart(x, x0, n, per, opts);
  const sign = opts.targeted ? -1 : 1;
  const lossCurve: Float32Array[] = [];
  let steps = 0;
  for (let t = 0; t < opts.steps; t++) {
    const r = await lossGrad(x, labels);
    lossCurve.push(Float32Array.from(r.loss));
    if (everyImageSucceeded(opts, r.logits, n)) break;
    if (opts.norm === 'linf') {
      for (let k = 0; k < x.length; k++) {
        const g = r.grad[k];
        const stepped = x[k] + sign * opts.alpha * (g > 0 ? 1 : g < 0 ? -1 : 0);
        const lo = x0[k] - opts.eps;
        const hi = x0[k] + opts.eps;
        x[k] = Math.min(1, Math.max(0, Math.min(hi, Math.max(lo, stepped))));
      }
    } else {
      for (let i = 0; i < n; i++) {
        const norm = Math.sqrt(sumSquares(r.grad, i * per, per));
        const scale = norm > 0 ? (sign * opts.alpha) / norm : 0;
        for (let k = i * per; k < (i + 1) * per; k++) x[k] += scale * r.grad[k];
        projectL2(x, x0, i * per, per, opts.eps);
      }
    }
    steps++;
    opts.onStep?.(steps, r.loss);
  }
  const final = await lossGrad(x, labels);
  lossCurve.push(Float32Array.from(final.loss));
  return { adv: x, steps, loss: Float32Array.from(final.loss), logits: Float32Array.from(final.logits), lossCurve };
}

/** Early stopping: asked for, and every image of the batch passes the success test at the current logits. */
export function everyImageSucceeded(opts: Pick<PgdOptions, 'earlyStop'>, logits: ArrayLike<number>, n: number): boolean {
  return !!opts.earlyStop && Array.from({ length: n }, (_, i) => opts.earlyStop!(logits, i)).every(Boolean);
}

/** FGSM (Goodfellow et al. 2015): one L∞ step of size eps, no random start. */
export function fgsm(lossGrad: LossGradient, x0: Float32Array, dims: readonly [number, number, number, number], labels: Int32Array, eps: number, targeted = false): Promise<PgdResult> {
  return pgd(lossGrad, x0, dims, labels, { norm: 'linf', eps, alpha: eps, steps: 1, targeted });
}

function sumSquares(a: ArrayLike<number>, start: number, len: number): number {
  let s = 0;
  for (let k = start; k < start + len; k++) s += a[k] * a[k];
  return s;
}

/** Scale the perturbation of one image into the L2 ball, then clip to [0,1]. */
function projectL2(x: Float32Array, x0: Float32Array, start: number, len: number, eps: number): void {
  let s = 0;
  for (let k = start; k < start + len; k++) s += (x[k] - x0[k]) ** 2;
  const norm = Math.sqrt(s);
  const f = norm > eps ? eps / norm : 1;
  for (let k = start; k < start + len; k++) x[k] = Math.min(1, Math.max(0, x0[k] + (x[k] - x0[k]) * f));
}

export function randomStart(x: Float32Array, x0: Float32Array, n: number, per: number, opts: Pick<PgdOptions, 'norm' | 'eps' | 'seed' | 'firstImage'>): void {
  const root = createRng(opts.seed ?? 0).fork('pgd-random-start');
  for (let i = 0; i < n; i++) {
    const rng = root.fork(`image:${(opts.firstImage ?? 0) + i}`);
    if (opts.norm === 'linf') {
      for (let k = i * per; k < (i + 1) * per; k++) x[k] = Math.min(1, Math.max(0, x0[k] + (2 * rng.uniform() - 1) * opts.eps));
      continue;
    }
    // Uniform in the L2 ball: a Gaussian direction and radius eps·u^(1/d).
    const dir = Float64Array.from({ length: per }, () => rng.normal());
    const norm = Math.sqrt(sumSquares(dir, 0, per));
    const radius = opts.eps * Math.pow(rng.uniform(), 1 / per);
    for (let k = 0; k < per; k++) x[i * per + k] = Math.min(1, Math.max(0, x0[i * per + k] + (dir[k] / norm) * radius));
  }
}

export function validatePgd(x0: Float32Array, dims: readonly number[], labels: Int32Array, opts: PgdOptions): void {
  const [n, c, h, w] = dims;
  if (dims.length !== 4 || dims.some((d) => !Number.isInteger(d) || d <= 0)) throw new Error(`pgd: dims must be [N,C,H,W] positive integers, got [${dims}]`);
  if (x0.length !== n * c * h * w) throw new Error(`pgd: x has ${x0.length} values but dims [${dims}] need ${n * c * h * w}`);
  if (labels.length !== n) throw new Error(`pgd: ${labels.length} labels for ${n} images`);
  if (!Number.isFinite(opts.eps) || opts.eps < 0) throw new Error(`pgd: eps must be a finite number ≥ 0, got ${opts.eps}`);
  if (!(opts.alpha > 0) || !Number.isFinite(opts.alpha)) throw new Error(`pgd: alpha must be a positive number, got ${opts.alpha}`);
  if (!Number.isInteger(opts.steps) || opts.steps < 0) throw new Error(`pgd: steps must be an integer ≥ 0, got ${opts.steps}`);
  if (opts.norm !== 'linf' && opts.norm !== 'l2') throw new Error(`pgd: norm must be 'linf' or 'l2', got ${opts.norm}`);
}
