// The ONNX Model Zoo's int8 MobileNetV2 (`mobilenetv2-12-int8.onnx`, QOperator format) as the float network the
// article is built from, with torchvision's module names: the published int8 file is the only pretrained MobileNetV2
// a user can download without Python, and the article names its layers as torchvision does (`features.14.conv.1`).
//
// dequantize.ts's 'float' mode gives the weights, (q − zero point)·scale, and biases, bias·x_scale·w_scale, as
// float32. What it keeps of each requantization is the int8 RANGE as a Clip; here that range becomes what the
// quantizer had fused into it: ReLU6, Clip(0, 6), after a Conv whose output zero point is 0 (the range starts at 0),
// and nothing after a Conv with another zero point (MobileNetV2's linear bottlenecks), a residual Add, the pooling or
// the classifier. The calibrated ranges themselves are not ReLU6 (features.17.conv.1 clips at 2.09), so keeping them
// would not be the float network.
//
// Names: the i-th Conv takes torchvision's i-th module name (`features.0`, `features.1.conv.0/1`,
// `features.K.conv.0/1/2` for K = 2…17, `features.18`), its Clip `<conv>.relu6`, a residual Add its block's name
// `features.K`, then `avgpool`, `flatten`, `classifier.1.matmul` and `classifier.1`. Tensors keep the exporter's
// names without `_quantized` (`474_preact` → Clip → `474`); initializers are named after the QLinear node they came
// from (`Conv_0_quant.weight`). ../shared/models/mobilenetv2.onnx was made this way: test/convert-int8.test.ts checks
// that the nodes, names and weights are the same and that the logits agree.
//
// Anything that is not this network's shape throws: a wrongly named graph would silently mislabel every figure.
import { dequantizeGraph } from './dequantize.ts';
import { Graph } from './graph.ts';
import { DType, makeAttribute, tensorNumbers, type NodeProto, type TensorProto } from './proto.ts';
import { unpackRepeated } from './proto2-wire.ts';

/** What the converted file says made it (ModelProto.producer_name), as in ../shared/models/mobilenetv2.onnx. */
export const PRODUCER = 'dequant-from-mobilenetv2-12-int8';
const GRAPH_NAME = 'mobilenetv2_dequantized_fp32';
const RELU6_MAX = 6;

/**
 * torchvision's MobileNetV2 (width 1.0) module names of its 52 convolutions in execution order, and the residual
 * blocks (a block has a skip when its stride is 1 and its input and output channels are equal).
 */
export function mobileNetV2ConvNames(): string[] {
  const names = ['features.0', 'features.1.conv.0', 'features.1.conv.1'];
  for (let k = 2; k <= 17; k++) names.push(`features.${k}.conv.0`, `features.${k}.conv.1`, `features.${k}.conv.2`);
  names.push('features.18');
  return names;
}

export interface TorchvisionConversion {
  /** the float model, encoded */
  bytes: Uint8Array;
  convs: number;
  relu6: number;
  residualAdds: number;
}

