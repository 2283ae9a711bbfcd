// Lucent's `fft_image`: the image is parameterized by its 2-D spectrum, scaled by 1/max(freq, 1/max(w,h))^decay so
// that low frequencies dominate, and brought back by an orthonormal inverse real FFT (torch.fft.irfftn(norm='ortho')),
// divided by Lucent's magic 4. The inverse transform is two passes of 1-D DFTs (columns, then Hermitian rows),
// and its exact adjoint is the forward transforms in reverse order (see dft.ts for the FFTs used).
import type { ShapedBuilder } from '../../onnx/shaped-builder.ts';
import type { Rng } from '../../random.ts';
import { makeDft } from './dft.ts';
import type { ImageParam } from './param.ts';

/** np.fft.fftfreq(n)[k] */
const fftfreq = (k: number, n: number) => (k < Math.ceil(n / 2) ? k : k - n) / n;

export function fftImage(o: { batch: number; channels: number; h: number; w: number; sd?: number; decayPower?: number; rng: Rng }): ImageParam {
  const { batch, channels, h, w } = o;
  const sd = o.sd ?? 0.01;
  const decay = o.decayPower ?? 1;
  // Lucent keeps one extra frequency column for odd widths (and irfftn ignores it); so do we, for equal parameters.
  const wf = w % 2 === 1 ? Math.floor(w / 2) + 2 : Math.floor(w / 2) + 1;
  const used = Math.floor(w / 2) + 1;
  const scale = new Float64Array(h * wf);
  for (let k = 0; k < h; k++) {
    for (let l = 0; l < wf; l++) {
      const f = Math.hypot(fftfreq(k, h), fftfreq(l, w));
      scale[k * wf + l] = 1 / Math.max(f, 1 / Math.max(w, h)) ** decay;
    }
  }
  // params: [B,C,h,wf,2] (real, imaginary), as torch.randn(...) * sd
  const params = Float32Array.from({ length: batch * channels * h * wf * 2 }, () => o.rng.normal() * sd);
  const rows = makeDft(h);
  const cols = makeDft(w);
  // Columns of the real transform: DC and (even w) Nyquist once, the others twice (Hermitian symmetry).
  const weight = Array.from({ length: used }, (_, l) => (l === 0 || (w % 2 === 0 && l === w / 2) ? 1 : 2));
  const norm = 1 / Math.sqrt(h * w) / 4; // orthonormal inverse, then Lucent's magic 4
  const plane = h * wf * 2;
  const yPlane = new Float64Array(h * used * 2); // Y[m,l], interleaved
  const column = new Float64Array(2 * h);
  const row = new Float64Array(2 * w);

  return {
    params,
    dims: [batch, channels, h, w],
    image(p) {
      const out = new Float32Array(batch * channels * h * w);
      for (let bc = 0; bc < batch * channels; bc++) {
        const base = bc * plane;
        // Y[:,l] = inverse DFT over k of S[k,l]·X[k,l]
        for (let l = 0; l < used; l++) {
          for (let k = 0; k < h; k++) {
            const s = scale[k * wf + l];
            column[2 * k] = p[base + (k * wf + l) * 2] * s;
            column[2 * k + 1] = p[base + (k * wf + l) * 2 + 1] * s;
          }
          rows.inverse(column);
          for (let m = 0; m < h; m++) {
            yPlane[(m * used + l) * 2] = column[2 * m];
            yPlane[(m * used + l) * 2 + 1] = column[2 * m + 1];
          }
        }
        // x[m,:] = Re(inverse DFT of the Hermitian extension of Y[m,:])  (= Σ_l weight_l·Re(Y[m,l]·e^{2πiln/w}))
        for (let m = 0; m < h; m++) {
          row.fill(0);
          for (let l = 0; l < used; l++) {
            const re = yPlane[(m * used + l) * 2];
            const im = yPlane[(m * used + l) * 2 + 1];
            row[2 * l] = re;
            row[2 * l + 1] = im;
            if (weight[l] === 2) {
              row[2 * (w - l)] = re;
              row[2 * (w - l) + 1] = -im;
            }
          }
          cols.inverse(row);
          for (let n = 0; n < w; n++) out[(bc * h + m) * w + n] = row[2 * n] * norm;
        }
      }
      return out;
    },
    backward(g) {
      const gp = new Float32Array(params.length);
      for (let bc = 0; bc < batch * channels; bc++) {
        // gY[m,l] = weight_l · norm · (forward DFT of g[m,:])[l]
        for (let m = 0; m < h; m++) {
          for (let n = 0; n < w; n++) {
            row[2 * n] = g[(bc * h + m) * w + n];
            row[2 * n + 1] = 0;
          }
          cols.forward(row);
          for (let l = 0; l < used; l++) {
            yPlane[(m * used + l) * 2] = row[2 * l] * weight[l] * norm;
            yPlane[(m * used + l) * 2 + 1] = row[2 * l + 1] * weight[l] * norm;
          }
        }
        // gX[:,l] = S[:,l] · forward DFT over m of gY[:,l]   (the adjoint of the inverse DFT)
        const base = bc * plane;
        for (let l = 0; l < used; l++) {
          for (let m = 0; m < h; m++) {
            column[2 * m] = yPlane[(m * used + l) * 2];
            column[2 * m + 1] = yPlane[(m * used + l) * 2 + 1];
          }
          rows.forward(column);
          for (let k = 0; k < h; k++) {
            const s = scale[k * wf + l];
            gp[base + (k * wf + l) * 2] = column[2 * k] * s;
            gp[base + (k * wf + l) * 2 + 1] = column[2 * k + 1] * s;
          }
        }
      }
      return gp;
    },
  };
}

