// Adam (Kingma & Ba), as torch.optim.Adam with its defaults (β = 0.9, 0.999; ε = 1e-8), minimising.
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
