// Lucent's transforms (`optvis/transform.py`): each factory returns a function that draws its random choice (seeded)
// and returns how output pixels sample input pixels. Every transform here is a fixed linear map per step — padding,
// integer translation, bilinear scaling and rotation — so it is stored as up to four taps per output pixel, and its
// exact adjoint scatters the gradient back through the same taps.
import type { VjpRule } from '../autodiff/vjp/rule.ts';
import type { ShapedBuilder } from '../onnx/shaped-builder.ts';
import type { Rng } from '../random.ts';

/** One step's spatial map from an [h,w] plane to an [outH,outW] plane (the same for every channel and image). */
export interface Sampling {
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  /** [outH·outW·4] input index per tap, −1 for none */
  index: Int32Array;
  /** [outH·outW·4] tap weights */
  weight: Float32Array;
  /** [outH·outW] value added regardless of the input (padding colour) */
  constant: Float32Array;
}

/**
 * `shift`: every output pixel reads at most one input pixel with weight 1 (padding, integer translation), whatever is
 * drawn; such a stage folds into its neighbour without adding taps (composeSamplings).
 */
export type Transform = ((h: number, w: number, rng: Rng) => Sampling) & { shift?: true };

const shiftTransform = (t: (h: number, w: number, rng: Rng) => Sampling): Transform => Object.assign(t, { shift: true as const });

function sampling(inH: number, inW: number, outH: number, outW: number, fill: (y: number, x: number, set: (k: number, index: number, weight: number) => void) => number): Sampling {
  const n = outH * outW;
  const s: Sampling = { inH, inW, outH, outW, index: new Int32Array(n * 4).fill(-1), weight: new Float32Array(n * 4), constant: new Float32Array(n) };
  let o = 0;
  // One setter for every pixel (not a closure per pixel: this runs for ~10⁵ pixels per step).
  const set = (k: number, index: number, weight: number) => { s.index[o * 4 + k] = index; s.weight[o * 4 + k] = weight; };
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      o = y * outW + x;
      s.constant[o] = fill(y, x, set);
    }
  }
  return s;
}

/** Bilinear taps at input coordinate (sy, sx), zero outside the image (as kornia's warps and torch's Upsample). */
function bilinear(inH: number, inW: number, sy: number, sx: number, set: (k: number, index: number, weight: number) => void): void {
  const y0 = Math.floor(sy);
  const x0 = Math.floor(sx);
  const ty = sy - y0;
  const tx = sx - x0;
  const tap = (k: number, yy: number, xx: number, wt: number) => {
    if (wt !== 0 && yy >= 0 && yy < inH && xx >= 0 && xx < inW) set(k, yy * inW + xx, wt);
  };
  tap(0, y0, x0, (1 - ty) * (1 - tx));
  tap(1, y0, x0 + 1, (1 - ty) * tx);
  tap(2, y0 + 1, x0, ty * (1 - tx));
  tap(3, y0 + 1, x0 + 1, ty * tx);
}

/**
 * A padding, a resize, or a scale by a drawn factor is the same sampling whenever the sizes and the factor are (Lucent
 * draws 11 scales): made once, where the render loop would otherwise build ~10⁵ pixels' taps per stage and step on the
 * main thread between onnxruntime runs. Samplings are never written after they are made, so one object serves every
 * step. Kept least recently used first, within FIXED_BYTES of tap arrays (their transposes, samplingFeeds, about as
 * much again); Lucent's chain at 128 px into a 224 px model keeps about 40 MB. Rotations are not kept: 21 angles ×
 * 11 scaled sizes would hold 190 MB for a hit every other step.
 */
const fixedSamplings = new Map<string, Sampling>();
const FIXED_BYTES = 64 * 2 ** 20;
let fixedBytes = 0;

const bytesOf = (s: Sampling) => s.index.byteLength + s.weight.byteLength + s.constant.byteLength;

function fixedSampling(key: string, make: () => Sampling): Sampling {
  const kept = fixedSamplings.get(key);
  if (kept) {
    fixedSamplings.delete(key);
    fixedSamplings.set(key, kept);
    return kept;
  }
  const s = make();
  fixedSamplings.set(key, s);
  fixedBytes += bytesOf(s);
  for (const [k, old] of fixedSamplings) {
    if (fixedBytes <= FIXED_BYTES || k === key) break;
    fixedSamplings.delete(k);
    fixedBytes -= bytesOf(old);
  }
  return s;
}

/** F.pad(image, [w]*4, value) */
export const pad = (width: number, value = 0.5): Transform => shiftTransform((h, w) => fixedSampling(`pad ${h} ${w} ${width} ${value}`, () =>
  sampling(h, w, h + 2 * width, w + 2 * width, (y, x, set) => {
    const sy = y - width;
    const sx = x - width;
    if (sy >= 0 && sy < h && sx >= 0 && sx < w) { set(0, sy * w + sx, 1); return 0; }
    return value;
  })));

