// Adam (Kingma & Ba), as torch.optim.Adam with its defaults (β = 0.9, 0.999; ε = 1e-8), minimising.
import type { GraphBuilder } from '../onnx/builder.ts';

export class Adam {
  private readonly m: Float64Array;
  private readonly v: Float64Array;
  private t = 0;
  readonly lr: number;

  constructor(size: number, lr = 0.05) {
    this.m = new Float64Array(size);
    this.v = new Float64Array(size);
    this.lr = lr;
  }

  /** params ← params − lr · m̂ / (√v̂ + ε), for the gradient of the loss */
  step(params: Float32Array, grad: ArrayLike<number>): void {
    this.t++;
    const b1 = 0.9;
    const b2 = 0.999;
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    for (let k = 0; k < params.length; k++) {
      const g = grad[k];
      this.m[k] = b1 * this.m[k] + (1 - b1) * g;
      this.v[k] = b2 * this.v[k] + (1 - b2) * g * g;
      params[k] -= (this.lr * (this.m[k] / c1)) / (Math.sqrt(this.v[k] / c2) + 1e-8);
    }
  }
}

/** Graph names of the Adam step's inputs: per-step scalars lr/(1−β₁ᵗ) and 1−β₂ᵗ, so one program serves every step. */
export const ADAM_LR_C1 = 'featurevis/adam/lr_c1';
export const ADAM_C2 = 'featurevis/adam/c2';

/**
 * The same update as ONNX nodes after the gradient (float state instead of float64: the device loop keeps m and v
 * in device memory next to the parameters). Returns the next params, m and v.
 */
export function appendAdam(b: GraphBuilder, t: { params: string; grad: string; m: string; v: string }): { params: string; m: string; v: string } {
  const [b1, b2] = [0.9, 0.999];
  const m = b.op('Add', [b.op('Mul', [t.m, b.scalar(b1)]), b.op('Mul', [t.grad, b.scalar(1 - b1)])]);
  const v = b.op('Add', [b.op('Mul', [t.v, b.scalar(b2)]), b.op('Mul', [b.op('Mul', [t.grad, t.grad]), b.scalar(1 - b2)])]);
  const denominator = b.op('Add', [b.op('Sqrt', [b.op('Div', [v, ADAM_C2])]), b.scalar(1e-8)]);
  const params = b.op('Sub', [t.params, b.op('Div', [b.op('Mul', [m, ADAM_LR_C1]), denominator])]);
  return { params, m, v };
}
