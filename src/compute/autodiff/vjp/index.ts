// The registry of differentiable ops. An op missing here that lies between the input and the objective is reported
// by name, with the list of what is supported, instead of silently yielding a wrong gradient.
import { clip, logSoftmax, relu, sigmoid, softmax, tanh } from './activation.ts';
import { batchNormalization } from './batchnorm.ts';
import { conv } from './conv.ts';
import { add, div, identity, mul, neg, sub } from './elementwise.ts';
import { gemm, matMul } from './linear.ts';
import { averagePool, globalAveragePool, maxPool } from './pool.ts';
import { reduceMean, reduceSum } from './reduce.ts';
import type { VjpRule } from './rule.ts';
import { concat, reshapeBack, transpose } from './shape.ts';
import { roundStraightThrough } from './straight-through.ts';

export const VJP_RULES: Readonly<Record<string, VjpRule>> = {
  Add: add,
  AveragePool: averagePool,
  BatchNormalization: batchNormalization,
  Clip: clip,
  Concat: concat,
  Conv: conv,
  Div: div,
  Dropout: identity, // inference graphs only: Dropout is the identity
  Flatten: reshapeBack,
  Gemm: gemm,
  GlobalAveragePool: globalAveragePool,
  Identity: identity,
  LogSoftmax: logSoftmax,
  MatMul: matMul,
  MaxPool: maxPool,
  Mul: mul,
  Neg: neg,
  ReduceMean: reduceMean,
  ReduceSum: reduceSum,
  Relu: relu,
  Reshape: reshapeBack,
  Round: roundStraightThrough, // straight-through estimator (BPDA): see straight-through.ts
  Sigmoid: sigmoid,
  Softmax: softmax,
  Squeeze: reshapeBack,
  Sub: sub,
  Tanh: tanh,
  Transpose: transpose,
  Unsqueeze: reshapeBack,
};

/** Ops whose outputs carry no gradient: integer shape arithmetic, comparisons, constants. */
export const NON_DIFFERENTIABLE = new Set([
  'ArgMax', 'ArgMin', 'Constant', 'ConstantOfShape', 'Equal', 'Greater', 'GreaterOrEqual', 'Less', 'LessOrEqual',
  'NonZero', 'Not', 'And', 'Or', 'Shape', 'Size', 'Range', 'EyeLike',
]);

export type { VjpContext, VjpRule } from './rule.ts';
