import { attrInt, attrInts } from '../../onnx/proto.ts';
import { describe, single, type VjpRule, type VjpContext } from './rule.ts';
import type { NodeProto } from '../../onnx/proto.ts';

/** The reduced axes: an attribute before opset 18 (13 for ReduceSum), the second input after; all axes if absent. */
function reducedAxes(node: NodeProto, ctx: VjpContext, rank: number): number[] {
  let axes = attrInts(node, 'axes');
  const input = node.input?.[1];
  if (!axes && input) {
    const values = ctx.constant(input);
    if (!values) throw new Error(`${describe(node)}: reduction axes must be a constant`);
    axes = Array.from(values);
  }
  if (!axes || axes.length === 0) {
    if (attrInt(node, 'noop_with_empty_axes', 0)) return [];
    return [...Array(rank).keys()];
  }
  return axes.map((a) => (a < 0 ? a + rank : a)).sort((a, b) => a - b);
}

/** Broadcast the output gradient back over the reduced axes (divided by their size for a mean). */
function spreadBack(mean: boolean): VjpRule {
  return (node, dOut, needs, ctx) => {
    const x = node.input![0];
    const xDims = ctx.dims(x);
    const axes = reducedAxes(node, ctx, xDims.length);
    const b = ctx.b;
    let g = single(dOut);
    if (axes.length > 0 && attrInt(node, 'keepdims', 1) === 0) g = b.op('Unsqueeze', [g, b.int64Const('axes', axes)]);
    let spread = b.op('Expand', [g, b.op('Shape', [x])]);
    if (mean) spread = b.op('Mul', [spread, b.scalar(1 / axes.reduce((p, a) => p * xDims[a], 1))]);
    return [spread, ...needs.slice(1).map(() => undefined)];
  };
}

export const reduceSum = spreadBack(false);
export const reduceMean = spreadBack(true);