/** kornia translate by (dx, dy) ∈ {0..d−1}², zero fill */
export const jitter = (d: number): Transform => {
  if (!(d > 1)) throw new Error(`jitter needs d > 1, got ${d}`);
  return shiftTransform((h, w, rng) => {
    const dx = rng.uniformInt(0, d - 1);
    const dy = rng.uniformInt(0, d - 1);
    return sampling(h, w, h, w, (y, x, set) => {
      const sy = y - dy;
      const sx = x - dx;
      if (sy >= 0 && sy < h && sx >= 0 && sx < w) set(0, sy * w + sx, 1);
      return 0;
    });
  });
};

/** Bilinear resize with align_corners=True (torch.nn.Upsample) to outH×outW. */
export function resize(h: number, w: number, outH: number, outW: number): Sampling {
  return fixedSampling(`resize ${h} ${w} ${outH} ${outW}`, () => resized(h, w, outH, outW));
}

function resized(h: number, w: number, outH: number, outW: number): Sampling {
  const fy = outH > 1 ? (h - 1) / (outH - 1) : 0;
  const fx = outW > 1 ? (w - 1) / (outW - 1) : 0;
  return sampling(h, w, outH, outW, (y, x, set) => { bilinear(h, w, y * fy, x * fx, set); return 0; });
}

/** Lucent's random_scale: resize by a random factor (sizes rounded up), zero-padding back when it shrank. */
export const randomScale = (scales: readonly number[]): Transform => (h, w, rng) => {
  const s = scales[rng.uniformInt(0, scales.length - 1)];
  return fixedSampling(`scale ${h} ${w} ${s}`, () => scaled(h, w, s));
};

function scaled(h: number, w: number, s: number): Sampling {
  const sh = Math.ceil(s * h);
  const sw = Math.ceil(s * w);
  const padX = Math.max(0, Math.ceil((w - sw) / 2));
  const padY = Math.max(0, Math.ceil((h - sh) / 2));
  const inner = resized(h, w, sh, sw);
  // F.pad(x, [pad_y, pad_x] * 2): left pad_y, right pad_x, top pad_y, bottom pad_x (Lucent's order, kept).
  const outH = sh + padY + padX;
  const outW = sw + padY + padX;
  return sampling(h, w, outH, outW, (y, x, set) => {
    const iy = y - padY;
    const ix = x - padY;
    if (iy < 0 || iy >= sh || ix < 0 || ix >= sw) return 0;
    const o = iy * sw + ix;
    for (let k = 0; k < 4; k++) if (inner.index[o * 4 + k] >= 0) set(k, inner.index[o * 4 + k], inner.weight[o * 4 + k]);
    return 0;
  });
}

/** Lucent's random_rotate: a rotation by a random angle (degrees) about the image centre, bilinear, zero fill. */
export const randomRotate = (angles: readonly number[]): Transform => (h, w, rng) => {
  const theta = (angles[rng.uniformInt(0, angles.length - 1)] * Math.PI) / 180;
  const cy = (h - 1) / 2;
  const cx = (w - 1) / 2;
  const cos = Math.cos(theta);
  const sin = Math.sin(theta);
  return sampling(h, w, h, w, (y, x, set) => {
    // Sample the source at the inverse rotation of the destination pixel.
    const dx = x - cx;
    const dy = y - cy;
    bilinear(h, w, cy - sin * dx + cos * dy, cx + cos * dx + sin * dy, set);
    return 0;
  });
};

/** Lucent's standard_transforms, in order. */
export const standardTransforms = (): Transform[] => [
  pad(12, 0.5),
  jitter(8),
  randomScale(Array.from({ length: 11 }, (_, i) => 1 + (i - 5) / 50)),
  randomRotate([...Array.from({ length: 21 }, (_, i) => i - 10), 0, 0, 0, 0, 0]),
  jitter(4),
];

/**
 * Which consecutive stages run as one: each group holds at most one stage that is not a shift, so folding it
 * (composeSamplings) keeps four taps per pixel. Lucent's five transforms and the final resize make three groups
 * (pad, jitter, scale | rotate, jitter | resize) instead of six gathers, forward and backward, per step. `shifts[k]`:
 * whether stage k is a shift.
 */
export function stageGroups(shifts: readonly boolean[]): number[][] {
  const groups: number[][] = [];
  let current: number[] = [];
  let hasFull = false;
  shifts.forEach((shift, k) => {
    if (!shift && hasFull) {
      groups.push(current);
      current = [];
      hasFull = false;
    }
    current.push(k);
    if (!shift) hasFull = true;
  });
  if (current.length) groups.push(current);
  return groups;
}

