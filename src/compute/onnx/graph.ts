// A mutable view of an ONNX model for graph surgery: nodes in topological order, initializers by name, and the
// producer of every tensor. Everything that rewrites a model (normalization, opset upgrade, backward nodes,
// objectives, extra outputs) goes through this one type so names stay unique and the model stays valid.
import {
  DType, decodeModel, encodeModel, makeTensor, num, tensorNumbers, tensorValues,
  type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto, type TypedArray,
} from './proto.ts';

export class Graph {
  readonly model: ModelProto;
  nodes: NodeProto[];
  readonly initializers: Map<string, TensorProto>;
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  private taken: Set<string>;

  constructor(model: ModelProto) {
    this.model = model;
    const g = model.graph;
    if (!g) throw new Error('ONNX model has no graph');
    this.nodes = [...(g.node ?? [])];
    this.initializers = new Map((g.initializer ?? []).map((t) => [t.name ?? '', t]));
    const inits = this.initializers;
    // Old exporters list initializers as graph inputs too; only the true inputs are fed at run time.
    this.inputs = (g.input ?? []).filter((i) => !inits.has(i.name ?? ''));
    this.outputs = [...(g.output ?? [])];
    this.taken = new Set<string>();
    for (const n of this.nodes) {
      if (n.name) this.taken.add(n.name);
      for (const o of n.output ?? []) this.taken.add(o);
    }
    for (const k of this.initializers.keys()) this.taken.add(k);
    for (const i of this.inputs) this.taken.add(i.name ?? '');
  }

  static decode(bytes: Uint8Array): Graph {
    return new Graph(decodeModel(bytes));
  }

  /** The default-domain opset the model imports. */
  get opset(): number {
    const o = (this.model.opsetImport ?? []).find((x) => !x.domain || x.domain === 'ai.onnx');
    return o ? num(o.version) : 1;
  }

  set opset(v: number) {
    const imports = (this.model.opsetImport ?? []).filter((x) => x.domain && x.domain !== 'ai.onnx');
    this.model.opsetImport = [{ domain: '', version: v }, ...imports];
  }

  /** A name not used by any tensor or node yet (and reserve it). */
  fresh(base: string): string {
    let name = base;
    for (let k = 1; this.taken.has(name); k++) name = `${base}_${k}`;
    this.taken.add(name);
    return name;
  }

  reserve(name: string): void {
    if (this.taken.has(name)) throw new Error(`name '${name}' is already used in the graph`);
    this.taken.add(name);
  }

  addInitializer(base: string, dataType: number, dims: readonly number[], values: ArrayLike<number> | BigInt64Array): string {
    const name = this.fresh(base);
    this.initializers.set(name, makeTensor(name, dataType, dims, values));
    return name;
  }

  /** The node producing each tensor (graph inputs and initializers have none). */
  producers(): Map<string, NodeProto> {
    const m = new Map<string, NodeProto>();
    for (const n of this.nodes) for (const o of n.output ?? []) if (o) m.set(o, n);
    return m;
  }

  /** The nodes reading each tensor. */
  consumers(): Map<string, NodeProto[]> {
    const m = new Map<string, NodeProto[]>();
    for (const n of this.nodes) {
      for (const i of n.input ?? []) {
        if (!i) continue;
        const list = m.get(i);
        if (list) list.push(n); else m.set(i, [n]);
      }
    }
    return m;
  }

  /** A constant's values, from an initializer or a Constant node; undefined for computed tensors. */
  constant(name: string): { values: TypedArray; dims: number[]; dataType: number } | undefined {
    let t: TensorProto | undefined = this.initializers.get(name);
    if (!t) {
      const node = this.nodes.find((n) => n.opType === 'Constant' && n.output?.[0] === name);
      t = node?.attribute?.find((a) => a.name === 'value')?.t ?? undefined;
      if (!t) {
        const scalar = node?.attribute?.find((a) => a.name === 'value_float' || a.name === 'value_int');
        if (!scalar) return undefined;
        return scalar.name === 'value_float'
          ? { values: Float32Array.of(scalar.f ?? 0), dims: [], dataType: DType.FLOAT }
          : { values: BigInt64Array.of(BigInt(num(scalar.i))), dims: [], dataType: DType.INT64 };
      }
    }
    return { values: tensorValues(t), dims: (t.dims ?? []).map(num), dataType: t.dataType ?? 0 };
  }

  constantNumbers(name: string): number[] | undefined {
    const c = this.constant(name);
    if (!c) return undefined;
    return Array.from(c.values as ArrayLike<number | bigint>, (v) => Number(v));
  }

  /** Keep only the nodes that the graph outputs depend on (everything after the objective's layer goes). */
  prune(): void {
    const needed = new Set<string>(this.outputs.map((o) => o.name ?? ''));
    const keep = new Set<NodeProto>();
    for (let k = this.nodes.length - 1; k >= 0; k--) {
      const n = this.nodes[k];
      if (!(n.output ?? []).some((o) => needed.has(o))) continue;
      keep.add(n);
      for (const i of n.input ?? []) if (i) needed.add(i);
    }
    this.nodes = this.nodes.filter((n) => keep.has(n));
    for (const name of [...this.initializers.keys()]) if (!needed.has(name)) this.initializers.delete(name);
  }

  /** Declare a tensor as a graph output (type left for onnxruntime to infer). */
  addOutput(name: string, elemType?: number): void {
    if (this.outputs.some((o) => o.name === name)) return;
    this.outputs.push(elemType ? { name, type: { tensorType: { elemType } } } : { name });
  }

  encode(): Uint8Array {
    const g = this.model.graph!;
    g.node = this.nodes;
    g.initializer = [...this.initializers.values()];
    g.input = this.inputs;
    g.output = this.outputs;
    // Declared intermediate shapes may be stale after surgery; onnxruntime re-infers them.
    g.valueInfo = [];
    return encodeModel(this.model);
  }
}

export { tensorNumbers };
