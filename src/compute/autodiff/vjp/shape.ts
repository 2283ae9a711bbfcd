import { attrInt, attrInts } from '../../onnx/proto.ts';
import { describe, single, type VjpRule } from './rule.ts';

/** Flatten, Reshape, Squeeze, Unsqueeze only relabel elements: reshape the gradient back. */
export const reshapeBack: VjpRule = (node, dOut, _needs, ctx) => {
  const x = node.input![0];
  return [ctx.b.reshapeLike(single(dOut), x), ...(node.input ?? []).slice(1).map(() => undefined)];
};

export const transpose: VjpRule = (node, dOut, _needs, ctx) => {
  const rank = ctx.dims(node.input![0]).length;
  const perm = attrInts(node, 'perm') ?? [...Array(rank).keys()].reverse();
  const inverse = new Array<number>(rank);
  perm.forEach((p, k) => { inverse[p] = k; });
  return [ctx.b.op('Transpose', [single(dOut)], { perm: inverse })];
};

export const concat: VjpRule = (node, dOut, needs, ctx) => {
  const g = single(dOut);
  const inputs = node.input ?? [];
  const rank = ctx.dims(inputs[0]).length;
  let axis = attrInt(node, 'axis', 0);
  if (axis < 0) axis += rank;
  if (axis === 0) throw new Error(`${describe(node)}: Concat along the batch axis is not supported`);
  const b = ctx.b;
  const axes = b.int64Const('axes', [axis]);
  let offset = 0;
  return inputs.map((input, k) => {
    const size = ctx.dims(input)[axis];
    const start = offset;
    offset += size;
    if (!needs[k]) return undefined;
    return b.op('Slice', [g, b.int64Const('starts', [start]), b.int64Const('ends', [start + size]), axes]);
  });
};
