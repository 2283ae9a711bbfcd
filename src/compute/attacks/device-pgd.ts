// PGD on the model's cross-entropy with the whole step inside one onnxruntime run (pgd-graph.ts): on a GPU provider
// the adversarial batch and x₀ stay in device memory from the first step to the last (IO binding), and only the
// per-image loss and logits — a few KB — come back each step, for the loss curve and early stopping. On the CPU the
// same program runs with host tensors. pgd.ts is the reference it is tested against.
import { crossEntropy } from '../autodiff/objectives.ts';
import type { DifferentiableModel } from '../model/differentiable-model.ts';
import { PIXELS } from '../onnx/normalize.ts';
import { releaseDevice as release, toHost } from '../runtime/host-copy.ts';
import { floatTensor, labelTensor, LABELS } from '../runtime/program.ts';
import { ort } from '../runtime/session.ts';
import { CLEAN, EPS, pgdStep, SIGNED_ALPHA } from './pgd-graph.ts';
import { everyImageSucceeded, randomStart, validatePgd, type PgdOptions, type PgdResult } from './pgd.ts';

export async function devicePgd(
  model: DifferentiableModel,
  x0: Float32Array,
  dims: readonly [number, number, number, number],
  labels: Int32Array,
  opts: PgdOptions,
): Promise<PgdResult> {
  const [n, c, h, w] = dims;
  validatePgd(x0, dims, labels, opts);
  const ep = model.session.ep ?? 'cpu';
  const program = await model.program({
    objective: crossEntropy(),
    extension: pgdStep({ norm: opts.norm }),
  });
  const out = program.outputs;
  const { floatType } = model.prepared;
  const start = Float32Array.from(x0);
  if (opts.randomStart && opts.eps > 0) randomStart(start, x0, n, c * h * w, opts);
  const fixed = {
    [LABELS]: labelTensor(labels),
    [EPS]: floatTensor(floatType, [opts.eps], []),
    [SIGNED_ALPHA]: floatTensor(floatType, [(opts.targeted ? -1 : 1) * opts.alpha], []),
  };
  let x = floatTensor(floatType, start, [n, c, h, w]);
  let clean = floatTensor(floatType, x0, [n, c, h, w]);
  const lossCurve: Float32Array[] = [];
  let steps = 0;
  try {
    for (let t = 0; t < opts.steps; t++) {
      const r = await program.runTensors({ [PIXELS]: x, [CLEAN]: clean, ...fixed });
      const loss = r[out.objective!].data as Float32Array | Float64Array;
      const logits = r[out.logits!].data as Float32Array | Float64Array;
      lossCurve.push(Float32Array.from(loss));
      const state = program.nextState(r);
      if (everyImageSucceeded(opts, logits, n)) {
        for (const t of Object.values(state)) release(t);
        break;
      }
      release(x);
      release(clean);
      x = state[PIXELS];
      clean = state[CLEAN];
      steps++;
      opts.onStep?.(steps, loss);
    }
    const adv = Float32Array.from(await toHost(x, ep));
    // The loss and logits at the returned image, from the evaluation program like every other evaluation.
    const final = await model.evaluate(adv, crossEntropy(), labels);
    lossCurve.push(Float32Array.from(final.objective));
    return { adv, steps, loss: Float32Array.from(final.objective), logits: Float32Array.from(final.logits), lossCurve };
  } finally {
    release(x);
    release(clean);
  }
}
