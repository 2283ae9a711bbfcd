// Which nodes of a graph an execution provider runs, and which it leaves to the CPU because it has no kernel for
// them — read from onnxruntime's own placement log, so the answer is onnxruntime's, not a list kept by hand.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Graph } from '../onnx/graph.ts';
import { ORT_PROVIDER_NAME, providerLimits, type ExecutionProvider } from './session.ts';

export interface Placement {
  ep: ExecutionProvider;
  /** nodes per onnxruntime provider name, e.g. { WebGpuExecutionProvider: 452, CPUExecutionProvider: 4 } */
  counts: Record<string, number>;
  /** nodes the provider has no kernel for (they run on the CPU, with copies to and from the device) */
  unsupported: { op: string; node: string }[];
  /** every node onnxruntime placed on the CPU, unsupported or not (it keeps small shape and int64 ops there on purpose) */
  onCpu: { op: string; node: string }[];
}

/** Parse onnxruntime's verbose session log. Exported for tests. */
export function parsePlacementLog(log: string, ep: ExecutionProvider): Placement {
  const counts: Record<string, number> = {};
  const onCpu: Placement['onCpu'] = [];
  const unsupported = new Map<string, { op: string; node: string }>();
  let current: string | undefined;
  for (const line of log.split('\n')) {
    const placed = /Node\(s\) placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(line);
    if (placed) {
      current = placed[1];
      counts[current] = Number(placed[2]);
      continue;
    }
    const node = /VerifyEachNodeIsAssignedToAnEp\]\s{3,}(\S+) \((.*)\)\s*$/.exec(line);
    // Node lines follow the header of the provider they were placed on.
    if (node && current === ORT_PROVIDER_NAME.cpu) onCpu.push({ op: node[1], node: node[2] });
    const missing = /kernel not found in registries for Op type: (\S+) node name: (.*?)\s*$/.exec(line);
    if (missing) unsupported.set(missing[2], { op: missing[1], node: missing[2] });
  }
  if (Object.keys(counts).length === 0) throw new Error('onnxruntime printed no node placement (is this a minimal build?)');
  // A node can be reported as lacking a kernel and still end up on the provider after a later partitioning pass.
  const cpuNodes = new Set(onCpu.map((n) => n.node));
  return { ep, counts, onCpu, unsupported: [...unsupported.values()].filter((n) => ep === 'cpu' || cpuNodes.has(n.node)) };
}

/** The placement of a model's nodes on a provider (one extra session, in a child process). */
export async function nodePlacement(modelBytes: Uint8Array, ep: ExecutionProvider): Promise<Placement> {
  const nodes = Graph.decode(modelBytes).nodes;
  // onnxruntime logs no placement when the CPU is the only provider: everything runs there.
  if (ep === 'cpu') return { ep, counts: { [ORT_PROVIDER_NAME.cpu]: nodes.length }, unsupported: [], onCpu: [] };
  const limits = providerLimits(nodes, ep);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'atlas-placement-'));
  try {
    const model = path.join(dir, 'model.onnx');
    await writeFile(model, modelBytes);
    const worker = new URL('./placement-worker.ts', import.meta.url).pathname;
    let stderr: string;
    try {
      ({ stderr } = await promisify(execFile)(process.execPath, [worker, model, ep, limits.map((n) => n.node).join('\n')], { maxBuffer: 256 << 20, env: { ...process.env, NODE_OPTIONS: '' } }));
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      const reason = (e.stderr ?? e.message).split('\n').find((l) => /Error|FAIL/.test(l)) ?? e.message;
      throw new Error(`could not place the model on ${ep}: ${reason.trim().slice(0, 300)}`);
    }
    const placement = parsePlacementLog(stderr, ep);
    placement.unsupported.push(...limits);
    return placement;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** One line: how much of the graph the provider runs, and the ops it cannot. */
export function describePlacement(p: Placement): string {
  const total = Object.values(p.counts).reduce((a, b) => a + b, 0);
  if (p.ep === 'cpu') return `cpu: all ${total} nodes`;
  const mine = p.counts[ORT_PROVIDER_NAME[p.ep]] ?? 0;
  const byOp = new Map<string, number>();
  for (const n of p.unsupported) byOp.set(n.op, (byOp.get(n.op) ?? 0) + 1);
  const ops = [...byOp].map(([op, k]) => (k > 1 ? `${op} ×${k}` : op)).join(', ');
  return `${p.ep}: ${mine} of ${total} nodes on the device${ops ? `; no ${p.ep} kernel for ${ops} (run on the CPU: ${p.unsupported.map((n) => n.node).slice(0, 6).join(', ')}${p.unsupported.length > 6 ? ', …' : ''})` : ''}`;
}
