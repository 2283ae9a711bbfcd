// Channel activations over an image set, all requested layers in one batched forward pass: per image and channel the
// spatial mean (the neuron's activation, as the study compares them), the spatial max and where it is (for top
// patches). Full maps are not kept: 1000 images × a few layers of means fit in memory, maps would not. Layers asked
// for their means only are averaged in the graph, in the same forward pass: their maps never leave onnxruntime.
import { loadAhead } from '../io/load-ahead.ts';
import type { Classifier } from '../model/classifier.ts';

export interface LayerActivations {
  layer: string;
  images: number;
  channels: number;
  /** [H,W] of the layer's maps */
  spatial: [number, number];
  /** [N,C] spatial mean */
  mean: Float32Array;
  /** [N,C] spatial max */
  max: Float32Array;
  /** [N,C] flat index y·W + x of the spatial max */
  argmax: Int32Array;
}

export interface LayerMeans {
  channels: number;
  /** [N,C] spatial mean */
  values: Float32Array;
}

export interface Recording {
  /** the `layers`: mean, max and where the max is */
  stats: Map<string, LayerActivations>;
  /** the `means` layers: spatial means only */
  means: Map<string, LayerMeans>;
}

export async function recordActivations(
  classifier: Classifier,
  count: number,
  pixelsOf: (i: number) => Promise<Float32Array /* [C,H,W] */>,
  layers: readonly string[],
  batch = 16,
  onProgress?: (done: number, total: number) => void,
): Promise<Map<string, LayerActivations>> {
  return (await recordLayers(classifier, count, pixelsOf, { layers }, batch, onProgress)).stats;
}

/** recordActivations for `layers`, and the spatial means alone of the `means` layers, in one pass over the images. */
export async function recordLayers(
  classifier: Classifier,
  count: number,
  pixelsOf: (i: number) => Promise<Float32Array /* [C,H,W] */>,
  which: { layers: readonly string[]; means?: readonly string[] },
  batch = 16,
  onProgress?: (done: number, total: number) => void,
): Promise<Recording> {
  const { layers, means = [] } = which;
  const per = classifier.inputDims.reduce((a, b) => a * b, 1);
  const out = new Map<string, LayerActivations>();
  const meansOut = new Map<string, LayerMeans>();
  if (layers.length === 0 && means.length === 0) return { stats: out, means: meansOut };
  for await (const { start, items: pixels } of loadAhead(count, batch, pixelsOf)) {
    const n = pixels.length;
    const x = new Float32Array(n * per);
    pixels.forEach((p, i) => x.set(p, i * per));
    // No logits: the program stops at the deepest layer asked for.
    const r = await classifier.model.activations(x, layers, means);
    for (const layer of means) {
      const { data, dims: [, c] } = r.means.get(layer)!;
      let rec = meansOut.get(layer);
      if (!rec) {
        rec = { channels: c, values: new Float32Array(count * c) };
        meansOut.set(layer, rec);
      }
      rec.values.set(data, start * c);
    }
    for (const layer of layers) {
      const act = r.activations.get(layer)!;
      const [, c, h = 1, w = 1] = act.dims;
      let rec = out.get(layer);
      if (!rec) {
        rec = { layer, images: count, channels: c, spatial: [h, w], mean: new Float32Array(count * c), max: new Float32Array(count * c), argmax: new Int32Array(count * c) };
        out.set(layer, rec);
      }
      const area = h * w;
      for (let i = 0; i < n; i++) {
        for (let ch = 0; ch < c; ch++) {
          const base = (i * c + ch) * area;
          let sum = 0;
          let best = -Infinity;
          let at = 0;
          for (let k = 0; k < area; k++) {
            const v = act.data[base + k];
            sum += v;
            if (v > best) { best = v; at = k; }
          }
          const row = (start + i) * c + ch;
          rec.mean[row] = sum / area;
          rec.max[row] = best;
          rec.argmax[row] = at;
        }
      }
    }
    onProgress?.(start + n, count);
  }
  return { stats: out, means: meansOut };
}
