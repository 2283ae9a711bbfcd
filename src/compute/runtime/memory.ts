// How many images fit in one run: the provider's free memory divided by what one image costs the program. A batch
// size fixed in code is either too small for a GPU or too large for a laptop; this one follows the machine.
// The batch stays out of cache keys: onnxruntime's CPU kernels compute each image of a batch alone, so a result
// changes at most by float32 rounding. Batch 1 and 8 gave the same bits with AVX-512 and with AVX2, but onnxruntime
// does not promise that (with its optimizer off they differ in the last bits), so test/execution-provider.test.ts
// holds them to GRAD_TOLERANCE; a many-step attack may turn such bits into another, equally valid, trajectory.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { promisify } from 'node:util';
import { DType } from '../onnx/proto.ts';
import type { PreparedModel } from './program.ts';
import { PROBE_BATCH } from './probe.ts';
import type { ExecutionProvider } from './session.ts';

export interface DeviceMemory {
  /** bytes a run may use */
  free: number;
  /** where the number came from, for the user */
  source: string;
}

/** Free memory of the provider's device, or undefined where it cannot be known (WebGPU on a non-NVIDIA adapter). */
export async function deviceMemory(ep: ExecutionProvider): Promise<DeviceMemory | undefined> {
  if (ep === 'cpu') {
    const limit = await cgroupLimit();
    const free = Math.min(os.freemem(), limit ?? Infinity);
    return { free, source: limit !== undefined && limit < os.freemem() ? 'cgroup memory limit' : 'free system memory' };
  }
  // Both CUDA and Dawn's Vulkan backend on an NVIDIA card draw from the memory nvidia-smi reports.
  try {
    const { stdout } = await promisify(execFile)('nvidia-smi', ['--query-gpu=memory.free', '--format=csv,noheader,nounits'], { timeout: 10_000 });
    const mib = Number(stdout.trim().split('\n')[0]);
    if (Number.isFinite(mib) && mib > 0) return { free: mib * 2 ** 20, source: 'nvidia-smi (GPU 0)' };
  } catch {
    // no NVIDIA tools: unknown
  }
  return undefined;
}

async function cgroupLimit(): Promise<number | undefined> {
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const v = Number((await readFile(file, 'utf8')).trim());
      if (Number.isFinite(v) && v > 0 && v < 2 ** 60) return v;
    } catch {
      // not this cgroup version
    }
  }
  return undefined;
}

/**
 * Bytes one image costs a forward+backward program: every forward tensor is kept for the backward pass, and the
 * backward pass makes about as many again. An estimate from the shapes the probe recorded, in the model's float size.
 */
export function bytesPerImage(model: Pick<PreparedModel, 'tensors' | 'floatType'>): number {
  let values = 0;
  for (const t of model.tensors.values()) {
    if (t.dims[0] !== PROBE_BATCH) continue; // weights and shape tensors do not grow with the batch
    values += t.dims.reduce((a, b) => a * b, 1) / PROBE_BATCH;
  }
  const bytes = model.floatType === DType.DOUBLE ? 8 : 4;
  return 2 * values * bytes;
}

export interface BatchChoice {
  batch: number;
  /** one line for the user */
  reason: string;
}

/**
 * The largest batch whose program fits in `fraction` of the device's free memory, between 1 and `max`. Where the
 * memory is unknown, `fallback` (a GPU with no nvidia-smi: a conservative 8).
 */
export function chooseBatch(perImage: number, memory: DeviceMemory | undefined, opts: { max?: number; fraction?: number; fallback?: number } = {}): BatchChoice {
  const max = opts.max ?? 64;
  if (!memory) {
    const batch = Math.min(max, opts.fallback ?? 8);
    return { batch, reason: `batch ${batch} (device memory unknown)` };
  }
  const fit = Math.floor((memory.free * (opts.fraction ?? 0.5)) / Math.max(1, perImage));
  const batch = Math.max(1, Math.min(max, fit));
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  return { batch, reason: `batch ${batch}: ${mb(perImage)} per image, ${mb(memory.free)} free (${memory.source})${fit > max ? `, capped at ${max}` : ''}` };
}
