// Activation patching as graph surgery: one tensor of the model is replaced, channel by channel, by a tensor fed at
// run time, and every node that read the original reads the patched one instead. With the mask and the injected
// tensor as inputs, one session answers every patching question about the layer (which channels, which source image)
// without recompiling; with an all-zero mask it is the model itself, and it also returns the layer's own activation
// so capture and patching come from the same session and the same kernels.
//
//     patched = Where(Cast<bool>(mask), injected, original)      mask [N,C,1,1] (or [N,C]), injected [N,C,H,W]
//
// Where rather than original + mask·(injected − original): a selected channel then carries the injected values bit
// for bit, so patching the whole layer with another image's activations gives that image's downstream result up to
// the downstream kernels alone, not up to a rounding of the blend.
import { GraphBuilder } from './builder.ts';
import type { Graph } from './graph.ts';
import { DType, type ValueInfoProto } from './proto.ts';

export const PATCH_MASK = 'patch_mask';
export const PATCH_INJECTED = 'patch_injected';
export const PATCH_LOGITS = 'patch_logits';

export interface PatchGraphSpec {
  /** the tensor to patch */
  tensor: string;
  /** the logits tensor, the program's output */
  logits: string;
  /** the tensor's dims, batch first ([N,C,H,W] or [N,C]) */
  dims: readonly number[];
  floatType: number;
}

/**
 * Rewrite `graph` (whose input is the model's pixels) so that `tensor` is patched per channel. Inputs added:
 * PATCH_MASK [N,C,1,1] (1 = take the injected channel) and PATCH_INJECTED [N,C,H,W]; outputs: PATCH_LOGITS [N,K]
 * computed from the patched tensor, and `tensor` itself, unpatched (so a capture run needs no other session). Nodes
 * the outputs do not need are pruned.
 */
export function patchGraph(graph: Graph, spec: PatchGraphSpec): void {
  const { tensor, logits, dims, floatType } = spec;
  if (dims.length !== 4 && dims.length !== 2) throw new Error(`cannot patch tensor '${tensor}' of shape [${dims.join(',')}]: patching needs channels, [N,C,H,W] or [N,C]`);
  const producers = graph.producers();
  if (!producers.has(tensor)) throw new Error(`cannot patch tensor '${tensor}': no node of the graph computes it`);
  for (const name of [PATCH_MASK, PATCH_INJECTED, PATCH_LOGITS]) graph.reserve(name);
  const batch = { dimParam: 'N' };
  const channels = dims[1];
  const maskDims = dims.length === 4 ? [channels, 1, 1] : [channels];
  const input = (name: string, after: readonly number[]) =>
    graph.inputs.push({ name, type: { tensorType: { elemType: floatType, shape: { dim: [batch, ...after.map((d) => ({ dimValue: d }))] } } } });
  input(PATCH_MASK, maskDims);
  input(PATCH_INJECTED, dims.slice(1));

  // Consumers are collected before the Where is added, so the Where itself keeps reading the original.
  const consumers = graph.consumers().get(tensor) ?? [];
  const b = new GraphBuilder(graph, floatType, 'patch');
  const patched = b.op('Where', [b.op('Cast', [PATCH_MASK], { to: DType.BOOL }), PATCH_INJECTED, tensor]);
  // Kept in topological order (ONNX requires it of a valid model): the two new nodes go right after the producer.
  graph.nodes = graph.nodes.filter((n) => !b.emitted.includes(n));
  graph.nodes.splice(graph.nodes.indexOf(producers.get(tensor)!) + 1, 0, ...b.emitted);
  for (const node of consumers) node.input = (node.input ?? []).map((i) => (i === tensor ? patched : i));

  // Patching the logits themselves is legal (a trivial check of the machinery): their reader is then the output.
  const source = logits === tensor ? patched : logits;
  graph.nodes.push({ name: graph.fresh('patch/logits'), opType: 'Identity', input: [source], output: [PATCH_LOGITS] });
  graph.outputs = [];
  graph.addOutput(PATCH_LOGITS);
  graph.addOutput(tensor);
  graph.prune();
}

/**
 * Every tensor computed from `sources`, not through `blocked` (its value does not pass on). Nodes are in topological
 * order, so one forward sweep finds them all.
 */
function downstream(graph: Graph, sources: Iterable<string>, blocked?: string): Set<string> {
  const reached = new Set<string>(sources);
  for (const node of graph.nodes) {
    if (!(node.input ?? []).some((i) => i && reached.has(i))) continue;
    for (const o of node.output ?? []) if (o && o !== blocked) reached.add(o);
  }
  return reached;
}

/**
 * Whether every path from `input` to `output` passes through `tensor`. Only then does patching the whole layer hand
 * the rest of the network exactly the injected activations; a skip connection around the layer (a residual block's
 * sum) carries the unpatched image past it, and restoring every channel no longer gives the clean run.
 */
export function isCut(graph: Graph, input: string, tensor: string, output: string): boolean {
  if (output === tensor) return true;
  return !downstream(graph, [input], tensor).has(output);
}

/** A frontier tensor (one the tail graph reads from before the patched layer): its element type, and its dims when it has a batch. */
export type FrontierType = (tensor: string) => { elemType: number; dims?: readonly (number | 'N')[] };

/**
 * Cut a patchGraph-ed graph down to the network after the patch: PATCH_LOGITS from the patched tensor, every tensor
 * it reads from before the patch — the layer itself, a skip connection's input, anything else computed from
 * `pixels` — fed as an input instead of recomputed. Patching a late layer then runs the last blocks, not the model.
 * Nodes that depend on no input (constants) stay. Returns the frontier, the fed tensors, in graph order: a run of the
 * whole patched graph that outputs them (with an all-zero mask) hands this graph exactly what the layer's consumers
 * read there.
 */
export function tailGraph(graph: Graph, input: string, typeOf: FrontierType): string[] {
  const where = graph.nodes.find((n) => n.opType === 'Where' && n.input?.[1] === PATCH_INJECTED);
  if (!where) throw new Error('internal: tailGraph needs a graph that patchGraph has patched');
  const fromInput = downstream(graph, [input]);
  const afterPatch = downstream(graph, (where.output ?? []).filter(Boolean));
  const kept = graph.nodes.filter((n) => (n.output ?? []).some((o) => afterPatch.has(o)) || !(n.input ?? []).some((i) => i && fromInput.has(i)));
  const produced = new Set(kept.flatMap((n) => n.output ?? []));
  const frontier: string[] = [];
  for (const n of kept) for (const i of n.input ?? []) if (i && fromInput.has(i) && !produced.has(i) && !frontier.includes(i)) frontier.push(i);
  graph.nodes = kept;
  graph.outputs = graph.outputs.filter((o) => o.name === PATCH_LOGITS);
  const patchInputs = graph.inputs.filter((i) => i.name === PATCH_MASK || i.name === PATCH_INJECTED);
  graph.inputs = [
    ...frontier.map((name): ValueInfoProto => {
      const { elemType, dims } = typeOf(name);
      return { name, type: { tensorType: { elemType, ...(dims ? { shape: { dim: dims.map((d) => (d === 'N' ? { dimParam: 'N' } : { dimValue: d })) } } : {}) } } };
    }),
    ...patchInputs,
  ];
  graph.prune();
  return frontier;
}
