// Conv's input gradient is the transposed convolution with the same weights, strides, pads, dilations and groups.
// ConvTranspose can produce several input sizes for one output size (strided convs drop trailing pixels), so the
// exact input size is pinned with output_padding, computed from the probed static sizes.
import { attrInt, attrInts, attrString } from '../../onnx/proto.ts';
import { describe, single, type VjpRule } from './rule.ts';
import type { NodeProto } from '../../onnx/proto.ts';

export interface WindowGeometry {
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** [begin_0, begin_1, ..., end_0, end_1, ...] as ONNX writes pads */
  pads: number[];
}

/** Explicit pads for a windowed op, resolving auto_pad from the static input and output sizes. */
export function windowGeometry(node: NodeProto, kernel: number[], inSpatial: number[], outSpatial: number[]): WindowGeometry {
  const r = kernel.length;
  const strides = attrInts(node, 'strides') ?? Array(r).fill(1);
  const dilations = attrInts(node, 'dilations') ?? Array(r).fill(1);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  let pads = attrInts(node, 'pads') ?? Array(2 * r).fill(0);
  if (autoPad === 'VALID') pads = Array(2 * r).fill(0);
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = Array(2 * r).fill(0);
    for (let a = 0; a < r; a++) {
      const total = Math.max(0, (outSpatial[a] - 1) * strides[a] + (kernel[a] - 1) * dilations[a] + 1 - inSpatial[a]);
      const small = Math.floor(total / 2);
      pads[a] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[a + r] = total - pads[a];
    }
  }
  return { kernel, strides, dilations, pads };
}

/**
 * Attributes of the ConvTranspose that maps an output-sized gradient back onto the input grid. Where a window
 * reached past the padded input (ceil_mode), the extra rows are cropped with a larger end pad.
 */
export function transposeAttrs(geo: WindowGeometry, inSpatial: number[], outSpatial: number[]) {
  const r = geo.kernel.length;
  const pads = [...geo.pads];
  const outputPadding: number[] = [];
  for (let a = 0; a < r; a++) {
    const produced = geo.strides[a] * (outSpatial[a] - 1) + (geo.kernel[a] - 1) * geo.dilations[a] + 1 - pads[a] - pads[a + r];
    let extra = inSpatial[a] - produced;
    if (extra < 0) { pads[a + r] += -extra; extra = 0; }
    outputPadding.push(extra);
  }
  return { strides: geo.strides, dilations: geo.dilations, pads, output_padding: outputPadding, kernel_shape: geo.kernel };
}

export const conv: VjpRule = (node, dOut, needs, ctx) => {
  const [x, w] = node.input ?? [];
  if (needs[1] || needs[2]) throw new Error(`${describe(node)}: gradients with respect to convolution weights are not supported (only inputs)`);
  const y = node.output![0];
  const wDims = ctx.dims(w);
  const kernel = attrInts(node, 'kernel_shape') ?? wDims.slice(2);
  const inSpatial = ctx.dims(x).slice(2);
  const outSpatial = ctx.dims(y).slice(2);
  const geo = windowGeometry(node, kernel, inSpatial, outSpatial);
  const group = attrInt(node, 'group', 1);
  const weights = ctx.constant(w);
  const fullPads = correlationPads(geo, inSpatial, outSpatial);
  if (weights && fullPads) {
    // Stride 1: the transposed convolution is an ordinary convolution with the kernel flipped and its in/out
    // channels swapped, and onnxruntime's Conv kernels are far faster than its ConvTranspose.
    const wt = ctx.b.floatConst(`${node.name || 'conv'}/weight_transposed`, transposedDims(wDims, group), flipAndSwap(weights, wDims, group));
    return [ctx.b.op('Conv', [single(dOut), wt], { pads: fullPads, dilations: geo.dilations, kernel_shape: kernel, group }), undefined, undefined];
  }
  const dx = ctx.b.op('ConvTranspose', [single(dOut), w], { ...transposeAttrs(geo, inSpatial, outSpatial), group });
  return [dx, undefined, undefined];
};

/**
 * Pads of the "full" correlation that maps a stride-1 convolution's output gradient back to its input:
 * d(K−1) − p at each end. Undefined when strided or when a pad would be negative.
 */
function correlationPads(geo: WindowGeometry, inSpatial: number[], outSpatial: number[]): number[] | undefined {
  if (geo.strides.some((s) => s !== 1)) return undefined;
  const r = geo.kernel.length;
  const pads = new Array<number>(2 * r);
  for (let a = 0; a < r; a++) {
    const reach = geo.dilations[a] * (geo.kernel[a] - 1);
    pads[a] = reach - geo.pads[a];
    pads[a + r] = inSpatial[a] - outSpatial[a] - pads[a] + reach;
  }
  return pads.every((p) => p >= 0) ? pads : undefined;
}

/** [M, C/g, k...] → [C, M/g, k...] */
function transposedDims(wDims: number[], group: number): number[] {
  const [m, cg, ...k] = wDims;
  return [cg * group, m / group, ...k];
}

/** Swap in/out channels within each group and flip the kernel spatially. */
function flipAndSwap(w: ArrayLike<number>, wDims: number[], group: number): Float64Array {
  const [m, cg, ...k] = wDims;
  const mg = m / group;
  const area = k.reduce((a, b) => a * b, 1);
  const out = new Float64Array(w.length);
  for (let o = 0; o < m; o++) {
    const g = Math.floor(o / mg);
    const om = o - g * mg;
    for (let c = 0; c < cg; c++) {
      const src = (o * cg + c) * area;
      const dst = ((g * cg + c) * mg + om) * area;
      for (let j = 0; j < area; j++) out[dst + area - 1 - j] = w[src + j];
    }
  }
  return out;
}
