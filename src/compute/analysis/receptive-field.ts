// Where a layer's cell looks in the input: for every tensor, the size of the theoretical receptive field, the jump
// (input pixels between neighbouring cells) and the input coordinate of cell 0's centre, propagated through the
// windowed ops of the graph (the classic recurrence: r' = r + (k−1)·d·j, j' = j·s, c' = c + ((k−1)·d/2 − p)·j).
// Elementwise ops keep the widest of their inputs; global pooling and dense layers see the whole image.
import { windowGeometry } from '../autodiff/vjp/conv.ts';
import { Graph } from '../onnx/graph.ts';
import { attrInts } from '../onnx/proto.ts';
import { PIXELS } from '../onnx/normalize.ts';
import type { PreparedModel } from '../runtime/program.ts';

export interface ReceptiveField {
  /** [rows, cols] of the field, in input pixels */
  size: [number, number];
  /** input pixels between neighbouring cells */
  jump: [number, number];
  /** input coordinate of the centre of cell (0,0) */
  start: [number, number];
}

const WINDOWED = new Set(['Conv', 'MaxPool', 'AveragePool']);
const GLOBAL = new Set(['GlobalAveragePool', 'GlobalMaxPool', 'Gemm', 'MatMul', 'Flatten', 'Reshape', 'ReduceMean', 'ReduceSum']);

export function receptiveFields(model: PreparedModel): Map<string, ReceptiveField> {
  const graph = Graph.decode(model.bytes);
  const [, h, w] = model.inputDims;
  const fields = new Map<string, ReceptiveField>([[PIXELS, { size: [1, 1], jump: [1, 1], start: [0, 0] }]]);
  const whole: ReceptiveField = { size: [h, w], jump: [h, w], start: [(h - 1) / 2, (w - 1) / 2] };
  for (const node of graph.nodes) {
    const inputs = (node.input ?? []).map((i) => fields.get(i)).filter((f): f is ReceptiveField => !!f);
    if (inputs.length === 0) continue;
    let out: ReceptiveField;
    const op = node.opType ?? '';
    if (WINDOWED.has(op)) {
      const f = inputs[0];
      const xDims = model.tensors.get(node.input![0])?.dims ?? [];
      const yDims = model.tensors.get(node.output![0])?.dims ?? [];
      const kernel = attrInts(node, 'kernel_shape') ?? (model.tensors.get(node.input![1])?.dims ?? graph.initializers.get(node.input![1])?.dims?.map(Number) ?? []).slice(2);
      if (kernel.length !== 2) { out = whole; } else {
        const g = windowGeometry(node, kernel, xDims.slice(2), yDims.slice(2));
        out = {
          size: [0, 1].map((a) => f.size[a] + (kernel[a] - 1) * g.dilations[a] * f.jump[a]) as [number, number],
          jump: [0, 1].map((a) => f.jump[a] * g.strides[a]) as [number, number],
          start: [0, 1].map((a) => f.start[a] + (((kernel[a] - 1) * g.dilations[a]) / 2 - g.pads[a]) * f.jump[a]) as [number, number],
        };
      }
    } else if (GLOBAL.has(op)) {
      out = whole;
    } else {
      out = inputs.reduce((a, b) => (b.size[0] * b.size[1] > a.size[0] * a.size[1] ? b : a));
    }
    for (const o of node.output ?? []) if (o) fields.set(o, out);
  }
  return fields;
}

/** The input-pixel box [top, left, bottom, right) a cell sees, clamped to the image. */
export function cellBox(f: ReceptiveField, y: number, x: number, h: number, w: number): [number, number, number, number] {
  const cy = f.start[0] + y * f.jump[0];
  const cx = f.start[1] + x * f.jump[1];
  const top = Math.max(0, Math.round(cy - (f.size[0] - 1) / 2));
  const left = Math.max(0, Math.round(cx - (f.size[1] - 1) / 2));
  return [top, left, Math.min(h, Math.round(cy + (f.size[0] - 1) / 2) + 1), Math.min(w, Math.round(cx + (f.size[1] - 1) / 2) + 1)];
}
