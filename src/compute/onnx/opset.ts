// The backward graph writes axes as inputs (ReduceSum, Unsqueeze: opset 13), so older models are lifted to opset 13.
// Never higher: onnxruntime's NCHWc layout optimizer only recognises Add, Mul and Relu up to their opset-13 versions,
// and lifting ResNet-50 to opset 17 made even its forward pass 35 % slower. Between opset 11 and 13 the ops below
// moved an attribute to an input, and Softmax/LogSoftmax/Hardmax changed meaning; every other op kept its meaning.
import type { Graph } from './graph.ts';
import { DType, attrFloat, attrInt, attrInts, hasAttr, makeAttribute, withoutAttr, type NodeProto } from './proto.ts';

export const MIN_OPSET = 13;

const AXES_TO_INPUT_AT_13: Record<string, string> = { Squeeze: 'axes', Unsqueeze: 'axes', ReduceSum: 'axes', Split: 'split' };

export function upgradeOpset(graph: Graph): void {
  const from = graph.opset;
  if (from >= MIN_OPSET) return;
  if (from < 11) {
    throw new Error(`model uses ONNX opset ${from}; Adversarial Atlas reads opset 11 or newer (re-export with torch.onnx.export(..., opset_version=13) or later)`);
  }
  const lifted: NodeProto[] = [];
  for (const node of graph.nodes) {
    if (node.domain && node.domain !== 'ai.onnx') {
      lifted.push(node);
      continue;
    }
    const attr = AXES_TO_INPUT_AT_13[node.opType ?? ''];
    if (attr) moveAttrToInput(graph, node, attr);
    if (node.opType === 'Dropout' && from < 12) moveRatioToInput(graph, node);
    if (NORMALIZED_OVER_TRAILING_AT_11.has(node.opType ?? '')) lifted.push(...softmaxOverTrailingAxes(graph, node));
    else lifted.push(node);
  }
  graph.nodes = lifted;
  graph.opset = MIN_OPSET;
}

// Before opset 13 these ops flattened their input to 2-D at `axis` (default 1) and normalised over everything after
// it: over C·H·W for an [N,C,H,W] input, not over C. Opset 13 normalises over one axis, so the old meaning is
// Flatten(axis) → op(axis=-1) → Reshape back to the input's shape, which every rank and axis reduce to exactly.
const NORMALIZED_OVER_TRAILING_AT_11 = new Set(['Softmax', 'LogSoftmax', 'Hardmax']);

function softmaxOverTrailingAxes(graph: Graph, node: NodeProto): NodeProto[] {
  const axis = attrInt(node, 'axis', 1);
  const [x] = node.input ?? [];
  const [y] = node.output ?? [];
  const base = node.name || node.opType || 'softmax';
  const flat = graph.fresh(`${base}/flat`);
  const normalized = graph.fresh(`${base}/2d`);
  const shape = graph.fresh(`${base}/shape`);
  return [
    { name: graph.fresh(`${base}/Flatten`), opType: 'Flatten', input: [x], output: [flat], attribute: [makeAttribute('axis', axis)] },
    { ...node, input: [flat], output: [normalized], attribute: [makeAttribute('axis', -1)] },
    { name: graph.fresh(`${base}/Shape`), opType: 'Shape', input: [x], output: [shape] },
    { name: graph.fresh(`${base}/Reshape`), opType: 'Reshape', input: [normalized, shape], output: [y] },
  ];
}

// Opset 12 moved Dropout's ratio to an input; an attribute there is invalid. At inference Dropout is the identity
// either way, but keeping the ratio keeps the model what its author exported.
function moveRatioToInput(graph: Graph, node: NodeProto): void {
  const ratio = hasAttr(node, 'ratio') ? attrFloat(node, 'ratio', 0.5) : undefined;
  withoutAttr(node, 'ratio');
  withoutAttr(node, 'is_test');
  if (ratio !== undefined) node.input = [node.input?.[0] ?? '', graph.addInitializer(`${node.name || 'Dropout'}.ratio`, DType.FLOAT, [], [ratio])];
}

function moveAttrToInput(graph: Graph, node: NodeProto, attr: string): void {
  const values = attrInts(node, attr);
  if (values === undefined) return;
  withoutAttr(node, attr);
  const name = graph.addInitializer(`${node.name || node.opType}.${attr}`, DType.INT64, [values.length], values);
  // Before opset 13 these ops had exactly one input; the moved attribute becomes the second.
  node.input = [node.input?.[0] ?? '', name];
}
