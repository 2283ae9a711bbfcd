// The control for an attack: the same image under a random perturbation of the attack's size, saved on the same
// 8-bit grid. A neuron that moves as much under random noise of budget ε as under the attack is sensitive, not
// fragile to the attack; analysis/fragility-effect.ts measures the attack against this.
//   L∞: every value moved by ±ε with independent fair signs — the corner of the ε-ball an L∞ attack mostly ends in
//       (PGD's sign steps saturate most pixels at ±ε), so both perturbations have the same L∞ and about the same L2.
//   L2: a uniformly random direction (a normalized Gaussian vector) of length ε.
// Both are then rounded as the adversarial images are (quantize.ts), so the control is inside the same ball.
import type { Rng } from '../random.ts';
import { gridToFloat, quantizeInBall, quantizeInL2Ball } from './quantize.ts';

/** A random perturbation of `clean` ([C,H,W] pixels in [0,1]) inside the attack's ball, on the 8-bit grid. */
export function controlImage(clean: Float32Array, norm: 'linf' | 'l2', eps: number, rng: Rng): Float32Array {
  if (!(eps >= 0)) throw new RangeError(`control: eps must be ≥ 0, got ${eps}`);
  const moved = new Float32Array(clean.length);
  if (norm === 'linf') {
    for (let k = 0; k < clean.length; k++) moved[k] = clamp01(clean[k] + (rng.uniform() < 0.5 ? -eps : eps));
    return gridToFloat(quantizeInBall(moved, clean, eps));
  }
  const direction = Float64Array.from({ length: clean.length }, () => rng.normal());
  const length = Math.hypot(...chunks(direction));
  for (let k = 0; k < clean.length; k++) moved[k] = clamp01(clean[k] + (eps * direction[k]) / length);
  return gridToFloat(quantizeInL2Ball(moved, clean, eps, 1));
}

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

/** Partial sums of squares, so that the norm of a 150 000-value vector does not spread its values over the stack. */
function chunks(v: Float64Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < v.length; i += 4096) {
    let s = 0;
    for (let k = i; k < Math.min(v.length, i + 4096); k++) s += v[k] * v[k];
    out.push(Math.sqrt(s));
  }
  return out;
}
