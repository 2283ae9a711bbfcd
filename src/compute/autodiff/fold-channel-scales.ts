// The backward pass of Conv→BatchNorm is "scale each channel, then convolve". Folding the per-channel scale into the
// backward convolution's weights removes one full pass over every activation-sized gradient — the same fusion
// onnxruntime applies to the forward Conv+BatchNorm, which it cannot see here because the scale comes first.
import type { Graph } from '../onnx/graph.ts';
import { attrInt, type NodeProto } from '../onnx/proto.ts';

/**
 * Fold `Mul(g, k[1,C,1..])` into the Conv/ConvTranspose that is its only consumer. Only the backward pass's Muls
 * (`forward` lists the nodes to leave alone) are safe to fold: there `g` is a gradient with exactly C channels, while
 * a forward Mul may broadcast a 1-channel `g` up to C, which the folded convolution could no longer read.
 */
export function foldChannelScales(graph: Graph, floatType: number, forward: ReadonlySet<NodeProto>): void {
  const consumers = graph.consumers();
  const removed = new Set<NodeProto>();
  for (const mul of graph.nodes) {
    if (mul.opType !== 'Mul' || forward.has(mul)) continue;
    const [g, k] = mul.input ?? [];
    const out = mul.output?.[0] ?? '';
    const users = consumers.get(out) ?? [];
    if (users.length !== 1 || graph.outputs.some((o) => o.name === out)) continue;
    const conv = users[0];
    if ((conv.opType !== 'Conv' && conv.opType !== 'ConvTranspose') || conv.input?.[0] !== out) continue;
    const scale = graph.constant(k);
    const weight = graph.constant(conv.input[1]);
    if (!scale || !weight || scale.dims.length !== weight.dims.length || scale.dims[0] !== 1) continue;
    const channels = scale.dims[1];
    if (scale.dims.slice(2).some((d) => d !== 1)) continue;
    const folded = scaleInputChannels(weight.values as ArrayLike<number>, weight.dims, scale.values as ArrayLike<number>, channels, conv);
    if (!folded) continue;
    conv.input = [g, graph.addInitializer(`${conv.input[1]}/folded`, floatType, weight.dims, folded), ...conv.input.slice(2)];
    removed.add(mul);
  }
  graph.nodes = graph.nodes.filter((n) => !removed.has(n));
}

function scaleInputChannels(w: ArrayLike<number>, dims: number[], s: ArrayLike<number>, channels: number, conv: NodeProto): Float64Array | undefined {
  const group = attrInt(conv, 'group', 1);
  const [d0, d1, ...k] = dims;
  const area = k.reduce((a, b) => a * b, 1);
  const out = new Float64Array(w.length);
  for (let a = 0; a < d0; a++) {
    for (let b = 0; b < d1; b++) {
      // Conv weights are [out, in/g, k...]; ConvTranspose weights are [in, out/g, k...].
      const c = conv.opType === 'Conv' ? Math.floor(a / (d0 / group)) * d1 + b : a;
      if (c >= channels) return undefined;
      const base = (a * d1 + b) * area;
      for (let j = 0; j < area; j++) out[base + j] = w[base + j] * s[c];
    }
  }
  return out;
}
