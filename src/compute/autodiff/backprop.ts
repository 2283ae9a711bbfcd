// Reverse-mode differentiation as graph rewriting: walk the forward nodes backwards from the objective's seed
// gradients, let each op's VJP rule emit the ONNX nodes of its backward pass, and sum gradients where a tensor feeds
// several nodes (residual connections). The result is one graph computing forward and input gradient together.
import { GraphBuilder } from '../onnx/builder.ts';
import type { Graph } from '../onnx/graph.ts';
import type { NodeProto } from '../onnx/proto.ts';
import { NON_DIFFERENTIABLE, VJP_RULES, type VjpContext, type VjpRule } from './vjp/index.ts';

export interface BackpropOptions {
  /** Tensor to differentiate with respect to (the pixels). */
  wrt: string;
  /** Gradient of the scalar objective with respect to some forward tensors (summed when several). */
  seeds: ReadonlyMap<string, string[]>;
  /** Static dims of every forward tensor (see runtime/probe.ts). */
  dims: (tensor: string) => number[];
  floatType: number;
  /**
   * Adjoints supplied by whoever emitted a node, by node name, for nodes the rule table cannot differentiate in
   * general (feature visualization's transform gathers, whose transpose only the host knows).
   */
  adjoints?: ReadonlyMap<string, VjpRule>;
  /**
   * Whether masks may be HardSigmoid steps (vjp/activation.ts), whose exactness rests on IEEE overflow to ±∞: true for
   * onnxruntime's CPU kernels, where they were measured faster; WGSL leaves overflow undefined. Default false.
   */
  stepMasks?: boolean;
}

/** Appends backward nodes to `graph`; returns the name of d(objective)/d(wrt). */
export function backprop(graph: Graph, opts: BackpropOptions): string {
  const forward = [...graph.nodes];
  const active = activeTensors(forward, opts.wrt);
  const needed = tensorsReachingSeeds(forward, opts.seeds);

  const b = new GraphBuilder(graph, opts.floatType);
  const ctx: VjpContext = {
    b,
    graph,
    dims: opts.dims,
    constant: (t) => {
      const c = graph.constant(t);
      return c && (c.values instanceof BigInt64Array ? Array.from(c.values, Number) : (c.values as ArrayLike<number>));
    },
    stepMasks: opts.stepMasks ?? false,
  };

  const contributions = new Map<string, string[]>();
  for (const [tensor, grads] of opts.seeds) contributions.set(tensor, [...grads]);
  const sum = (tensor: string): string | undefined => {
    const parts = contributions.get(tensor);
    if (!parts || parts.length === 0) return undefined;
    let total = parts[0];
    for (const p of parts.slice(1)) total = b.op('Add', [total, p]);
    contributions.set(tensor, [total]);
    return total;
  };

  for (let k = forward.length - 1; k >= 0; k--) {
    const node = forward[k];
    const outputs = node.output ?? [];
    if (!outputs.some((o) => active.has(o) && needed.has(o))) continue;
    const dOut = outputs.map((o) => (active.has(o) ? sum(o) : undefined));
    if (dOut.every((g) => g === undefined)) continue;
    const rule = opts.adjoints?.get(node.name ?? '') ?? VJP_RULES[node.opType ?? ''];
    if (!rule) throw unsupported(node);
    const inputs = node.input ?? [];
    const needs = inputs.map((i) => !!i && active.has(i) && needed.has(i));
    b.scope = `grad/${node.name || outputs[0]}`;
    const dIn = rule(node, dOut, needs, ctx);
    inputs.forEach((input, i) => {
      const g = dIn[i];
      if (!needs[i] || !g) return;
      const list = contributions.get(input);
      if (list) list.push(g); else contributions.set(input, [g]);
    });
  }
  b.scope = 'grad';
  return sum(opts.wrt) ?? b.zerosLike(opts.wrt);
}

/** Tensors that depend on `wrt` through differentiable edges. */
function activeTensors(nodes: readonly NodeProto[], wrt: string): Set<string> {
  const active = new Set([wrt]);
  for (const node of nodes) {
    if (NON_DIFFERENTIABLE.has(node.opType ?? '')) continue;
    if ((node.input ?? []).some((i) => active.has(i))) for (const o of node.output ?? []) if (o) active.add(o);
  }
  return active;
}

/** Tensors from which some seed can be reached. */
function tensorsReachingSeeds(nodes: readonly NodeProto[], seeds: ReadonlyMap<string, unknown>): Set<string> {
  const needed = new Set(seeds.keys());
  for (let k = nodes.length - 1; k >= 0; k--) {
    const node = nodes[k];
    if ((node.output ?? []).some((o) => needed.has(o))) for (const i of node.input ?? []) if (i) needed.add(i);
  }
  return needed;
}

function unsupported(node: NodeProto): Error {
  return new Error(
    `cannot differentiate ${node.opType} node '${node.name || node.output?.[0]}': no gradient rule for op '${node.opType}'. ` +
    `Supported ops: ${Object.keys(VJP_RULES).join(', ')}`,
  );
}
