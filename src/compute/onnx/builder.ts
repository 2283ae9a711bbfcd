// Emits new nodes into a Graph with unique, readable names (`<scope>/<Op>`), so a backward node can be traced to the
// forward node it differentiates when reading the augmented model in Netron.
import type { Graph } from './graph.ts';
import { DType, makeAttribute, makeTensor, type AttrInput, type NodeProto } from './proto.ts';

export class GraphBuilder {
  readonly graph: Graph;
  /** Element type of the float constants this builder creates (the model's float type). */
  readonly floatType: number;
  scope: string;
  readonly emitted: NodeProto[] = [];

  constructor(graph: Graph, floatType: number, scope = '') {
    this.graph = graph;
    this.floatType = floatType;
    this.scope = scope;
  }

  /** Append a node; returns its output names. */
  opN(opType: string, inputs: readonly string[], attrs: Record<string, AttrInput | undefined> = {}, nOutputs = 1): string[] {
    const base = this.scope ? `${this.scope}/${opType}` : opType;
    const name = this.graph.fresh(base);
    const outputs = Array.from({ length: nOutputs }, (_, k) => this.graph.fresh(nOutputs === 1 ? name : `${name}:${k}`));
    const node: NodeProto = {
      name,
      opType,
      input: [...inputs],
      output: outputs,
      attribute: Object.entries(attrs).filter(([, v]) => v !== undefined).map(([k, v]) => makeAttribute(k, v as AttrInput)),
    };
    this.graph.nodes.push(node);
    this.emitted.push(node);
    return outputs;
  }

  op(opType: string, inputs: readonly string[], attrs: Record<string, AttrInput | undefined> = {}): string {
    return this.opN(opType, inputs, attrs, 1)[0];
  }

  /** A float constant of the builder's float type. */
  floatConst(base: string, dims: readonly number[], values: ArrayLike<number>): string {
    return this.graph.addInitializer(this.scoped(base), this.floatType, dims, values);
  }

  scalar(v: number): string {
    return this.floatConst('scalar', [], [v]);
  }

  int64Const(base: string, values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.graph.addInitializer(this.scoped(base), DType.INT64, dims, values);
  }

  private scoped(base: string): string {
    return this.scope ? `${this.scope}/${base}` : base;
  }

  // ---- small idioms used by many rules ----

  /** Reshape `x` to the runtime shape of `like` (batch size stays dynamic). */
  reshapeLike(x: string, like: string): string {
    return this.op('Reshape', [x, this.op('Shape', [like])]);
  }

  /** Sum over `axes` keeping dims (opset >= 13: axes is an input). */
  reduceSum(x: string, axes: readonly number[], keepdims = 1): string {
    return this.op('ReduceSum', [x, this.int64Const('axes', axes)], { keepdims });
  }

  zerosLike(x: string): string {
    return this.op('ConstantOfShape', [this.op('Shape', [x])], { value: makeTensor('zero', this.floatType, [1], [0]) });
  }
}
