// Every public API takes pixels in [0,1]; the model's own input normalization becomes the graph's first nodes so that
// epsilons and gradients are in pixel space and nothing outside the graph has to remember mean and std.
import type { Graph } from './graph.ts';
import { DType, type ValueInfoProto } from './proto.ts';

export const PIXELS = 'pixels';

export interface Normalization {
  mean: readonly number[];
  std: readonly number[];
}

/** Replace the model's input with `pixels` [N,C,H,W] in [0,1], followed by (pixels − mean) / std when given. */
export function prependNormalization(graph: Graph, inputName: string, norm: Normalization | undefined): void {
  const index = graph.inputs.findIndex((i) => i.name === inputName);
  if (index < 0) {
    throw new Error(`model has no input named '${inputName}' (its inputs: ${graph.inputs.map((i) => i.name).join(', ')})`);
  }
  const original = graph.inputs[index];
  graph.reserve(PIXELS);
  const elemType = original.type?.tensorType?.elemType ?? DType.FLOAT;
  const pixels: ValueInfoProto = { name: PIXELS, type: { tensorType: { elemType, shape: original.type?.tensorType?.shape } } };
  graph.inputs = graph.inputs.map((i, k) => (k === index ? pixels : i));
  const node = (opType: string, inputs: string[], output: string) =>
    ({ name: graph.fresh(`normalize/${opType}`), opType, input: inputs, output: [output] });
  if (!norm) {
    graph.nodes.unshift(node('Identity', [PIXELS], inputName));
    return;
  }
  const channels = norm.mean.length;
  if (norm.std.length !== channels) throw new Error('normalization mean and std must have the same length');
  if (norm.std.some((s) => !(s > 0))) throw new Error('normalization std must be positive');
  const mean = graph.addInitializer('normalize/mean', elemType, [1, channels, 1, 1], norm.mean);
  const std = graph.addInitializer('normalize/std', elemType, [1, channels, 1, 1], norm.std);
  const centred = graph.fresh('normalize/centred');
  graph.nodes.unshift(node('Sub', [PIXELS, mean], centred), node('Div', [centred, std], inputName));
}
