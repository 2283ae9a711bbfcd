// The contract every vector–Jacobian rule fulfils: given the gradients flowing into a node's outputs, emit ONNX nodes
// computing the gradients of its inputs. Rules only see static sizes through `dims` (read at batch PROBE_BATCH),
// so anything batch-dependent is taken from the runtime tensor (Shape/Reshape) instead of baked in.
import type { GraphBuilder } from '../../onnx/builder.ts';
import type { Graph } from '../../onnx/graph.ts';
import type { NodeProto } from '../../onnx/proto.ts';

export interface VjpContext {
  b: GraphBuilder;
  graph: Graph;
  /** Static dims of a tensor (batch dimension at the probe's batch size). */
  dims(tensor: string): number[];
  /** Values of a constant tensor (initializer or Constant node), else undefined. */
  constant(tensor: string): ArrayLike<number> | undefined;
  /** Whether a mask may be a HardSigmoid step (BackpropOptions.stepMasks). */
  stepMasks: boolean;
}

/**
 * dOut[k]: gradient flowing into output k (undefined: nothing downstream depends on it).
 * needs[i]: whether input i needs a gradient. Returns one gradient name per input (undefined where not needed).
 */
export type VjpRule = (node: NodeProto, dOut: (string | undefined)[], needs: boolean[], ctx: VjpContext) => (string | undefined)[];

export function describe(node: NodeProto): string {
  return `${node.opType} node '${node.name || node.output?.[0]}'`;
}

/** The one output gradient of a single-output op (rules are only called when some output has one). */
export function single(dOut: (string | undefined)[]): string {
  const g = dOut[0];
  if (!g) throw new Error('internal: VJP called without an output gradient');
  return g;
}
