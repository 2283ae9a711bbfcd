// Gradients of broadcasting ops must be summed back over the axes the input was broadcast along (NumPy rules).
import type { VjpContext } from './rule.ts';

/** Sum `grad` (shaped like `out`) down to the shape of `input`. */
export function unbroadcast(ctx: VjpContext, grad: string, out: string, input: string): string {
  const outDims = ctx.dims(out);
  const inDims = ctx.dims(input);
  const lead = outDims.length - inDims.length;
  const axes: number[] = [];
  for (let a = 0; a < outDims.length; a++) {
    if (a < lead) axes.push(a);
    else if (inDims[a - lead] === 1 && outDims[a] !== 1) axes.push(a);
  }
  if (axes.length === 0) return grad;
  const summed = ctx.b.reduceSum(grad, axes, 1);
  return ctx.b.reshapeLike(summed, input);
}
