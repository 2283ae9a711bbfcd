import { unbroadcast } from './broadcast.ts';
import { single, type VjpRule } from './rule.ts';

export const identity: VjpRule = (node, dOut) => [single(dOut), ...(node.input ?? []).slice(1).map(() => undefined)];

export const add: VjpRule = (node, dOut, needs, ctx) => {
  const g = single(dOut);
  const [a, b] = node.input ?? [];
  const y = node.output![0];
  return [needs[0] ? unbroadcast(ctx, g, y, a) : undefined, needs[1] ? unbroadcast(ctx, g, y, b) : undefined];
};

export const sub: VjpRule = (node, dOut, needs, ctx) => {
  const g = single(dOut);
  const [a, b] = node.input ?? [];
  const y = node.output![0];
  return [
    needs[0] ? unbroadcast(ctx, g, y, a) : undefined,
    needs[1] ? unbroadcast(ctx, ctx.b.op('Neg', [g]), y, b) : undefined,
  ];
};

export const mul: VjpRule = (node, dOut, needs, ctx) => {
  const g = single(dOut);
  const [a, b] = node.input ?? [];
  const y = node.output![0];
  return [
    needs[0] ? unbroadcast(ctx, ctx.b.op('Mul', [g, b]), y, a) : undefined,
    needs[1] ? unbroadcast(ctx, ctx.b.op('Mul', [g, a]), y, b) : undefined,
  ];
};

export const div: VjpRule = (node, dOut, needs, ctx) => {
  // y = a / b:  da = g / b,  db = -g a / b² = -(g / b) · y
  const g = single(dOut);
  const [a, b] = node.input ?? [];
  const y = node.output![0];
  const gOverB = ctx.b.op('Div', [g, b]);
  return [
    needs[0] ? unbroadcast(ctx, gOverB, y, a) : undefined,
    needs[1] ? unbroadcast(ctx, ctx.b.op('Neg', [ctx.b.op('Mul', [gOverB, y])]), y, b) : undefined,
  ];
};

export const neg: VjpRule = (_node, dOut, _needs, ctx) => [ctx.b.op('Neg', [single(dOut)])];
