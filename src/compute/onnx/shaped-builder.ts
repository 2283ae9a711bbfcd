// A GraphBuilder that also records the static shape of every tensor it emits. The autodiff reads shapes (ranks,
// broadcast axes) from the probe, which only saw the model; nodes added in front of the model — the feature
// visualization's image parameterization — carry their own. In op() and declare() a leading −1 stands for the batch,
// another −1 for a size that changes from run to run (the area of a randomly scaled image); opExact() takes dims as
// given, for tensors whose batch is not the first axis (the sampling stages' [area,B,C]).
import type { GraphBuilder } from './builder.ts';
import type { AttrInput } from './proto.ts';

export class ShapedBuilder {
  readonly b: GraphBuilder;
  readonly batch: number;
  readonly dims = new Map<string, number[]>();

  constructor(b: GraphBuilder, batch: number) {
    this.b = b;
    this.batch = batch;
  }

  op(opType: string, inputs: readonly string[], dims: readonly number[], attrs: Record<string, AttrInput | undefined> = {}): string {
    const out = this.b.op(opType, inputs, attrs);
    this.declare(out, dims);
    return out;
  }

  /** op() for a tensor whose batch is not its first axis: `dims` are taken as given (−1: a size that changes). */
  opExact(opType: string, inputs: readonly string[], dims: readonly number[], attrs: Record<string, AttrInput | undefined> = {}): string {
    const out = this.b.op(opType, inputs, attrs);
    this.dims.set(out, [...dims]);
    return out;
  }

  declare(tensor: string, dims: readonly number[]): void {
    this.dims.set(tensor, dims.map((d, k) => (k === 0 && d === -1 ? this.batch : d)));
  }
}
