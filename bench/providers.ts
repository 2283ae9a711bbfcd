// The provider table of `npm run bench` (BENCHMARKS.md): PGD steps per second and feature-visualization seconds per
// neuron on one model, per execution provider and batch size. PGD runs the pipeline's own path (devicePgd: the step
// inside the graph, the batch kept in device memory); feature visualization likewise (deviceRenderNeurons: the whole
// step in the graph, parameters and Adam state in device memory), `batch` neurons together.
import { devicePgd } from '../src/compute/attacks/device-pgd.ts';
import { deviceRenderNeurons } from '../src/compute/featurevis/device-render.ts';
import { loadClassifier } from '../src/compute/model/classifier.ts';
import { probeProvider } from '../src/compute/runtime/execution-provider.ts';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../src/compute/runtime/session.ts';

export interface ProviderBenchOptions {
  model: string;
  /** providers to measure; 'all' = every one that starts here */
  providers: readonly ExecutionProvider[] | 'all';
  batches: readonly number[];
  pgdSteps: number;
  featurevisSteps: number;
  log: (line: string) => void;
}

export async function benchProviders(o: ProviderBenchOptions): Promise<string[][]> {
  const rows: string[][] = [];
  const wanted = o.providers === 'all' ? EXECUTION_PROVIDERS : o.providers;
  for (const ep of wanted) {
    const status = await probeProvider(ep);
    if (!status.available) {
      rows.push([ep, '–', 'not available', status.reason ?? '', '']);
      continue;
    }
    const classifier = await loadClassifier(o.model, { ep });
    const [c, h, w] = classifier.inputDims;
    const layer = classifier.model.layers.at(-Math.min(8, classifier.model.layers.length))!;
    for (const batch of o.batches) {
      try {
        const x = Float32Array.from({ length: batch * c * h * w }, (_, i) => 0.5 + 0.4 * Math.sin(i * 0.37));
        const labels = Int32Array.from({ length: batch }, (_, i) => i);
        const pgdOpts = { norm: 'linf', eps: 4 / 255, alpha: 1 / 255, targeted: false } as const;
        await devicePgd(classifier.model, x, [batch, c, h, w], labels, { ...pgdOpts, steps: 1 }); // warm-up: compile, arenas
        let t = performance.now();
        await devicePgd(classifier.model, x, [batch, c, h, w], labels, { ...pgdOpts, steps: o.pgdSteps });
        // devicePgd ends with one plain evaluation; count it as a step's worth of work
        const pgdSeconds = (performance.now() - t) / 1000 / (o.pgdSteps + 1);
        const targets = Array.from({ length: batch }, (_, k) => ({ layer: layer.name, channel: k % Math.max(1, layer.dims[1] ?? 1) }));
        await deviceRenderNeurons(classifier.model, targets, { steps: 1 });
        t = performance.now();
        await deviceRenderNeurons(classifier.model, targets, { steps: o.featurevisSteps });
        const perNeuron = ((performance.now() - t) / 1000 / batch) * (512 / o.featurevisSteps);
        rows.push([ep, String(batch), (batch / pgdSeconds).toFixed(2), (1 / pgdSeconds).toFixed(2), perNeuron.toFixed(1)]);
        o.log(`${ep} batch ${batch} done`);
      } catch (err) {
        rows.push([ep, String(batch), 'failed', (err as Error).message.split('\n')[0].slice(0, 80), '']);
      }
    }
    await classifier.model.release();
  }
  return rows;
}
