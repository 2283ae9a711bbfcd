// A whole feature-visualization step as one ONNX graph, so the render loop can keep its state on the device (IO
// binding) as the PGD loop does: parameters → image (Fourier basis, colour, sigmoid) → this step's random
// transforms → the model → objective, the gradient back to the parameters, and the Adam step. Each step feeds only
// its transforms' taps (drawn on the host from the same seeded generator as render.ts) and two Adam scalars; the
// parameters and Adam's moments never leave the device, and only the objective per image comes back.
import type { VjpRule } from '../autodiff/vjp/rule.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import type { Graph } from '../onnx/graph.ts';
import type { GraphExtension } from '../runtime/graph-extension.ts';
import { PIXELS } from '../onnx/normalize.ts';
import { DType, type ValueInfoProto } from '../onnx/proto.ts';
import { ShapedBuilder } from '../onnx/shaped-builder.ts';
import { ADAM_C2, ADAM_LR_C1, appendAdam } from './adam.ts';
import { toValidRgbGraph } from './param/color.ts';
import { fftImageGraph, fftParamDims } from './param/fft-image.ts';
import { samplingGraph, stageInputs } from './transform.ts';

/** What shapes the step's graph; the transforms themselves are feeds, so one program serves every step. */
export interface RenderGraphSpec {
  param: 'fft' | 'pixel';
  /** side of the parameterized image */
  size: number;
  decorrelate: boolean;
  /** sampling stages per step: the transforms and the final resize to the model's input */
  stages: number;
  batch: number;
}

export const PARAMS = 'featurevis/params';
export const ADAM_M = 'featurevis/adam/m';
export const ADAM_V = 'featurevis/adam/v';
export const NEXT_PARAMS = 'featurevis/next/params';
export const NEXT_M = 'featurevis/next/m';
export const NEXT_V = 'featurevis/next/v';

/**
 * The render step as the runtime's graph extension: the pixels come from PARAMS through the parameterization and
 * the fed transforms, the gradient is taken with respect to PARAMS, and Adam's step gives the next parameters and
 * moments, fed back as PARAMS, ADAM_M and ADAM_V.
 */
export function renderStep(spec: RenderGraphSpec): GraphExtension {
  return {
    key: `render:${JSON.stringify(spec)}`,
    state: { [NEXT_PARAMS]: PARAMS, [NEXT_M]: ADAM_M, [NEXT_V]: ADAM_V },
    prepare: ({ graph, floatType, inputDims }) => ({ wrt: PARAMS, ...prependImage(graph, floatType, spec, inputDims) }),
    extend: ({ graph, floatType }, grad) => appendAdamStep(graph, floatType, spec, grad),
  };
}

/** Shape of one image's parameters. */
export function paramDims(spec: RenderGraphSpec): number[] {
  return spec.param === 'fft' ? fftParamDims(3, spec.size, spec.size) : [3, spec.size, spec.size];
}

const tensorType = (elemType: number, dims: readonly (number | string)[]): ValueInfoProto['type'] => ({
  tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } },
});

/**
 * Replaces the model's `pixels` input by the image the parameters make. Returns the shapes of the new tensors and
 * the adjoints the autodiff has no rule for (the transforms' gathers), for backprop with respect to PARAMS.
 */
export function prependImage(graph: Graph, floatType: number, spec: RenderGraphSpec, inputDims: readonly [number, number, number]): { dims: Map<string, number[]>; adjoints: Map<string, VjpRule> } {
  const [channels, inH, inW] = inputDims;
  if (channels !== 3) throw new Error('featurevis renders RGB images: the model must take 3 channels');
  const { size, batch } = spec;
  const per = paramDims(spec);
  graph.inputs = graph.inputs.filter((i) => i.name !== PIXELS);
  graph.reserve(PARAMS);
  graph.inputs.push({ name: PARAMS, type: tensorType(floatType, [batch, ...per]) });
  for (let k = 0; k < spec.stages; k++) {
    const names = stageInputs(k);
    for (const name of Object.values(names)) graph.reserve(name);
    graph.inputs.push(
      { name: names.taps, type: tensorType(DType.INT32, [`out${k}`, 4]) },
      { name: names.weights, type: tensorType(floatType, [`out${k}`, 4, 1, 1]) },
      { name: names.constant, type: tensorType(floatType, [`out${k}`, 1, 1]) },
      { name: names.backTaps, type: tensorType(DType.INT32, [`in${k}`, `fan${k}`]) },
      { name: names.backMask, type: tensorType(floatType, [`in${k}`, `fan${k}`, 1, 1]) },
    );
  }
  const first = graph.nodes.length;
  const g = new ShapedBuilder(new GraphBuilder(graph, floatType, 'featurevis'), batch);
  g.declare(PARAMS, [batch, ...per]);
  const raw = spec.param === 'fft' ? fftImageGraph(g, PARAMS, { channels: 3, h: size, w: size }) : PARAMS;
  const planes = [-1, 3, size * size];
  const adjoints = new Map<string, VjpRule>();
  const rgb = toValidRgbGraph(g, g.op('Reshape', [raw, g.b.int64Const('shape', planes)], planes), planes, spec.decorrelate);
  // The sampling stages work pixel-major, [area,B,C] (transform.ts, samplingGraph); the model reads [B,C,H,W].
  let x = g.opExact('Transpose', [rgb], [size * size, batch, 3], { perm: [2, 0, 1] });
  for (let k = 0; k < spec.stages; k++) x = samplingGraph(g, x, k, 3, adjoints);
  const planar = g.op('Transpose', [x], [-1, 3, inH * inW], { perm: [1, 2, 0] });
  // The last stage writes the model's input, under the name the model's first node reads.
  graph.nodes.push({ name: graph.fresh('featurevis/pixels'), opType: 'Reshape', input: [planar, g.b.int64Const('shape', [-1, 3, inH, inW])], output: [PIXELS] });
  graph.nodes = [...graph.nodes.slice(first), ...graph.nodes.slice(0, first)];
  return { dims: g.dims, adjoints };
}

/** Appends Adam on −gradient (the objective is maximised); declares its inputs and the three outputs. */
export function appendAdamStep(graph: Graph, floatType: number, spec: RenderGraphSpec, grad: string): void {
  const state = tensorType(floatType, [spec.batch, ...paramDims(spec)]);
  for (const name of [ADAM_M, ADAM_V]) {
    graph.reserve(name);
    graph.inputs.push({ name, type: state });
  }
  for (const name of [ADAM_LR_C1, ADAM_C2]) {
    graph.reserve(name);
    graph.inputs.push({ name, type: tensorType(floatType, []) });
  }
  const b = new GraphBuilder(graph, floatType, 'featurevis/adam');
  const next = appendAdam(b, { params: PARAMS, grad: b.op('Neg', [grad]), m: ADAM_M, v: ADAM_V });
  for (const [from, to] of [[next.params, NEXT_PARAMS], [next.m, NEXT_M], [next.v, NEXT_V]] as const) {
    graph.reserve(to);
    graph.nodes.push({ name: graph.fresh(to), opType: 'Identity', input: [from], output: [to] });
    graph.addOutput(to);
  }
}
