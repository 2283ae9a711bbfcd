// Choosing an execution provider for one model: `auto` times a forward+backward of the model itself on each provider
// that starts (the only honest measure of "fastest"), and whichever provider runs, the user learns which ops it
// could not run on the device.
import { crossEntropy } from '../autodiff/objectives.ts';
import { relativeL2 } from '../numbers.ts';
import { resolveProvider, type ProviderChoice, type Resolved } from '../runtime/execution-provider.ts';
import { describePlacement, nodePlacement } from '../runtime/placement.ts';
import { buildProgramGraph, type ProgramSpec } from '../runtime/program.ts';
import type { ExecutionProvider } from '../runtime/session.ts';
import type { Classifier } from './classifier.ts';

const TRIAL_RUNS = 3;

export async function chooseProvider(choice: ProviderChoice, load: (ep: ExecutionProvider) => Promise<Classifier>): Promise<Resolved> {
  return resolveProvider(choice, async (ep, cpuGrad) => {
    const classifier = await load(ep);
    try {
      const { ms, grad } = await timeGradient(classifier);
      return { ep, ms, grad, gradError: cpuGrad ? relativeL2(grad, cpuGrad) : 0 };
    } finally {
      await classifier.model.release();
    }
  });
}

/**
 * One load per provider: `auto`'s trial has already loaded (and probed) the model on the provider it picks, so the
 * run reuses that classifier instead of loading it again (the trial released only its sessions).
 */
export function loadOncePerProvider(load: (ep: ExecutionProvider) => Promise<Classifier>): (ep: ExecutionProvider) => Promise<Classifier> {
  const loaded = new Map<ExecutionProvider, Promise<Classifier>>();
  return (ep) => {
    let c = loaded.get(ep);
    if (!c) loaded.set(ep, (c = load(ep)));
    return c;
  };
}

/** Median time of one forward+backward (cross-entropy, batch 1, after a warm-up run) and its input gradient. */
export async function timeGradient(classifier: Classifier): Promise<{ ms: number; grad: Float32Array }> {
  const [c, h, w] = classifier.inputDims;
  const x = Float32Array.from({ length: c * h * w }, (_, i) => 0.5 + 0.4 * Math.sin(i * 0.0137));
  let r = await classifier.model.gradient(x, crossEntropy(), [0]); // warm-up: kernels compile on first use
  const times: number[] = [];
  for (let k = 0; k < TRIAL_RUNS; k++) {
    const t = performance.now();
    r = await classifier.model.gradient(x, crossEntropy(), [0]);
    times.push(performance.now() - t);
  }
  return { ms: times.sort((a, b) => a - b)[TRIAL_RUNS >> 1], grad: Float32Array.from(r.grad) };
}

/**
 * One line on how a program (default: the attack gradient) is placed on the model's provider; nothing to say on the
 * CPU, where `program` is not even built.
 */
export async function placementNotice(classifier: Classifier, program: () => ProgramSpec = () => ({ objective: crossEntropy() })): Promise<string | undefined> {
  const ep = classifier.model.session.ep ?? 'cpu';
  if (ep === 'cpu') return undefined;
  const { bytes } = buildProgramGraph(classifier.model.prepared, program(), ep);
  return describePlacement(await nodePlacement(bytes, ep));
}
