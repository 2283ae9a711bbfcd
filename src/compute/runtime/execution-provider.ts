// Which onnxruntime execution providers this machine can run, and which one a run uses. CPU is the default; WebGPU
// (bundled with onnxruntime-node; Dawn drives Vulkan on Linux) and CUDA (needs onnxruntime's CUDA provider libraries
// and CUDA 12 + cuDNN 9 on the machine) are opt-in or chosen by `auto`. A provider that cannot start falls back to the
// CPU with a one-line notice; it is never used half-working.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { GraphBuilder } from '../onnx/builder.ts';
import { Graph } from '../onnx/graph.ts';
import { DType } from '../onnx/proto.ts';
import { EXECUTION_PROVIDERS, ort, sessionConfig, type ExecutionProvider } from './session.ts';

export type ProviderChoice = ExecutionProvider | 'auto';
export const PROVIDER_CHOICES: readonly ProviderChoice[] = [...EXECUTION_PROVIDERS, 'auto'];

export interface ProviderStatus {
  ep: ExecutionProvider;
  available: boolean;
  /** why not, in onnxruntime's or Dawn's words (first line) */
  reason?: string;
}

const probes = new Map<ExecutionProvider, Promise<ProviderStatus>>();

/**
 * Whether a provider starts and computes a small convolution correctly on this machine (cached per process).
 * Creating a session is not enough: a provider may load and still have no adapter, or a broken driver.
 */
export function probeProvider(ep: ExecutionProvider): Promise<ProviderStatus> {
  let p = probes.get(ep);
  if (!p) probes.set(ep, (p = runProbe(ep)));
  return p;
}

async function runProbe(ep: ExecutionProvider): Promise<ProviderStatus> {
  if (ep === 'cpu') return { ep, available: true };
  const bundled = ort.listSupportedBackends?.().find((b) => b.name === ep);
  if (!bundled) return { ep, available: false, reason: `onnxruntime-node ${ort.env.versions?.common ?? ''} has no ${ep} provider` };
  if (ep === 'cuda' && !existsSync(cudaProviderLibrary())) {
    // Checked first: onnxruntime would otherwise print a native error before failing.
    return { ep, available: false, reason: 'onnxruntime-node was installed without its CUDA provider libraries (README: "GPU execution")' };
  }
  const { bytes, input, expected } = probeGraph();
  let session: ort.InferenceSession | undefined;
  try {
    session = await ort.InferenceSession.create(bytes, sessionConfig({ ep }));
    const out = await session.run({ x: new ort.Tensor('float32', input, [1, 2, 4, 4]) });
    const y = out[session.outputNames[0]].data as Float32Array;
    const err = Math.max(...Array.from(y, (v, i) => Math.abs(v - expected[i])));
    if (!(err < 1e-4)) return { ep, available: false, reason: `computes a test convolution wrongly (max error ${err})` };
    return { ep, available: true };
  } catch (e) {
    return { ep, available: false, reason: firstLine(e) };
  } finally {
    await session?.release();
  }
}

/** Where onnxruntime-node's installer puts the CUDA provider (`--onnxruntime-node-install=cuda12`). */
export function cudaProviderLibrary(): string {
  const pkg = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
  return path.join(pkg, 'bin', 'napi-v6', `${os.platform()}`, `${os.arch()}`, 'libonnxruntime_providers_cuda.so');
}

