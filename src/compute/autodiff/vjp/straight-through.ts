// Round's derivative is 0 almost everywhere (and undefined at the steps), so its exact VJP would zero every gradient
// that passes through a rounding — through every fake-quantized activation of a dequantized int8 model
// (onnx/dequantize.ts), leaving gradient attacks nothing to follow. The straight-through estimator passes the
// gradient unchanged, i.e. differentiates x ↦ x in place of x ↦ round(x): BPDA (Athalye, Carlini & Wagner, 2018),
// the standard way to attack quantized networks, and the estimator quantization-aware training uses (Bengio et al.
// 2013). A fake-quantizer is Clip → Div → Round → Mul, so its gradient is the Clip's mask: 1 inside the int8 range,
// 0 where the value saturates. Written as its own rule (not `identity` in the registry) so the choice is visible.
import { single, type VjpRule } from './rule.ts';

export const roundStraightThrough: VjpRule = (_node, dOut) => [single(dOut)];
