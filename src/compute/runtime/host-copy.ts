// Reading a tensor that lives in device memory back to the host. onnxruntime-node 1.30 aborts the whole process on
// Tensor.getData() for a 'gpu-buffer' tensor, so the copy goes through a one-node session on the same provider,
// whose output onnxruntime places on the host as usual.
import { Graph } from '../onnx/graph.ts';
import { DType } from '../onnx/proto.ts';
import { createSession, ort, type ExecutionProvider } from './session.ts';

const copiers = new Map<string, Promise<ort.InferenceSession>>();

export async function toHost(t: ort.Tensor, ep: ExecutionProvider): Promise<Float32Array | Float64Array> {
  if (t.location === 'cpu') return t.data as Float32Array | Float64Array;
  const elem = t.type === 'float64' ? DType.DOUBLE : DType.FLOAT;
  const key = `${ep}:${t.type}:${t.dims.length}`;
  let session = copiers.get(key);
  if (!session) {
    session = createSession(identityModel(elem, t.dims.length), { ep });
    copiers.set(key, session);
    session.catch(() => copiers.delete(key));
  }
  const out = await (await session).run({ x: t });
  return out.y.data as Float32Array | Float64Array;
}

/** Frees a tensor's device memory; host tensors are the garbage collector's. */
export function releaseDevice(t: ort.Tensor): void {
  if (t.location !== 'cpu') t.dispose();
}

function identityModel(elemType: number, rank: number): Uint8Array {
  const shape = { dim: Array.from({ length: rank }, (_, k) => ({ dimParam: `d${k}` })) };
  return new Graph({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'host-copy',
      node: [{ name: 'copy', opType: 'Identity', input: ['x'], output: ['y'] }],
      initializer: [],
      input: [{ name: 'x', type: { tensorType: { elemType, shape } } }],
      output: [{ name: 'y', type: { tensorType: { elemType, shape } } }],
    },
  }).encode();
}
