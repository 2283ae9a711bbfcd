// Static shapes and element types of every tensor, read off one forward pass. The backward graph needs spatial sizes
// (ConvTranspose output padding, pooling divisors, Concat split points) and onnxruntime already knows how to run
// every op, so running the model once is both simpler and more faithful than re-implementing shape inference.
// The probe runs at batch 2 so that a dimension equal to the batch is never mistaken for a broadcast 1.
import { Graph } from '../onnx/graph.ts';
import { DType } from '../onnx/proto.ts';
import { createSession, ort, type SessionOptions } from './session.ts';

export const PROBE_BATCH = 2;

export interface TensorInfo {
  /** dims with the batch at PROBE_BATCH where the tensor has one */
  dims: number[];
  elemType: number;
}

const ORT_TO_ONNX: Record<string, number> = {
  float32: DType.FLOAT, float64: DType.DOUBLE, int64: DType.INT64, int32: DType.INT32, bool: DType.BOOL, uint8: DType.UINT8, int8: DType.INT8,
};

export async function probeTensors(
  bytes: Uint8Array,
  inputDims: Record<string, readonly number[]>,
  opts: SessionOptions = {},
): Promise<Map<string, TensorInfo>> {
  const graph = Graph.decode(bytes);
  for (const n of graph.nodes) for (const o of n.output ?? []) if (o) graph.addOutput(o);
  const session = await createSession(graph.encode(), opts);
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of graph.inputs) {
    const name = input.name ?? '';
    const dims = inputDims[name];
    if (!dims) throw new Error(`probe: no dims given for graph input '${name}'`);
    const size = dims.reduce((a, b) => a * b, 1);
    const elem = input.type?.tensorType?.elemType;
    feeds[name] = elem === DType.DOUBLE
      ? new ort.Tensor('float64', new Float64Array(size).fill(0.5), dims)
      : elem === DType.INT64
        ? new ort.Tensor('int64', new BigInt64Array(size), dims)
        : new ort.Tensor('float32', new Float32Array(size).fill(0.5), dims);
  }
  const results = await session.run(feeds);
  const infos = new Map<string, TensorInfo>();
  for (const [name, t] of Object.entries(results)) {
    infos.set(name, { dims: [...t.dims], elemType: ORT_TO_ONNX[t.type] ?? 0 });
    t.dispose?.();
  }
  for (const [name, t] of Object.entries(feeds)) infos.set(name, { dims: [...t.dims], elemType: ORT_TO_ONNX[t.type] ?? 0 });
  await session.release();
  return infos;
}
