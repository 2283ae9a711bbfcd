// One PGD step written as ONNX nodes after the gradient, so the whole step — gradient, update, both clips — runs
// inside the execution provider and the image never has to leave the device between steps (device-pgd.ts). The
// arithmetic is pgd.ts's, in the model's float type:
//   x ← clip_[0,1]( clip_[x₀−ε, x₀+ε]( x ± α·sign(∇ₓL) ) )      (L∞)
//   x ← clip_[0,1]( x₀ + Π_{‖δ‖₂≤ε}( x ± α·∇ₓL/‖∇ₓL‖₂ − x₀ ) )  (L2, per image)
import type { GraphBuilder } from '../onnx/builder.ts';

/** Only the norm shapes the graph: ε and the signed step size are inputs, so one compiled program serves every budget. */
export interface PgdUpdate {
  norm: 'linf' | 'l2';
}

/** Graph names of the update's extra inputs and outputs. */
export const CLEAN = 'clean';
/** scalar ε */
export const EPS = 'pgd_eps';
/** scalar ±α: + for untargeted attacks (climb the true label's loss), − for targeted ones */
export const SIGNED_ALPHA = 'pgd_signed_alpha';
export const NEXT = 'next';
/** x₀ passed through, so a loop can keep it on the device instead of sending it again every step */
export const CLEAN_OUT = 'clean_out';

/** Appends the update; pixels, clean and grad are [N,C,H,W], eps and signedAlpha scalars. Returns the next pixels. */
export function appendPgdUpdate(b: GraphBuilder, t: { pixels: string; clean: string; grad: string; eps: string; signedAlpha: string }, u: PgdUpdate): string {
  b.scope = 'pgd';
  const { pixels, clean, grad, eps, signedAlpha } = t;
  const zero = b.scalar(0);
  const one = b.scalar(1);
  const clip01 = (x: string) => b.op('Min', [b.op('Max', [x, zero]), one]);
  if (u.norm === 'linf') {
    const stepped = b.op('Add', [pixels, b.op('Mul', [b.op('Sign', [grad]), signedAlpha])]);
    const inBall = b.op('Min', [b.op('Max', [stepped, b.op('Sub', [clean, eps])]), b.op('Add', [clean, eps])]);
    return clip01(inBall);
  }
  const norm = (x: string) => b.op('Sqrt', [b.reduceSum(b.op('Mul', [x, x]), [1, 2, 3])]); // [N,1,1,1]
  const g = norm(grad);
  // A zero gradient takes no step (the division's inf is never selected).
  const scale = b.op('Where', [b.op('Greater', [g, zero]), b.op('Div', [signedAlpha, g]), zero]);
  const delta = b.op('Sub', [b.op('Add', [pixels, b.op('Mul', [grad, scale])]), clean]);
  const d = norm(delta);
  const shrink = b.op('Where', [b.op('Greater', [d, eps]), b.op('Div', [eps, d]), one]);
  return clip01(b.op('Add', [clean, b.op('Mul', [delta, shrink])]));
}
