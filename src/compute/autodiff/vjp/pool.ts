import { attrInt, attrInts, makeTensor } from '../../onnx/proto.ts';
import { transposeAttrs, windowGeometry } from './conv.ts';
import { describe, single, type VjpRule } from './rule.ts';

export const globalAveragePool: VjpRule = (node, dOut, _needs, ctx) => {
  const x = node.input![0];
  const spatial = ctx.dims(x).slice(2).reduce((a, b) => a * b, 1);
  const b = ctx.b;
  return [b.op('Mul', [b.op('Expand', [single(dOut), b.op('Shape', [x])]), b.scalar(1 / spatial)])];
};

export const maxPool: VjpRule = (node, dOut, _needs, ctx) => {
  // Route each output gradient to the input element that won the max, as PyTorch does, using onnxruntime's own
  // argmax indices (flat over the whole [N,C,H,W] input). Overlapping windows (ResNet's 3×3 stride-2 pool) can pick
  // the same element twice, so the scatter must add.
  if (attrInt(node, 'storage_order', 0) !== 0) throw new Error(`${describe(node)}: storage_order=1 is not supported`);
  const x = node.input![0];
  const outputs = [...(node.output ?? [])];
  if (!outputs[1]) {
    outputs[1] = ctx.graph.fresh(`${node.name || outputs[0]}/indices`);
    node.output = outputs;
  }
  const b = ctx.b;
  const flat = b.int64Const('flat', [-1]);
  const zeros = b.op('ConstantOfShape', [b.op('Reshape', [b.op('Size', [x]), flat])], { value: makeTensor('zero', b.floatType, [1], [0]) });
  const scattered = b.op('ScatterElements', [zeros, b.op('Reshape', [outputs[1], flat]), b.op('Reshape', [single(dOut), flat])], { axis: 0, reduction: 'add' });
  return [b.reshapeLike(scattered, x)];
};

export const averagePool: VjpRule = (node, dOut, _needs, ctx) => {
  // Average pooling is linear: spread each output gradient, divided by its own window's divisor, over the window
  // with a ones-kernel ConvTranspose (one group per channel).
  const x = node.input![0];
  const y = node.output![0];
  const kernel = attrInts(node, 'kernel_shape');
  if (!kernel) throw new Error(`${describe(node)}: kernel_shape is missing`);
  const xDims = ctx.dims(x);
  const yDims = ctx.dims(y);
  const channels = xDims[1];
  const inSpatial = xDims.slice(2);
  const outSpatial = yDims.slice(2);
  const geo = windowGeometry(node, kernel, inSpatial, outSpatial);
  if (geo.dilations.some((d) => d !== 1)) throw new Error(`${describe(node)}: dilated average pooling is not supported`);
  const includePad = attrInt(node, 'count_include_pad', 0) === 1;
  const divisors = windowDivisors(geo, inSpatial, outSpatial, includePad);
  const b = ctx.b;
  const inv = b.floatConst('avgpool_inv_count', [1, 1, ...outSpatial], divisors.map((d) => 1 / d));
  const ones = b.floatConst('avgpool_ones', [channels, 1, ...kernel], new Array(channels * kernel.reduce((a, c) => a * c, 1)).fill(1));
  const dx = b.op('ConvTranspose', [b.op('Mul', [single(dOut), inv]), ones], { ...transposeAttrs(geo, inSpatial, outSpatial), group: channels });
  return [dx];
};

/** How many elements each output window averages over (row-major over the output grid). */
function windowDivisors(geo: ReturnType<typeof windowGeometry>, inSpatial: number[], outSpatial: number[], includePad: boolean): number[] {
  const r = inSpatial.length;
  const total = outSpatial.reduce((a, b) => a * b, 1);
  const out = new Array<number>(total);
  const idx = new Array<number>(r).fill(0);
  for (let k = 0; k < total; k++) {
    let count = 1;
    for (let a = 0; a < r; a++) {
      const start = idx[a] * geo.strides[a] - geo.pads[a];
      const end = start + geo.kernel[a];
      // With count_include_pad the padding counts, but never a window's overhang past the padded input (ceil_mode).
      const lo = includePad ? Math.max(start, -geo.pads[a]) : Math.max(start, 0);
      const hi = includePad ? Math.min(end, inSpatial[a] + geo.pads[a + r]) : Math.min(end, inSpatial[a]);
      count *= Math.max(0, hi - lo);
    }
    out[k] = count || 1;
    for (let a = r - 1; a >= 0; a--) {
      if (++idx[a] < outSpatial[a]) break;
      idx[a] = 0;
    }
  }
  return out;
}
