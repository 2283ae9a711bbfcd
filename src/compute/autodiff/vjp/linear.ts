import { attrFloat, attrInt } from '../../onnx/proto.ts';
import { unbroadcast } from './broadcast.ts';
import { describe, single, type VjpRule } from './rule.ts';

export const gemm: VjpRule = (node, dOut, needs, ctx) => {
  // y = α·A'·B' + β·C with A' = transA ? Aᵀ : A and B' likewise. Each input gradient is itself one Gemm.
  const [a, bIn, c] = node.input ?? [];
  const g = single(dOut);
  const alpha = attrFloat(node, 'alpha', 1);
  const beta = attrFloat(node, 'beta', 1);
  const transA = attrInt(node, 'transA', 0);
  const transB = attrInt(node, 'transB', 0);
  const b = ctx.b;
  const f = { float: alpha };
  const da = !needs[0] ? undefined
    : transA ? b.op('Gemm', [bIn, g], { alpha: f, transA: transB, transB: 1 }) // Aᵀ-grad = α·B'·gᵀ
      : b.op('Gemm', [g, bIn], { alpha: f, transB: transB ? 0 : 1 }); // α·g·B'ᵀ
  const db = !needs[1] ? undefined
    : transB ? b.op('Gemm', [g, a], { alpha: f, transA: 1, transB: transA }) // α·gᵀ·A'
      : b.op('Gemm', [a, g], { alpha: f, transA: transA ? 0 : 1 }); // α·A'ᵀ·g
  let dc: string | undefined;
  if (needs[2] && c) {
    const scaled = beta === 1 ? g : b.op('Mul', [g, b.scalar(beta)]);
    dc = unbroadcast(ctx, scaled, node.output![0], c);
  }
  return [da, db, dc];
};

export const matMul: VjpRule = (node, dOut, needs, ctx) => {
  // Batched matmul over the last two axes; leading axes broadcast, so gradients are summed back to each shape.
  const [a, bIn] = node.input ?? [];
  const y = node.output![0];
  const g = single(dOut);
  const ra = ctx.dims(a).length;
  const rb = ctx.dims(bIn).length;
  if (ra < 2 || rb < 2) throw new Error(`${describe(node)}: MatMul with a 1-D operand is not supported`);
  const b = ctx.b;
  const swapLast = (rank: number) => [...Array(rank - 2).keys(), rank - 1, rank - 2];
  const da = needs[0] ? unbroadcastMatmul(ctx, b.op('MatMul', [g, b.op('Transpose', [bIn], { perm: swapLast(rb) })]), y, a) : undefined;
  const db = needs[1] ? unbroadcastMatmul(ctx, b.op('MatMul', [b.op('Transpose', [a], { perm: swapLast(ra) }), g]), y, bIn) : undefined;
  return [da, db];
};

function unbroadcastMatmul(ctx: Parameters<VjpRule>[3], grad: string, y: string, input: string): string {
  // Only the leading (batch) axes can broadcast; the last two already have the input's sizes.
  const yDims = ctx.dims(y);
  const inDims = ctx.dims(input);
  if (yDims.length === inDims.length && yDims.slice(0, -2).every((d, k) => d === inDims[k])) return grad;
  return unbroadcast(ctx, grad, y, input);
}
