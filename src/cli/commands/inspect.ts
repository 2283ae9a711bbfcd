import { loadClassifierOn } from '../provider.ts';
import { PROBE_BATCH } from '../../compute/runtime/probe.ts';
import type { ProviderChoice } from '../../compute/runtime/execution-provider.ts';

export interface InspectOptions {
  /** execution provider (cpu, webgpu, cuda) or auto */
  ep?: ProviderChoice;
  json?: boolean;
}

/** The layer table: every node output a user may analyse, with its human name, op and output shape. */
export async function inspect(modelPath: string, opts: InspectOptions): Promise<void> {
  const classifier = await loadClassifierOn(modelPath, opts.ep);
  const { model, card } = classifier;
  const shape = (dims: number[]) => `[${dims.map((d, i) => (i === 0 && d === PROBE_BATCH ? 'N' : d)).join(',')}]`;
  if (opts.json) {
    process.stdout.write(JSON.stringify({
      model: modelPath,
      input: { dims: model.inputDims, normalization: card.input.range === 'unit' ? null : { mean: card.input.mean, std: card.input.std } },
      classes: classifier.classes.length,
      layers: model.layers.map((l) => ({ name: l.name, op: l.op, shape: shape(l.dims), tensor: l.tensor })),
    }, null, 2) + '\n');
    return;
  }
  const rows = model.layers.map((l) => [l.name, l.op, shape(l.dims)]);
  const widths = [0, 1, 2].map((k) => Math.max(['name', 'op', 'output shape'][k].length, ...rows.map((r) => r[k].length)));
  const line = (r: string[]) => r.map((c, k) => c.padEnd(widths[k])).join('  ').trimEnd();
  const out = [
    `model   ${modelPath}`,
    `input   pixels [N,${model.inputDims.join(',')}] in [0,1]${card.input.range === 'unit' ? '' : ` (normalized in-graph: mean ${card.input.mean.join(',')}, std ${card.input.std.join(',')})`}`,
    `classes ${classifier.classes.length}`,
    `layers  ${rows.length}`,
    '',
    line(['name', 'op', 'output shape']),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
  ];
  process.stdout.write(out.join('\n') + '\n');
}
