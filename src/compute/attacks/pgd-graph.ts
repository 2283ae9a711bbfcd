// One PGD step written as ONNX nodes after the gradient, so the whole step — gradient, update, both clips — runs
// inside the execution provider and the image never has to leave the device between steps (device-pgd.ts). The
// arithmetic is pgd.ts's, in the model's float type:
//   x ← clip_[0,1]( clip_[x₀−ε, x₀+ε]( x ± α·sign(∇ₓL) ) )      (L∞)
//   x ← clip_[0,1]( x₀ + Π_{‖δ‖₂≤ε}( x ± α·∇ₓL/‖∇ₓL‖₂ − x₀ ) )  (L2, per image)
import { GraphBuilder } from '../onnx/builder.ts';
import { PIXELS } from '../onnx/normalize.ts';
import type { GraphExtension } from '../runtime/graph-extension.ts';

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

/**
 * The PGD step as the runtime's graph extension: inputs `clean` (x₀), `pgd_eps`, `pgd_signed_alpha`; outputs `next`
 * (fed back as the pixels) and `clean_out` (x₀ again, fed back as `clean`), so a loop keeps both on the device.
 */
export function pgdStep(u: PgdUpdate): GraphExtension {
  return {
    key: `pgd:${u.norm}`,
    state: { [NEXT]: PIXELS, [CLEAN_OUT]: CLEAN },
    extend({ graph, floatType }, grad) {
      const pixelsInput = graph.inputs.find((i) => i.name === PIXELS)!;
      graph.reserve(CLEAN);
      graph.inputs.push({ name: CLEAN, type: pixelsInput.type });
      for (const scalar of [EPS, SIGNED_ALPHA]) {
        graph.reserve(scalar);
        graph.inputs.push({ name: scalar, type: { tensorType: { elemType: floatType, shape: { dim: [] } } } });
      }
      const next = appendPgdUpdate(new GraphBuilder(graph, floatType), { pixels: PIXELS, clean: CLEAN, grad, eps: EPS, signedAlpha: SIGNED_ALPHA }, u);
      for (const [from, to] of [[next, NEXT], [CLEAN, CLEAN_OUT]] as const) {
        graph.reserve(to);
        graph.nodes.push({ name: graph.fresh(`pgd/${to}`), opType: 'Identity', input: [from], output: [to] });
        graph.addOutput(to);
      }
    },
  };
}

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
