// One place that creates onnxruntime sessions, so the execution provider and thread settings are chosen once.
import ort from 'onnxruntime-node';
import type { NodeProto } from '../onnx/proto.ts';

export type ExecutionProvider = 'cpu' | 'webgpu' | 'cuda';
export const EXECUTION_PROVIDERS: readonly ExecutionProvider[] = ['cpu', 'webgpu', 'cuda'];

export interface SessionOptions {
  ep?: ExecutionProvider;
  /** Threads for one op; onnxruntime's default (all cores) when omitted. */
  threads?: number;
  /**
   * Outputs to leave in device memory (IO binding) when the provider has any: a loop that feeds them back into the
   * next run never copies them to the host. Ignored on the CPU provider, where host memory is the device's.
   */
  deviceOutputs?: readonly string[];
  /** nodes to keep on the CPU even though the provider claims them (see providerLimits) */
  cpuNodes?: readonly string[];
}

/** onnxruntime's name for a provider, as its node-placement log spells it. */
export const ORT_PROVIDER_NAME: Record<ExecutionProvider, string> = {
  cpu: 'CPUExecutionProvider',
  webgpu: 'WebGpuExecutionProvider',
  cuda: 'CUDAExecutionProvider',
};

export function sessionConfig(opts: SessionOptions = {}): ort.InferenceSession.SessionOptions {
  const ep = opts.ep ?? 'cpu';
  const config: ort.InferenceSession.SessionOptions = {
    executionProviders: [ep === 'webgpu' && opts.cpuNodes?.length ? { name: 'webgpu', forceCpuNodeNames: [...opts.cpuNodes] } : ep],
    graphOptimizationLevel: 'all',
    ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
  };
  if (ep !== 'cpu' && opts.deviceOutputs?.length) {
    config.preferredOutputLocation = Object.fromEntries(opts.deviceOutputs.map((o) => [o, 'gpu-buffer' as const]));
  }
  return config;
}

/**
 * Nodes a provider accepts when the session is created but fails on when it runs, found by running our programs on
 * it: onnxruntime 1.30's WebGPU MaxPool has no Indices output, which the MaxPool backward pass reads. They run on
 * the CPU instead, and `atlas providers` names them with the ops the provider has no kernel for.
 */
export function providerLimits(nodes: readonly NodeProto[], ep: ExecutionProvider): { op: string; node: string }[] {
  if (ep !== 'webgpu') return [];
  return nodes.filter((n) => n.opType === 'MaxPool' && !!n.output?.[1]).map((n) => ({ op: 'MaxPool with Indices', node: n.name ?? '' }));
}

export async function createSession(modelBytes: Uint8Array, opts: SessionOptions = {}): Promise<ort.InferenceSession> {
  const ep = opts.ep ?? 'cpu';
  try {
    return await ort.InferenceSession.create(modelBytes, sessionConfig(opts));
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new Error(`onnxruntime could not load the model on the '${ep}' execution provider: ${msg.split('\n')[0]}`);
  }
}

export { ort };
