import { attrFloat, attrInt } from '../../onnx/proto.ts';
import { describe, single, type VjpRule } from './rule.ts';

export const batchNormalization: VjpRule = (node, dOut, needs, ctx) => {
  // Inference-mode BatchNorm is a per-channel affine map: dx = g · γ / sqrt(var + ε).
  if (attrInt(node, 'training_mode', 0) !== 0) throw new Error(`${describe(node)}: training-mode BatchNormalization cannot be differentiated; export the model in eval mode`);
  if (needs.slice(1).some(Boolean)) throw new Error(`${describe(node)}: gradients with respect to BatchNorm parameters are not supported`);
  const [x, scaleName, , , varName] = node.input ?? [];
  const gamma = ctx.constant(scaleName);
  const variance = ctx.constant(varName);
  if (!gamma || !variance) throw new Error(`${describe(node)}: scale and variance must be constants (initializers)`);
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const rank = ctx.dims(x).length;
  const factor = Array.from(gamma, (s, c) => s / Math.sqrt(variance[c] + eps));
  const dims = [1, factor.length, ...Array(Math.max(0, rank - 2)).fill(1)];
  const k = ctx.b.floatConst(`${node.name || 'bn'}/grad_scale`, dims, factor);
  return [ctx.b.op('Mul', [single(dOut), k]), undefined, undefined, undefined, undefined];
};