/**
 * `b` after `a` as one sampling, when one of them reads at most one pixel per output pixel: its taps are the other's,
 * scaled, and what it adds regardless of the input (padding colour) moves into the constant. Equal to applying them
 * in turn up to float rounding (the constant is summed before, not after, the taps).
 */
export function composeSamplings(a: Sampling, b: Sampling): Sampling {
  if (b.inH !== a.outH || b.inW !== a.outW) throw new Error(`internal: composing a ${a.outH}×${a.outW} sampling into a ${b.inH}×${b.inW} one`);
  const n = b.outH * b.outW;
  const out: Sampling = { inH: a.inH, inW: a.inW, outH: b.outH, outW: b.outW, index: new Int32Array(n * 4).fill(-1), weight: new Float32Array(n * 4), constant: new Float32Array(n) };
  const aTap = singleTaps(a);
  if (aTap) {
    for (let o = 0; o < n; o++) {
      let c = b.constant[o];
      for (let k = o * 4; k < o * 4 + 4; k++) {
        const m = b.index[k];
        if (m < 0) continue;
        const wb = b.weight[k];
        c += wb * a.constant[m];
        const j = aTap[m];
        if (j >= 0) { out.index[k] = a.index[j]; out.weight[k] = wb * a.weight[j]; }
      }
      out.constant[o] = c;
    }
    return out;
  }
  const bTap = singleTaps(b);
  if (!bTap) throw new Error('internal: composing two samplings that both read several pixels per output pixel');
  for (let o = 0; o < n; o++) {
    let c = b.constant[o];
    const k = bTap[o];
    if (k >= 0) {
      const m = b.index[k];
      const wb = b.weight[k];
      c += wb * a.constant[m];
      for (let j = 0; j < 4; j++) {
        if (a.index[m * 4 + j] < 0) continue;
        out.index[o * 4 + j] = a.index[m * 4 + j];
        out.weight[o * 4 + j] = wb * a.weight[m * 4 + j];
      }
    }
    out.constant[o] = c;
  }
  return out;
}

/** Per output pixel, the position of its one tap (−1: none), or undefined when some pixel reads several. */
function singleTaps(s: Sampling): Int32Array | undefined {
  const n = s.outH * s.outW;
  const at = new Int32Array(n).fill(-1);
  for (let pos = 0; pos < n * 4; pos++) {
    if (s.index[pos] < 0) continue;
    const o = pos >> 2;
    if (at[o] >= 0) return undefined;
    at[o] = pos;
  }
  return at;
}

/** Apply one step's samplings to a batch [B,C,H,W]; returns the output and the adjoint. */
export function applySamplings(x: Float32Array, planes: number, steps: readonly Sampling[]): { out: Float32Array; backward: (g: Float32Array) => Float32Array } {
  let cur = x;
  for (const s of steps) cur = forward(cur, planes, s);
  return {
    out: cur,
    backward(g) {
      let gc = g;
      for (let k = steps.length - 1; k >= 0; k--) gc = adjoint(gc, planes, steps[k]);
      return gc;
    },
  };
}

function forward(x: Float32Array, planes: number, s: Sampling): Float32Array {
  const inArea = s.inH * s.inW;
  const outArea = s.outH * s.outW;
  const out = new Float32Array(planes * outArea);
  for (let p = 0; p < planes; p++) {
    for (let o = 0; o < outArea; o++) {
      let v = s.constant[o];
      for (let k = 0; k < 4; k++) {
        const i = s.index[o * 4 + k];
        if (i >= 0) v += s.weight[o * 4 + k] * x[p * inArea + i];
      }
      out[p * outArea + o] = v;
    }
  }
  return out;
}

function adjoint(g: Float32Array, planes: number, s: Sampling): Float32Array {
  const inArea = s.inH * s.inW;
  const outArea = s.outH * s.outW;
  const back = new Float32Array(planes * inArea);
  for (let p = 0; p < planes; p++) {
    for (let o = 0; o < outArea; o++) {
      const v = g[p * outArea + o];
      if (v === 0) continue;
      for (let k = 0; k < 4; k++) {
        const i = s.index[o * 4 + k];
        if (i >= 0) back[p * inArea + i] += s.weight[o * 4 + k] * v;
      }
    }
  }
  return back;
}

/**
 * A sampling as the feeds of one graph stage (samplingGraph): the forward taps, and their transpose for the adjoint —
 * every input pixel's list of (output pixel, tap) positions, padded to the largest fan-in K with masked entries.
 * The transpose is built here on the host because scattering with addition (ScatterElements reduction='add') needs
 * opset 16, and models run at opset 13 (onnx/opset.ts); a gather through the transpose is the same sum.
 */
