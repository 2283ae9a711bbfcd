// The backward graph writes axes as inputs (ReduceSum, Unsqueeze: opset 13), so older models are lifted to opset 13.
// Never higher: onnxruntime's NCHWc layout optimizer only recognises Add, Mul and Relu up to their opset-13 versions,
// and lifting ResNet-50 to opset 17 made even its forward pass 35 % slower. Between opset 11 and 13 only the ops below
// moved an attribute to an input; every other op we differentiate kept its meaning.
import type { Graph } from './graph.ts';
import { DType, attrInts, withoutAttr, type NodeProto } from './proto.ts';

export const MIN_OPSET = 13;

const AXES_TO_INPUT_AT_13: Record<string, string> = { Squeeze: 'axes', Unsqueeze: 'axes', ReduceSum: 'axes', Split: 'split' };

export function upgradeOpset(graph: Graph): void {
  const from = graph.opset;
  if (from >= MIN_OPSET) return;
  if (from < 11) {
    throw new Error(`model uses ONNX opset ${from}; Adversarial Atlas reads opset 11 or newer (re-export with torch.onnx.export(..., opset_version=13) or later)`);
  }
  for (const node of graph.nodes) {
    if (node.domain && node.domain !== 'ai.onnx') continue;
    const attr = AXES_TO_INPUT_AT_13[node.opType ?? ''];
    if (attr && from < 13) moveAttrToInput(graph, node, attr);
  }
  graph.opset = MIN_OPSET;
}

function moveAttrToInput(graph: Graph, node: NodeProto, attr: string): void {
  const values = attrInts(node, attr);
  if (values === undefined) return;
  withoutAttr(node, attr);
  const name = graph.addInitializer(`${node.name || node.opType}.${attr}`, DType.INT64, [values.length], values);
  // Before opset 13 these ops had exactly one input; the moved attribute becomes the second.
  node.input = [node.input?.[0] ?? '', name];
}
