import { attrInt, attrInts } from '../../onnx/proto.ts';
import { transposeAttrs, windowGeometry } from './conv.ts';
import { describe, single, type VjpRule } from './rule.ts';

export const globalAveragePool: VjpRule = (node, dOut, _needs, ctx) => {
  const x = node.input![0];
  const spatial = ctx.dims(x).slice(2).reduce((a, b) => a * b, 1);
  const b = ctx.b;
  return [b.op('Mul', [b.op('Expand', [single(dOut), b.op('Shape', [x])]), b.scalar(1 / spatial)])];
};

export const maxPool: VjpRule = (node, dOut, _needs, ctx) => {
  // Route each output gradient to the input element that won its window, as PyTorch does, using onnxruntime's own
  // argmax indices. Overlapping windows (ResNet's 3×3 stride-2 pool) can route two gradients to one element, so they
  // must add: each gradient is placed at its offset inside the window (one-hot over the K window positions) and one
  // grouped ConvTranspose with one-hot kernels sums all placements. (ScatterElements could add too, but only from
  // opset 16, which would cost the forward pass its fast kernels; see onnx/opset.ts.)
  if (attrInt(node, 'storage_order', 0) !== 0) throw new Error(`${describe(node)}: storage_order=1 is not supported`);
  const x = node.input![0];
  const y = node.output![0];
  const outputs = [...(node.output ?? [])];
  if (!outputs[1]) {
    outputs[1] = ctx.graph.fresh(`${node.name || outputs[0]}/indices`);
    node.output = outputs;
  }
  const kernel = attrInts(node, 'kernel_shape');
  if (!kernel || kernel.length !== 2) throw new Error(`${describe(node)}: only 2-D max pooling is supported`);
  const [, channels, h, w] = ctx.dims(x);
  const outSpatial = ctx.dims(y).slice(2);
  const geo = windowGeometry(node, kernel, [h, w], outSpatial);
  const [kh, kw] = kernel;
  const k = kh * kw;
  const b = ctx.b;
  const i64 = (name: string, values: number[], dims?: number[]) => b.int64Const(name, values, dims);
  // Indices are flat over [N,C,H,W]. Less the flat index of its window's origin (the top-left corner, in the padding
  // where the window starts there), the winner's index is its offset in the window, dy·dilation·W + dx·dilation: an
  // Add and a Sub on [N,C,Ho,Wo] instead of splitting the index into row and column (two Mods, a Div and four more
  // integer ops): a ResNet-50 PGD step 1.5 % faster in steady state, the same gradient bit for bit. Two window
  // positions share an offset only if one of them is in the padding, which no index points into and whose placements
  // the ConvTranspose crops.
  const [ho, wo] = outSpatial;
  const origins = new Array<number>(channels * ho * wo);
  for (let c = 0, i = 0; c < channels; c++) {
    for (let r = 0; r < ho; r++) for (let q = 0; q < wo; q++, i++) origins[i] = c * h * w + (r * geo.strides[0] - geo.pads[0]) * w + q * geo.strides[1] - geo.pads[1];
  }
  const batch = b.op('Gather', [b.op('Shape', [outputs[1]]), i64('batch_axis', [0], [])]);
  const imageStarts = b.op('Mul', [b.op('Range', [i64('zero', [0], []), batch, i64('one', [1], [])]), i64('plane', [channels * h * w], [])]);
  const firsts = b.op('Add', [b.op('Unsqueeze', [imageStarts, i64('axes', [1, 2, 3])]), i64('window_origins', origins, [1, channels, ho, wo])]);
  const offset = b.op('Sub', [outputs[1], firsts]);
  const codes: number[] = [];
  for (let dy = 0; dy < kh; dy++) for (let dx = 0; dx < kw; dx++) codes.push(dy * geo.dilations[0] * w + dx * geo.dilations[1]);
  const positions = i64('window_positions', codes, [1, 1, k, 1, 1]);
  const hot = b.op('Cast', [b.op('Equal', [b.op('Unsqueeze', [offset, i64('axes', [2])]), positions])], { to: b.floatType }); // [N,C,K,Ho,Wo]
  const placed = b.op('Mul', [hot, b.op('Unsqueeze', [single(dOut), i64('axes', [2])])]);
  const stacked = b.op('Reshape', [placed, i64('shape', [0, channels * k, ...outSpatial])]); // [N,C·K,Ho,Wo]
  const kernels = new Float64Array(channels * k * k);
  for (let c = 0; c < channels; c++) for (let j = 0; j < k; j++) kernels[(c * k + j) * k + j] = 1;
  const ones = b.floatConst('maxpool_onehot_kernels', [channels * k, 1, kh, kw], kernels);
  return [b.op('ConvTranspose', [stacked, ones], { ...transposeAttrs(geo, [h, w], outSpatial), group: channels })];
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