export interface SamplingFeeds {
  /** [outArea,4] input pixel per tap (0 where there is none: its weight is 0) */
  taps: Int32Array;
  /** [outArea,4] */
  weights: Float32Array;
  /** [outArea] */
  constant: Float32Array;
  /** [inArea,K] position o·4+k of each tap that reads this input pixel */
  backTaps: Int32Array;
  /** [inArea,K] 1 for a real entry, 0 for padding */
  backMask: Float32Array;
  outArea: number;
  inArea: number;
  fanIn: number;
}

export function samplingFeeds(s: Sampling): SamplingFeeds {
  let f = feedsOf.get(s);
  if (!f) {
    f = transposeTaps(s);
    feedsOf.set(s, f);
  }
  return f;
}

/** A fixed sampling's feeds, made once: the transposed taps are the costly part. */
const feedsOf = new WeakMap<Sampling, SamplingFeeds>();

function transposeTaps(s: Sampling): SamplingFeeds {
  const outArea = s.outH * s.outW;
  const inArea = s.inH * s.inW;
  const { index } = s;
  const count = new Int32Array(inArea);
  let fanIn = 1;
  for (let pos = 0; pos < index.length; pos++) {
    const i = index[pos];
    if (i >= 0 && ++count[i] > fanIn) fanIn = count[i];
  }
  const backTaps = new Int32Array(inArea * fanIn);
  const backMask = new Float32Array(inArea * fanIn);
  const taps = new Int32Array(index.length);
  count.fill(0);
  for (let pos = 0; pos < index.length; pos++) {
    const i = index[pos];
    if (i < 0) continue;
    taps[pos] = i;
    const slot = i * fanIn + count[i]++;
    backTaps[slot] = pos;
    backMask[slot] = 1;
  }
  return { taps, weights: s.weight, constant: s.constant, backTaps, backMask, outArea, inArea, fanIn };
}

/** Graph input names of stage k's feeds. */
export const stageInputs = (k: number) => ({
  taps: `featurevis/stage${k}/taps`,
  weights: `featurevis/stage${k}/weights`,
  constant: `featurevis/stage${k}/constant`,
  backTaps: `featurevis/stage${k}/back_taps`,
  backMask: `featurevis/stage${k}/back_mask`,
});

/**
 * One sampling stage as ONNX nodes, x: [inArea,B,C] → [outArea,B,C]; the Gather's adjoint (which the autodiff has
 * no general rule for) is registered in `adjoints` as a gather through the transposed taps. Pixels lead so that a tap
 * gathers one contiguous block of B·C values: onnxruntime's CPU Gather copies one block per index, and gathering
 * single numbers out of [B,C,area] was 5× slower (BENCHMARKS.md). The feeds keep their sizes; weights, constant and
 * backMask are fed with trailing unit axes ([outArea,4,1,1], [outArea,1,1], [inArea,K,1,1]) so they broadcast.
 */
export function samplingGraph(g: ShapedBuilder, x: string, k: number, channels: number, adjoints: Map<string, VjpRule>): string {
  const names = stageInputs(k);
  const { b, batch } = g;
  const taps = g.opExact('Gather', [x, names.taps], [-1, 4, batch, channels], { axis: 0 });
  const gather = b.emitted.at(-1)!;
  adjoints.set(gather.name!, (_node, dOut, _needs, ctx) => {
    const b = ctx.b;
    const flat = b.op('Reshape', [dOut[0]!, b.int64Const('shape', [-1, batch, channels])]); // [outArea·4,B,C]
    const back = b.op('Mul', [b.op('Gather', [flat, names.backTaps], { axis: 0 }), names.backMask]); // [inArea,K,B,C]
    return [b.reduceSum(back, [1], 0), undefined];
  });
  const weighted = g.opExact('Mul', [taps, names.weights], [-1, 4, batch, channels]);
  const summed = g.opExact('ReduceSum', [weighted, b.int64Const('axes', [1])], [-1, batch, channels], { keepdims: 0 });
  // The sum's adjoint hands back g as [out,1,B,C] instead of expanding it to [out,4,B,C] (what the general ReduceSum
  // rule does): the Mul's adjoint multiplies it by the [out,4,1,1] weights, which broadcasts it to the same products
  // without writing and reading the expanded copy (14 % of a MobileNetV2 render step, BENCHMARKS.md).
  adjoints.set(b.emitted.at(-1)!.name!, (_node, dOut, _needs, ctx) => [ctx.b.op('Unsqueeze', [dOut[0]!, ctx.b.int64Const('axes', [1])]), undefined]);
  return g.opExact('Add', [summed, names.constant], [-1, batch, channels]);
}