/** Convert the encoded int8 model (see the file comment); the input bytes are not modified. */
export function int8MobileNetV2ToTorchvision(int8: Uint8Array): TorchvisionConversion {
  const graph = Graph.decode(int8);
  const qconvNames = graph.nodes.filter((n) => n.opType === 'QLinearConv').map((n) => n.name ?? '');
  const qlinearOrigin = new Map<string, string>();
  dequantizeGraph(graph, { activations: 'float' });
  // dequantize.ts names a replaced node after the QLinear node without `_quant`; the initializers keep the original.
  for (const name of qconvNames) qlinearOrigin.set(name.replace(/_quant$/, ''), name);

  const convNames = mobileNetV2ConvNames();
  const convs = graph.nodes.filter((n) => n.opType === 'Conv');
  if (convs.length !== convNames.length) {
    throw new Error(`expected MobileNetV2's ${convNames.length} convolutions, found ${convs.length}: not the model zoo's mobilenetv2-12-int8`);
  }
  const producers = graph.producers();
  const consumers = graph.consumers();
  const inputName = graph.inputs[0]?.name ?? '';
  const outputName = graph.outputs[0]?.name ?? '';

  /** a tensor's new name: the graph input for the input quantizer's output, else the exporter's name plain */
  const renamed = new Map<string, string>();
  const nameOf = (t: string): string => renamed.get(t) ?? t.replace(/_quantized$/, '');
  const nodes: NodeProto[] = [];
  const inits = new Map<string, TensorProto>();
  const moveInit = (from: string, to: string): string => {
    const t = graph.initializers.get(from);
    if (!t) throw new Error(`initializer '${from}' is missing`);
    inits.set(to, { ...t, name: to });
    return to;
  };
  const scalarInit = (name: string, v: number): string => {
    inits.set(name, { name, dataType: DType.FLOAT, dims: [], rawData: new Uint8Array(Float32Array.of(v).buffer) });
    return name;
  };
  /** The Clip that dequantize.ts wrote after `node` (its requantization range), and its lower bound. */
  const rangeClip = (node: NodeProto): { clip: NodeProto; min: number } => {
    const readers = consumers.get(node.output![0]) ?? [];
    const clip = readers[0];
    if (readers.length !== 1 || clip.opType !== 'Clip') throw new Error(`${node.opType} '${node.name}' is not followed by its requantization range`);
    const min = graph.initializers.get(clip.input![1]);
    if (!min) throw new Error(`Clip '${clip.name}' has no constant lower bound`);
    return { clip, min: tensorNumbers(min)[0] };
  };
  const dropped = new Set<NodeProto>();
  let convIndex = 0, relu6 = 0, residualAdds = 0;
  /** the torchvision name of the block each Conv output belongs to, for the residual Add reading it */
  const blockOf = new Map<string, string>();

  for (const node of graph.nodes) {
    if (dropped.has(node)) continue;
    const op = node.opType ?? '';
    const ins = node.input ?? [];
    const out = node.output![0];
    if (op === 'Clip' && ins[0] === inputName) {
      // The input quantizer's range: the float network reads its input as it is.
      renamed.set(out, inputName);
      continue;
    }
    if (op === 'Conv') {
      const name = convNames[convIndex++];
      const origin = qlinearOrigin.get(node.name ?? '');
      if (!origin) throw new Error(`Conv '${node.name}' does not come from a QLinearConv`);
      const { clip, min } = rangeClip(node);
      dropped.add(clip);
      const plain = nameOf(clip.output![0]);
      const inputs = [nameOf(ins[0]), moveInit(ins[1], `${origin}.weight`), ...(ins[2] ? [moveInit(ins[2], `${origin}.bias`)] : [])];
      if (min === 0) {
        nodes.push({ ...node, name, input: inputs, output: [out] });
        nodes.push({ name: `${name}.relu6`, opType: 'Clip', input: [out, scalarInit(`${origin}.min`, 0), scalarInit(`${origin}.max`, RELU6_MAX)], output: [plain] });
        relu6++;
      } else {
        nodes.push({ ...node, name, input: inputs, output: [plain] });
      }
      blockOf.set(plain, name.replace(/\.conv\.\d+$/, ''));
      continue;
    }
    if (op === 'Add' && ins.every((i) => producers.get(i)?.opType === 'Clip')) {
      const { clip } = rangeClip(node);
      dropped.add(clip);
      const [a, b] = ins.map(nameOf);
      const name = blockOf.get(b);
      if (!name || !/^features\.\d+$/.test(name)) throw new Error(`Add '${node.name}' is not a residual sum after a block's last Conv`);
      nodes.push({ ...node, name, input: [a, b], output: [nameOf(clip.output![0])] });
      blockOf.set(nameOf(clip.output![0]), name);
      residualAdds++;
      continue;
    }
    if (op === 'GlobalAveragePool') {
      const { clip } = rangeClip(node);
      dropped.add(clip);
      nodes.push({ ...node, name: 'avgpool', input: [nameOf(ins[0])], output: [nameOf(clip.output![0])], attribute: [] });
      continue;
    }
    if (op === 'Reshape') {
      // torch.onnx wrote x.view(x.size(0), -1) as Shape → Gather → Unsqueeze → Concat → Reshape: torchvision's
      // flatten(x, 1), which Flatten says in one node. The shape branch (off the last Conv) goes with it.
      if (!isBatchFlatten(graph, ins[1], producers)) throw new Error(`Reshape '${node.name}' is not a flatten to [N, -1]`);
      nodes.push({ name: 'flatten', opType: 'Flatten', input: [nameOf(ins[0])], output: [nameOf(out)], attribute: [makeAttribute('axis', 1)] });
      continue;
    }
    if (op === 'MatMul') {
      const { clip } = rangeClip(node);
      dropped.add(clip);
      nodes.push({ ...node, name: 'classifier.1.matmul', input: [nameOf(ins[0]), moveInit(ins[1], 'classifier.1.weight')], output: [nameOf(clip.output![0])] });
      continue;
    }
    if (op === 'Add' && graph.initializers.has(ins[1])) {
      const { clip } = rangeClip(node);
      dropped.add(clip);
      const result = consumers.get(clip.output![0]) ?? [];
      // the output DequantizeLinear, now an Identity, goes: the sum is the graph's output
      if (result.length !== 1 || result[0].opType !== 'Identity' || result[0].output![0] !== outputName) throw new Error(`Add '${node.name}' does not give the logits`);
      dropped.add(result[0]);
      nodes.push({ ...node, name: 'classifier.1', input: [nameOf(ins[0]), moveInit(ins[1], 'classifier.1.bias')], output: [outputName] });
      continue;
    }
    if (['Identity', 'Shape', 'Gather', 'Unsqueeze', 'Concat'].includes(op)) continue; // the shape branch, checked above
    throw new Error(`unexpected ${op} node '${node.name}' in the int8 MobileNetV2`);
  }
  if (convIndex !== convNames.length) throw new Error(`named ${convIndex} of ${convNames.length} convolutions`);
  if (!nodes.some((n) => n.name === 'classifier.1')) throw new Error('the classifier was not found');

  graph.nodes = nodes;
  graph.initializers.clear();
  for (const [k, v] of inits) graph.initializers.set(k, v);
  const model = graph.model;
  model.producerName = PRODUCER;
  delete model.producerVersion;
  model.opsetImport = [{ domain: '', version: graph.opset }];
  model.graph!.name = GRAPH_NAME;
  // Written as the onnx Python package writes it, so the file is byte for byte the one the project's data has.
  return { bytes: unpackRepeated(graph.encode()), convs: convIndex, relu6, residualAdds };
}

/** Whether `shape` is Concat(Unsqueeze(Gather(Shape(x), 0)), [-1]): the batch size, then everything else. */
function isBatchFlatten(graph: Graph, shape: string, producers: Map<string, NodeProto>): boolean {
  const concat = producers.get(shape);
  if (concat?.opType !== 'Concat' || concat.input?.length !== 2) return false;
  const unsqueeze = producers.get(concat.input[0]);
  const gather = unsqueeze?.opType === 'Unsqueeze' ? producers.get(unsqueeze.input![0]) : undefined;
  const shapeOp = gather?.opType === 'Gather' ? producers.get(gather.input![0]) : undefined;
  return shapeOp?.opType === 'Shape' &&
    graph.constantNumbers(gather!.input![1])?.join() === '0' &&
    graph.constantNumbers(concat.input[1])?.join() === '-1';
}
