// Lucent's `to_valid_rgb`: decorrelate colour with the square root of ImageNet's colour covariance (normalised by its
// largest column norm), then squash into [0,1] with a sigmoid. Wraps any parameterization into one that yields RGB.
import type { ShapedBuilder } from '../../onnx/shaped-builder.ts';
import type { ImageParam } from './param.ts';

const SVD_SQRT = [
  [0.26, 0.09, 0.02],
  [0.27, 0.0, -0.05],
  [0.27, -0.09, 0.03],
];
const MAX_COLUMN_NORM = Math.max(...[0, 1, 2].map((j) => Math.hypot(SVD_SQRT[0][j], SVD_SQRT[1][j], SVD_SQRT[2][j])));
/** color_correlation_normalized; applied as pixel·Mᵀ, i.e. out_c = Σ_j M[c][j]·in_j */
export const COLOR_MATRIX = SVD_SQRT.map((row) => row.map((v) => Math.fround(v) / Math.fround(MAX_COLUMN_NORM)));

export function toValidRgb(inner: ImageParam, decorrelate = true): ImageParam {
  const [b, c, h, w] = inner.dims;
  if (decorrelate && c !== 3) throw new Error('colour decorrelation needs 3 channels');
  const area = h * w;
  let lastRgb = new Float32Array(0);
  return {
    params: inner.params,
    dims: inner.dims,
    image(p) {
      const x = inner.image(p);
      const out = new Float32Array(x.length);
      for (let i = 0; i < b; i++) {
        for (let q = 0; q < area; q++) {
          for (let ch = 0; ch < c; ch++) {
            let v = x[(i * c + ch) * area + q];
            if (decorrelate) {
              v = 0;
              for (let j = 0; j < 3; j++) v += COLOR_MATRIX[ch][j] * x[(i * 3 + j) * area + q];
            }
            out[(i * c + ch) * area + q] = 1 / (1 + Math.exp(-v));
          }
        }
      }
      lastRgb = out;
      return out;
    },
    backward(g) {
      const pre = new Float32Array(g.length);
      for (let k = 0; k < g.length; k++) pre[k] = g[k] * lastRgb[k] * (1 - lastRgb[k]); // sigmoid'
      if (!decorrelate) return inner.backward(pre);
      const back = new Float32Array(g.length);
      for (let i = 0; i < b; i++) {
        for (let q = 0; q < area; q++) {
          for (let j = 0; j < 3; j++) {
            let v = 0;
            for (let ch = 0; ch < 3; ch++) v += COLOR_MATRIX[ch][j] * pre[(i * 3 + ch) * area + q];
            back[(i * 3 + j) * area + q] = v;
          }
        }
      }
      return inner.backward(back);
    },
  };
}

/**
 * to_valid_rgb as ONNX nodes on flattened planes, pixels: [B,3,h·w]: the colour matrix as a MatMul from the left
 * (not a 1×1 Conv, which onnxruntime's CPU provider lacks for float64 models), then a sigmoid.
 */
export function toValidRgbGraph(g: ShapedBuilder, pixels: string, dims: readonly number[], decorrelate = true): string {
  let x = pixels;
  if (decorrelate) {
    if (dims[1] !== 3) throw new Error('colour decorrelation needs 3 channels');
    x = g.op('MatMul', [g.b.floatConst('color_correlation', [3, 3], COLOR_MATRIX.flat()), x], dims);
  }
  return g.op('Sigmoid', [x], dims);
}
