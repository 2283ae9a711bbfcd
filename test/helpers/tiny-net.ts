// Small ONNX networks built in the tests, so every op's gradient can be checked against finite differences on a
// graph whose behaviour we control (seeded weights, well-conditioned sizes). Other test files build their toy models
// here too, so the exports below are shared API: extend, don't rename.
import { GraphBuilder } from '../../src/compute/onnx/builder.ts';
import { Graph } from '../../src/compute/onnx/graph.ts';
import { DType } from '../../src/compute/onnx/proto.ts';

/** mulberry32: a tiny seeded PRNG for test weights and inputs (the product's RNG lives in src/compute/random.ts). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface TinyNet {
  graph: Graph;
  b: GraphBuilder;
  /** the model's float element type (FLOAT or DOUBLE) */
  elemType: number;
  /** seeded uniform weights in [-scale, scale] as an initializer */
  weight(name: string, dims: number[], scale?: number): string;
  /** fixed values (in the model's float type) as an initializer */
  constant(name: string, dims: number[], values: readonly number[]): string;
  /** extra graph outputs, declared after the main one (which stays the first output, i.e. the logits) */
  outputs: string[];
}

/** An empty model with input `x` [N, ...dims] of the given float type; `build` adds nodes and returns the output. */
export function tinyModel(elemType: number, dims: number[], build: (net: TinyNet, x: string) => string, seed = 1, opset = 13): Uint8Array {
  const graph = new Graph({
    irVersion: 8,
    opsetImport: [{ domain: '', version: opset }],
    graph: {
      name: 'tiny',
      node: [],
      initializer: [],
      input: [{ name: 'x', type: { tensorType: { elemType, shape: { dim: [{ dimParam: 'N' }, ...dims.map((d) => ({ dimValue: d }))] } } } }],
      output: [],
    },
  });
  const b = new GraphBuilder(graph, elemType);
  const rand = seeded(seed);
  const count = (wdims: number[]) => wdims.reduce((p, d) => p * d, 1);
  const net: TinyNet = {
    graph,
    b,
    elemType,
    weight: (name, wdims, scale = 1) => graph.addInitializer(name, elemType, wdims, Array.from({ length: count(wdims) }, () => (2 * rand() - 1) * scale)),
    constant: (name, cdims, values) => {
      if (values.length !== count(cdims)) throw new Error(`constant '${name}': ${values.length} values for dims [${cdims}]`);
      return graph.addInitializer(name, elemType, cdims, values);
    },
    outputs: [],
  };
  const out = build(net, 'x');
  graph.addOutput(out);
  for (const o of net.outputs) graph.addOutput(o);
  return graph.encode();
}

export const FLOAT = DType.FLOAT;
export const DOUBLE = DType.DOUBLE;

/** Append a named node (so objectives can target it as a layer) and return its output. */
export function named(net: TinyNet, name: string, opType: string, inputs: string[], attrs: Parameters<GraphBuilder['op']>[2] = {}): string {
  const out = net.b.op(opType, inputs, attrs);
  const node = net.graph.nodes[net.graph.nodes.length - 1];
  node.name = name;
  return out;
}

/**
 * Flatten then a dense layer (`head`, Gemm transB=1 as torchvision exports it) to `classes` logits: mixes every
 * element, so every component of the input gradient matters.
 */
export function head(net: TinyNet, x: string, features: number, classes = 5): string {
  const flat = net.b.op('Flatten', [x], { axis: 1 });
  return named(net, 'head', 'Gemm', [flat, net.weight('head.weight', [classes, features], 1 / Math.sqrt(features)), net.weight('head.bias', [classes], 0.1)], { transB: 1 });
}