/**
 * The same parameterization as ONNX nodes, for the device-resident render loop (featurevis/render-graph.ts): the two
 * DFT passes become two MatMuls with constant real matrices (a 128×128 image needs a [256,256] and a [130,128] one),
 * so the autodiff's MatMul/Transpose/Reshape rules give the adjoint. params: [B,C,h,wf,2] → image [B,C,h,w].
 */
export function fftImageGraph(g: ShapedBuilder, params: string, o: { channels: number; h: number; w: number; decayPower?: number }): string {
  const { channels, h, w } = o;
  const decay = o.decayPower ?? 1;
  const wf = w % 2 === 1 ? Math.floor(w / 2) + 2 : Math.floor(w / 2) + 1;
  const used = Math.floor(w / 2) + 1;
  const scale = new Float64Array(h * wf);
  for (let k = 0; k < h; k++) for (let l = 0; l < wf; l++) scale[k * wf + l] = 1 / Math.max(Math.hypot(fftfreq(k, h), fftfreq(l, w)), 1 / Math.max(w, h)) ** decay;
  // Pass 1, the inverse DFT over k for each column l, on (re, im) pairs: [.., k·2+c] · M1 → [.., m·2+c'].
  const m1 = new Float64Array(4 * h * h);
  for (let k = 0; k < h; k++) {
    for (let m = 0; m < h; m++) {
      const a = (2 * Math.PI * ((k * m) % h)) / h;
      const [cos, sin] = [Math.cos(a), Math.sin(a)];
      const at = (kc: number, mc: number) => (2 * k + kc) * 2 * h + 2 * m + mc;
      m1[at(0, 0)] = cos; m1[at(1, 0)] = -sin; m1[at(0, 1)] = sin; m1[at(1, 1)] = cos;
    }
  }
  // Pass 2, x[m,n] = norm·Σ_l weight_l·(Re Y·cos − Im Y·sin); the odd-width extra column gets zero rows (unused).
  const norm = 1 / Math.sqrt(h * w) / 4;
  const m2 = new Float64Array(2 * wf * w);
  for (let l = 0; l < used; l++) {
    const weight = l === 0 || (w % 2 === 0 && l === w / 2) ? 1 : 2;
    for (let n = 0; n < w; n++) {
      const a = (2 * Math.PI * ((l * n) % w)) / w;
      m2[(2 * l) * w + n] = norm * weight * Math.cos(a);
      m2[(2 * l + 1) * w + n] = -norm * weight * Math.sin(a);
    }
  }
  const { b } = g;
  const scaled = g.op('Mul', [params, b.floatConst('spectrum_scale', [h, wf, 1], scale)], [-1, channels, h, wf, 2]);
  const byColumn = g.op('Transpose', [scaled], [-1, channels, wf, h, 2], { perm: [0, 1, 3, 2, 4] });
  const flatColumns = g.op('Reshape', [byColumn, b.int64Const('shape', [-1, channels, wf, 2 * h])], [-1, channels, wf, 2 * h]);
  const y = g.op('MatMul', [flatColumns, b.floatConst('inverse_dft_rows', [2 * h, 2 * h], m1)], [-1, channels, wf, 2 * h]);
  const yPairs = g.op('Reshape', [y, b.int64Const('shape', [-1, channels, wf, h, 2])], [-1, channels, wf, h, 2]);
  const byRow = g.op('Transpose', [yPairs], [-1, channels, h, wf, 2], { perm: [0, 1, 3, 2, 4] });
  const flatRows = g.op('Reshape', [byRow, b.int64Const('shape', [-1, channels, h, 2 * wf])], [-1, channels, h, 2 * wf]);
  return g.op('MatMul', [flatRows, b.floatConst('inverse_real_dft_columns', [2 * wf, w], m2)], [-1, channels, h, w]);
}

/** Parameter shape per image, [C,h,wf,2]. */
export function fftParamDims(channels: number, h: number, w: number): [number, number, number, number] {
  return [channels, h, w % 2 === 1 ? Math.floor(w / 2) + 2 : Math.floor(w / 2) + 1, 2];
}
