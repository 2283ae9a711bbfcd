// Which layer of a second model is a given layer of the first, when the second is the same network exported another
// way (the int8 original of MobileNetV2 names its layers Conv_75, its float copy features.14.conv.1). Names cannot
// say; the activations can: over a few probe photos, the counterpart of a layer has the same [C,H,W] and channel by
// channel moves with it across photos. The candidate whose spatial means correlate best with the layer's, channel
// for channel (mean Pearson r over channels that vary in both), is taken if r reaches `minCorrelation`; a model that
// has the layer's own name keeps it (a retrained model exported by the same code: its channels need not correlate).
// Layers that differ only by a per-channel affine map (a convolution's accumulator and its rescaled output) correlate
// equally, and its int8 requantized copies within rounding noise; the first in graph order is taken (the fragility
// test is the same for affine copies: z is in each channel's σ).
import type { Classifier } from '../model/classifier.ts';
import { recordActivations } from './record.ts';

export interface AlignedLayer {
  /** the first model's layer */
  layer: string;
  /** its counterpart in the second model, or null when no candidate reaches the threshold */
  to: string | null;
  /** mean per-channel correlation of the counterpart (null when matched by name, or none found) */
  correlation: number | null;
  how: 'name' | 'activations' | 'none';
}

export interface AlignmentOptions {
  /** the first model's layers to find */
  layers: readonly string[];
  /** probe photos, each preprocessed for the first and for the second model */
  probe: { first: readonly Float32Array[]; second: readonly Float32Array[] };
  minCorrelation?: number;
  batch?: number;
}

export const MIN_CORRELATION = 0.9;
/** Correlations this close count as equal (rounding noise between copies of one tensor). */
const TIE = 0.005;

export async function alignLayers(first: Classifier, second: Classifier, opts: AlignmentOptions): Promise<AlignedLayer[]> {
  const n = opts.probe.first.length;
  if (n < 3 || opts.probe.second.length !== n) throw new RangeError(`layer alignment needs the same ≥ 3 probe photos for both models, got ${n} and ${opts.probe.second.length}`);
  const min = opts.minCorrelation ?? MIN_CORRELATION;
  const batch = opts.batch ?? 2;
  const own = new Set(second.model.layers.map((l) => l.name));
  const shapeOf = (c: Classifier, name: string) => c.model.layers.find((l) => l.name === name)?.dims.slice(1).join('x');
  const open = opts.layers.filter((l) => !own.has(l));
  const candidates = new Map(open.map((l) => {
    const shape = shapeOf(first, l);
    if (shape === undefined) throw new Error(`no layer '${l}' in the first model`);
    return [l, second.model.layers.filter((c) => c.dims.length === 4 && c.dims.slice(1).join('x') === shape).map((c) => c.name)];
  }));
  const wanted = [...new Set([...candidates.values()].flat())];
  const a = open.length ? await recordActivations(first, n, async (i) => opts.probe.first[i], open, batch) : new Map();
  const b = wanted.length ? await recordActivations(second, n, async (i) => opts.probe.second[i], wanted, batch) : new Map();
  return opts.layers.map((layer): AlignedLayer => {
    if (own.has(layer)) return { layer, to: layer, correlation: null, how: 'name' };
    const x = a.get(layer)!;
    const scored = candidates.get(layer)!.map((to) => ({ to, r: meanChannelCorrelation(x.mean, b.get(to)!.mean, x.channels, n) }));
    const top = Math.max(...scored.map((c) => c.r));
    // Affine copies of one tensor (and its rounded, requantized copies) differ only by rounding noise: the first in
    // graph order within TIE of the best stands for them.
    const best = scored.find((c) => c.r >= top - TIE) ?? null;
    return best !== null && best.r >= min
      ? { layer, to: best.to, correlation: best.r, how: 'activations' }
      : { layer, to: null, correlation: best?.r ?? null, how: 'none' };
  });
}

/** Mean over channels of Pearson's r between x[:,c] and y[:,c] ([N,C] each); channels constant in either are skipped. */
export function meanChannelCorrelation(x: ArrayLike<number>, y: ArrayLike<number>, channels: number, n: number): number {
  let sum = 0;
  let used = 0;
  for (let c = 0; c < channels; c++) {
    let mx = 0, my = 0;
    for (let i = 0; i < n; i++) { mx += x[i * channels + c]; my += y[i * channels + c]; }
    mx /= n; my /= n;
    let sxy = 0, sxx = 0, syy = 0;
    for (let i = 0; i < n; i++) {
      const dx = x[i * channels + c] - mx, dy = y[i * channels + c] - my;
      sxy += dx * dy; sxx += dx * dx; syy += dy * dy;
    }
    if (sxx > 0 && syy > 0) { sum += sxy / Math.sqrt(sxx * syy); used++; }
  }
  return used ? sum / used : 0;
}
