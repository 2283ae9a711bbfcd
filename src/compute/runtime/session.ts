// One place that creates onnxruntime sessions, so the execution provider and thread settings are chosen once.
import ort from 'onnxruntime-node';

export type ExecutionProvider = 'cpu' | 'webgpu' | 'cuda';
export const EXECUTION_PROVIDERS: readonly ExecutionProvider[] = ['cpu', 'webgpu', 'cuda'];

export interface SessionOptions {
  ep?: ExecutionProvider;
  /** Threads for one op; onnxruntime's default (all cores) when omitted. */
  threads?: number;
}

export async function createSession(modelBytes: Uint8Array, opts: SessionOptions = {}): Promise<ort.InferenceSession> {
  const ep = opts.ep ?? 'cpu';
  try {
    return await ort.InferenceSession.create(modelBytes, {
      executionProviders: [ep],
      graphOptimizationLevel: 'all',
      ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
    });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new Error(`onnxruntime could not load the model on the '${ep}' execution provider: ${msg.split('\n')[0]}`);
  }
}

export { ort };
