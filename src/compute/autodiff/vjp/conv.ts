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
  const dx = ctx.b.op('ConvTranspose', [single(dOut), w], {
    ...transposeAttrs(geo, inSpatial, outSpatial),
    group: attrInt(node, 'group', 1),
  });
  return [dx, undefined, undefined];
};
