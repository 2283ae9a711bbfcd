// The render loop of render.ts with the whole step inside one onnxruntime run (render-graph.ts): on a GPU provider
// the parameters and Adam's moments stay in device memory from the first step to the last (IO binding); each step
// sends only its transforms' taps and two scalars, and only the objective per image — B numbers — comes back. On the
// CPU the same program runs with host tensors. render.ts is the reference it is tested against; the pipeline and
// `atlas featurevis` use this one.
import type { DifferentiableModel } from '../model/differentiable-model.ts';
import { releaseDevice as release, toHost } from '../runtime/host-copy.ts';
import { floatTensor, type ProgramSpec } from '../runtime/program.ts';
import { ort } from '../runtime/session.ts';
import { ADAM_C2, ADAM_LR_C1 } from './adam.ts';
import { drawSamplings, renderSetup, samplingStages, type NeuronTarget, type RenderOptions, type RenderResult } from './render.ts';
import { ADAM_M, ADAM_V, PARAMS, paramDims, renderStep, type RenderGraphSpec } from './render-graph.ts';
import { samplingFeeds, stageInputs, type Sampling } from './transform.ts';

export async function deviceRenderNeurons(model: DifferentiableModel, targets: readonly NeuronTarget[], opts: RenderOptions = {}): Promise<RenderResult> {
  const setup = renderSetup(model, targets, opts);
  const { size, steps, lr, batch, inH, inW, param, inputs, transforms, draws } = setup;
  const spec = renderGraphSpec(setup, opts);
  const program = await model.program({ objective: setup.objective, logits: false, extension: renderStep(spec) });
  const out = program.outputs;
  const { floatType } = model.prepared;
  const ep = model.session.ep ?? 'cpu';
  const stateDims = [batch, ...paramDims(spec)];
  const fixed = program.inputFeeds(batch, inputs);
  let params = floatTensor(floatType, param.params, stateDims);
  let m = floatTensor(floatType, new Float32Array(param.params.length), stateDims);
  let v = floatTensor(floatType, new Float32Array(param.params.length), stateDims);
  const curve: number[][] = [];
  try {
    for (let step = 1; step <= steps; step++) {
      // This step's transforms are drawn here, on the main thread, and sent as taps. (Drawing the next step's while
      // this one runs would not help: onnxruntime-node 1.30 runs sessions synchronously on the main thread.)
      const samplings = drawSamplings(transforms, size, [inH, inW], draws);
      const r = await program.runTensors({ ...fixed, ...stepFeeds(floatType, { params, m, v }, lr, step, samplings) });
      const value = Array.from(r[out.objective!].data as Float32Array | Float64Array);
      curve.push(value);
      for (const t of [params, m, v]) release(t);
      const state = program.nextState(r);
      params = state[PARAMS];
      m = state[ADAM_M];
      v = state[ADAM_V];
      opts.onStep?.(step, Float64Array.from(value));
    }
    const final = Float32Array.from(await toHost(params, ep));
    return { images: param.image(final), size, curve };
  } finally {
    for (const t of [params, m, v]) release(t);
  }
}

/** The program the loop compiles: also what `atlas featurevis` describes when it says where the nodes run. */
export function renderProgram(setup: Pick<ReturnType<typeof renderSetup>, 'size' | 'batch' | 'objective' | 'transforms'>, opts: RenderOptions): ProgramSpec {
  return { objective: setup.objective, logits: false, extension: renderStep(renderGraphSpec(setup, opts)) };
}

function renderGraphSpec(setup: Pick<ReturnType<typeof renderSetup>, 'size' | 'batch' | 'transforms'>, opts: RenderOptions): RenderGraphSpec {
  return { param: opts.param ?? 'fft', size: setup.size, decorrelate: opts.decorrelate ?? true, stages: samplingStages(setup.transforms), batch: setup.batch };
}

/**
 * The feeds of step `step` (from 1) besides the objective's inputs: the parameters and Adam's moments (host or device
 * tensors), Adam's bias corrections for this step, and the step's transforms as taps.
 */
export function stepFeeds(floatType: number, state: { params: ort.Tensor; m: ort.Tensor; v: ort.Tensor }, lr: number, step: number, samplings: readonly Sampling[]): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {
    [PARAMS]: state.params,
    [ADAM_M]: state.m,
    [ADAM_V]: state.v,
    [ADAM_LR_C1]: floatTensor(floatType, [lr / (1 - 0.9 ** step)], []),
    [ADAM_C2]: floatTensor(floatType, [1 - 0.999 ** step], []),
  };
  samplings.forEach((s, k) => {
    const f = samplingFeeds(s);
    const names = stageInputs(k);
    feeds[names.taps] = new ort.Tensor('int32', f.taps, [f.outArea, 4]);
    feeds[names.weights] = floatTensor(floatType, f.weights, [f.outArea, 4, 1, 1]);
    feeds[names.constant] = floatTensor(floatType, f.constant, [f.outArea, 1, 1]);
    feeds[names.backTaps] = new ort.Tensor('int32', f.backTaps, [f.inArea, f.fanIn]);
    feeds[names.backMask] = floatTensor(floatType, f.backMask, [f.inArea, f.fanIn, 1, 1]);
  });
  return feeds;
}
