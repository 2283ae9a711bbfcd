import os from 'node:os';
import path from 'node:path';
import { loadClassifierOn } from '../provider.ts';
import { neuronFileStem, parseNeuron } from '../../compute/featurevis/neuron-id.ts';
import { deviceRenderNeurons, renderProgram } from '../../compute/featurevis/device-render.ts';
import { maxRenderSize, renderBytes } from '../../compute/featurevis/render-memory.ts';
import { renderSetup, type NeuronTarget, type RenderOptions } from '../../compute/featurevis/render.ts';
import { toPng } from '../../compute/io/image.ts';
import { OutputDir } from '../../compute/io/output-dir.ts';
import { cardPathFor } from '../../compute/model/model-card.ts';
import { findLayer } from '../../compute/onnx/layers.ts';
import { progress } from '../../compute/progress.ts';
import type { ProviderChoice } from '../../compute/runtime/execution-provider.ts';
import { parseInteger, parseNumber } from '../parse.ts';

export interface FeaturevisOptions {
  /** execution provider (cpu, webgpu, cuda) or auto */
  ep?: ProviderChoice;
  model: string;
  neuron: string[];
  size: string;
  steps: string;
  seed: string;
  param: 'fft' | 'pixel';
  decorrelate: boolean;
  copies: string;
  diversity: string;
  out: string;
  /** replace an earlier output of `atlas featurevis` at `out` */
  force?: boolean;
}

/** Render the images that maximise the given neurons (one batch), with their objective curves. */
export async function featurevis(opts: FeaturevisOptions): Promise<void> {
  const copies = parseInteger(opts.copies, '--copies', 1);
  const weight = parseNumber(opts.diversity, '--diversity');
  const targets = opts.neuron.map((n) => {
    try {
      return parseNeuron(n);
    } catch (err) {
      throw new Error(`--${(err as Error).message}`); // "--neuron 'x': expected …"
    }
  }).flatMap((t) => Array.from({ length: copies }, () => t));
  const size = parseInteger(opts.size, '--size', 8);
  const largest = maxRenderSize(targets.length);
  if (size > largest) {
    const gib = (b: number) => `${(b / 2 ** 30).toFixed(b < 2 ** 30 ? 2 : 0)} GiB`;
    throw new Error(`--size ${size}: ${targets.length} image(s) of ${size}×${size} px need about ${gib(renderBytes(targets.length, size))} while rendering; this machine's ${gib(os.totalmem())} hold at most --size ${largest} for ${targets.length} image(s)`);
  }
  const steps = parseInteger(opts.steps, '--steps', 1);
  const seed = parseInteger(opts.seed, '--seed');
  const render: RenderOptions = { size, steps, seed, param: opts.param, decorrelate: opts.decorrelate, diversity: weight };
  const output = await OutputDir.claim(opts.out, { command: 'featurevis', inputs: [opts.model, cardPathFor(opts.model)], force: opts.force });
  try {
    await renderInto(output, opts, targets, { size, steps, seed, copies, weight }, render);
  } catch (err) {
    await output.abandon();
    throw err;
  }
}

interface Parsed { size: number; steps: number; seed: number; copies: number; weight: number }

async function renderInto(output: OutputDir, opts: FeaturevisOptions, targets: NeuronTarget[], { size, steps, seed, copies, weight }: Parsed, render: RenderOptions): Promise<void> {
  const classifier = await loadClassifierOn(opts.model, opts.ep, (c) => renderProgram(renderSetup(c.model, targets, render), render));
  for (const t of targets) findLayer(classifier.model.layers, t.layer);
  const bar = progress(steps, 'featurevis');
  const t0 = performance.now();
  const result = await deviceRenderNeurons(classifier.model, targets, {
    ...render,
    onStep: (step, o) => bar.update(step, `objective ${Array.from(o, (v) => v.toFixed(2)).join(' ')}`),
  });
  bar.stop();
  const seconds = (performance.now() - t0) / 1000;
  const per = 3 * size * size;
  const files = new Map<string, Uint8Array>();
  const names = targets.map((t, i) => `${neuronFileStem(t)}${copies > 1 ? `_copy${i % copies}` : ''}`);
  for (let i = 0; i < targets.length; i++) files.set(`${names[i]}.png`, await toPng(result.images.subarray(i * per, (i + 1) * per), size, size));
  const summary = {
    model: opts.model, size, steps, seed, param: opts.param, decorrelate: opts.decorrelate, copies, diversity: weight, seconds,
    neurons: targets.map((t, i) => ({ ...t, image: `${names[i]}.png`, objective: result.curve.at(-1)![i] })),
  };
  files.set('featurevis.json', new TextEncoder().encode(JSON.stringify(summary, null, 2) + '\n'));
  files.set('curve.json', new TextEncoder().encode(JSON.stringify(result.curve.map((row) => row.map((v) => Number(v.toPrecision(6))))) + '\n'));
  await output.commit(files);
  process.stderr.write(`rendered ${targets.length} neuron(s) in ${seconds.toFixed(1)} s; wrote ${path.resolve(opts.out)}\n`);
}
