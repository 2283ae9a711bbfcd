// Feature visualization's loop (Lucent's render_vis) on the host: parameterized image → random transforms → model →
// objective, then the gradient back through the network (ONNX graph), the transforms and the parameterization
// (their exact adjoints, in float64), and an Adam step. Every default is Lucent's and every random draw is seeded.
// This is the reference: device-render.ts runs the same step as one graph (what the pipeline and CLI use), and its
// tests compare the two. The parts both loops share — targets, parameters, transform draws — live here.
import type { DifferentiableModel } from '../model/differentiable-model.ts';
import { direction, diversity, map, scale, sum, type Objective } from '../autodiff/objectives.ts';
import { findLayer } from '../onnx/layers.ts';
import { createRng, type Rng } from '../random.ts';
import { Adam } from './adam.ts';
import { toValidRgb } from './param/color.ts';
import { fftImage } from './param/fft-image.ts';
import type { ImageParam } from './param/param.ts';
import { pixelImage } from './param/pixel-image.ts';
import { applySamplings, composeSamplings, resize, stageGroups, standardTransforms, type Sampling, type Transform } from './transform.ts';

/** A neuron to visualise: a channel (spatial mean), or a channel at a position. */
export interface NeuronTarget {
  layer: string;
  channel: number;
  y?: number;
  x?: number;
}

export interface RenderOptions {
  /** side of the rendered image (Lucent: 128); upsampled to the model's input when smaller */
  size?: number;
  steps?: number;
  lr?: number;
  seed?: number;
  param?: 'fft' | 'pixel';
  decorrelate?: boolean;
  transforms?: Transform[];
  /**
   * Weight of Lucent's diversity term among images of the same target (Lucent's `obj - 1e2 * diversity(layer)` is
   * 100 here): repeat a target in the list to get several different images of it.
   */
  diversity?: number;
  onStep?: (step: number, objective: Float64Array) => void;
}

export interface RenderResult {
  /** [B,3,size,size] in [0,1], one image per target */
  images: Float32Array;
  size: number;
  /** objective per image after each step: [steps][B] */
  curve: number[][];
}

/** Render one image per target, all in one batch (one forward/backward per step for the whole batch). */
export async function renderNeurons(model: DifferentiableModel, targets: readonly NeuronTarget[], opts: RenderOptions = {}): Promise<RenderResult> {
  const { size, steps, batch, inH, inW, param, objective, inputs, transforms, draws, lr } = renderSetup(model, targets, opts);
  const adam = new Adam(param.params.length, lr);
  const curve: number[][] = [];
  for (let step = 1; step <= steps; step++) {
    const image = param.image(param.params);
    const samplings = drawSamplings(transforms, size, [inH, inW], draws);
    const { out, backward } = applySamplings(image, batch * 3, samplings);
    const r = await model.objectiveGradient(out, objective, inputs);
    curve.push(Array.from(r.objective));
    // Maximise the objective: descend on its negative.
    const gPixels = Float32Array.from(r.grad, (g) => -g);
    adam.step(param.params, param.backward(backward(gPixels)));
    opts.onStep?.(step, Float64Array.from(r.objective));
  }
  return { images: param.image(param.params), size, curve };
}

/** What both loops start from: options resolved to Lucent's defaults, checked, and every seeded draw made the same way. */
export function renderSetup(model: DifferentiableModel, targets: readonly NeuronTarget[], opts: RenderOptions) {
  const size = opts.size ?? 128;
  const rng = createRng(opts.seed ?? 0);
  const batch = targets.length;
  if (batch === 0) throw new Error('featurevis: no neurons to render');
  const [channels, inH, inW] = model.inputDims;
  if (channels !== 3) throw new Error('featurevis renders RGB images: the model must take 3 channels');
  return {
    size,
    steps: opts.steps ?? 512,
    lr: opts.lr ?? 0.05,
    batch,
    inH,
    inW,
    param: imageParam(opts, batch, size, rng),
    ...targetObjective(model, targets, opts.diversity ?? 0),
    transforms: opts.transforms ?? standardTransforms(),
    draws: rng.fork('transforms'),
  };
}