/** Conv(2→3, 3×3, pad 1) + ReLU on a fixed input, with its result computed here in float64. */
function probeGraph(): { bytes: Uint8Array; input: Float32Array; expected: Float64Array } {
  const graph = new Graph({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'probe', node: [], initializer: [],
      input: [{ name: 'x', type: { tensorType: { elemType: DType.FLOAT, shape: { dim: [1, 2, 4, 4].map((d) => ({ dimValue: d })) } } } }],
      output: [],
    },
  });
  const b = new GraphBuilder(graph, DType.FLOAT);
  const w = Float32Array.from({ length: 3 * 2 * 9 }, (_, i) => ((i * 7) % 11) / 10 - 0.5);
  const input = Float32Array.from({ length: 32 }, (_, i) => ((i * 5) % 13) / 6 - 1);
  const y = b.op('Relu', [b.op('Conv', ['x', b.floatConst('w', [3, 2, 3, 3], w)], { pads: [1, 1, 1, 1] })]);
  graph.addOutput(y);
  const expected = new Float64Array(3 * 16);
  for (let o = 0; o < 3; o++) for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) {
    let s = 0;
    for (let c = 0; c < 2; c++) for (let di = -1; di <= 1; di++) for (let dj = -1; dj <= 1; dj++) {
      const ii = i + di;
      const jj = j + dj;
      if (ii >= 0 && ii < 4 && jj >= 0 && jj < 4) s += w[((o * 2 + c) * 3 + di + 1) * 3 + dj + 1] * input[(c * 4 + ii) * 4 + jj];
    }
    expected[(o * 4 + i) * 4 + j] = Math.max(0, s);
  }
  return { bytes: graph.encode(), input, expected };
}

export interface ProviderTrial {
  ep: ExecutionProvider;
  /** milliseconds for one forward+backward of the trial workload */
  ms: number;
  /** relative L2 error of its gradient against the CPU's (0 for the CPU itself) */
  gradError: number;
}

/** Gradients further than this from the CPU's (relative L2) disqualify a provider. */
export const GRAD_TOLERANCE = 1e-3;

export interface Resolved {
  ep: ExecutionProvider;
  /** one line each, for the user: fallbacks, what `auto` measured and picked */
  notices: string[];
}

/**
 * The provider a run uses. An explicit provider that cannot start falls back to the CPU with a notice. `auto` times
 * `trial` on every provider that starts, drops any whose gradient disagrees with the CPU's, and picks the fastest —
 * so a software Vulkan adapter (lavapipe) loses to the CPU, as it should.
 */
export async function resolveProvider(
  choice: ProviderChoice,
  trial?: (ep: ExecutionProvider, cpuGrad?: Float32Array) => Promise<ProviderTrial & { grad: Float32Array }>,
  probe: (ep: ExecutionProvider) => Promise<ProviderStatus> = probeProvider,
): Promise<Resolved> {
  if (choice === 'cpu') return { ep: 'cpu', notices: [] };
  if (choice !== 'auto') {
    const s = await probe(choice);
    if (s.available) return { ep: choice, notices: [] };
    return { ep: 'cpu', notices: [`${choice} is not available here (${s.reason}); running on the CPU`] };
  }
  const statuses = await Promise.all((['cuda', 'webgpu'] as const).map((ep) => probe(ep)));
  const usable = statuses.filter((s) => s.available).map((s) => s.ep);
  const missing = statuses.filter((s) => !s.available).map((s) => `${s.ep}: ${s.reason}`);
  if (usable.length === 0) return { ep: 'cpu', notices: [`auto: cpu (${missing.join('; ')})`] };
  if (!trial) return { ep: usable[0], notices: [`auto: picked ${usable[0]} untimed (${[...usable.slice(1).map((e) => `${e} also starts`), ...missing].join('; ') || 'the only one besides the CPU'})`] };
  const cpu = await trial('cpu');
  const results: ProviderTrial[] = [cpu];
  const rejected: string[] = [];
  for (const ep of usable) {
    try {
      const r = await trial(ep, cpu.grad);
      if (r.gradError > GRAD_TOLERANCE) rejected.push(`${ep}: gradient differs from the CPU's by ${r.gradError.toExponential(1)}`);
      else results.push(r);
    } catch (e) {
      rejected.push(`${ep}: ${firstLine(e)}`);
    }
  }
  results.sort((a, b) => a.ms - b.ms);
  const timing = results.map((r) => `${r.ep} ${r.ms.toFixed(0)} ms`).join(', ');
  const notes = [...rejected, ...missing].join('; ');
  return { ep: results[0].ep, notices: [`auto: picked ${results[0].ep} (forward+backward ${timing}${notes ? `; ${notes}` : ''})`] };
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  // onnxruntime prefixes its messages with the source location; the reason is after the last ' : ' or ']'.
  const line = msg.split('\n').find((l) => l.trim()) ?? msg;
  const m = /(Failed to [^.]*|[^:\]]+)$/.exec(line.trim());
  return (m?.[1] ?? line).trim().slice(0, 200);
}