/** The parameterization with its seeded initial values (the same draws for the host and the device loop). */
export function imageParam(opts: Pick<RenderOptions, 'param' | 'decorrelate'>, batch: number, size: number, rng: Rng): ImageParam {
  return toValidRgb(
    (opts.param ?? 'fft') === 'fft'
      ? fftImage({ batch, channels: 3, h: size, w: size, rng: rng.fork('param') })
      : pixelImage({ batch, channels: 3, h: size, w: size, rng: rng.fork('param') }),
    opts.decorrelate ?? true,
  );
}

/**
 * This step's random transforms, then (Lucent) a bilinear resize to the model's input — always present, so the
 * device loop's graph has a fixed number of stages (a resize to the same size is the identity). Shifts are folded
 * into their neighbours (transform.ts, stageGroups): the draws are those of the unfolded chain, in its order.
 */
export function drawSamplings(transforms: readonly Transform[], size: number, [inH, inW]: readonly [number, number], draws: Rng): Sampling[] {
  const samplings: Sampling[] = [];
  let [h, w] = [size, size];
  for (const t of transforms) {
    const s = t(h, w, draws);
    samplings.push(s);
    [h, w] = [s.outH, s.outW];
  }
  samplings.push(resize(h, w, inH, inW));
  return stageGroups(stageShifts(transforms)).map((group) => group.map((k) => samplings[k]).reduce(composeSamplings));
}

/** Whether each stage drawSamplings draws (the transforms, then the resize) is a shift. */
function stageShifts(transforms: readonly Transform[]): boolean[] {
  return [...transforms.map((t) => t.shift === true), false];
}

/** How many samplings drawSamplings returns per step for these transforms: the render graph's stages. */
export function samplingStages(transforms: readonly Transform[]): number {
  return stageGroups(stageShifts(transforms)).length;
}

/** One objective for the whole batch: image i maximises its own target, fed as run-time weights per layer. */
export function targetObjective(model: DifferentiableModel, targets: readonly NeuronTarget[], diversityWeight: number): { objective: Objective; inputs: Record<string, Float32Array> } {
  const batch = targets.length;
  const layers = [...new Set(targets.map((t) => t.layer))];
  const parts: Objective[] = [];
  const inputs: Record<string, Float32Array> = {};
  layers.forEach((layerName, li) => {
    const layer = findLayer(model.layers, layerName);
    const [, c, h = 1, w = 1] = layer.dims;
    const spatial = targets.some((t) => t.layer === layerName && t.y !== undefined);
    const name = `featurevis/weights/${li}`;
    const per = spatial ? c * h * w : c;
    const weights = new Float32Array(batch * per);
    targets.forEach((t, i) => {
      if (t.layer !== layerName) return;
      if (!(Number.isInteger(t.channel) && t.channel >= 0 && t.channel < c)) throw new Error(`channel ${t.channel} of layer '${layerName}' is out of range: must be in [0, ${c - 1}]`);
      if (spatial) {
        if (t.y === undefined || t.x === undefined) {
          for (let k = 0; k < h * w; k++) weights[i * per + t.channel * h * w + k] = 1 / (h * w);
        } else {
          if (!(t.y >= 0 && t.y < h && t.x >= 0 && t.x < w)) throw new Error(`position (${t.y}, ${t.x}) is outside layer '${layerName}' (${h}×${w})`);
          weights[i * per + (t.channel * h + t.y) * w + t.x] = 1;
        }
      } else weights[i * per + t.channel] = 1;
    });
    inputs[name] = weights;
    parts.push(spatial ? map(layerName, name) : direction(layerName, name));
    if (diversityWeight !== 0 && h * w > 1) {
      // Each image repels the other images of its own target (Lucent: weight 1/B off the diagonal for a batch of B).
      const key = (t: NeuronTarget) => `${t.layer}:${t.channel}:${t.y}:${t.x}`;
      const pairs = new Float32Array(batch * batch);
      targets.forEach((ti, i) => {
        if (ti.layer !== layerName) return;
        const group = targets.filter((t) => key(t) === key(ti)).length;
        targets.forEach((tj, j) => { if (i !== j && key(tj) === key(ti)) pairs[i * batch + j] = 1 / group; });
      });
      if (pairs.some((v) => v !== 0)) {
        inputs[`featurevis/pairs/${li}`] = pairs;
        parts.push(scale(diversity(layerName, `featurevis/pairs/${li}`, batch), diversityWeight));
      }
    }
  });
  return { objective: sum(...parts), inputs };
}
