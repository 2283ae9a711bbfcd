// Lucent's `fft_image`: the image is parameterized by its 2-D spectrum, scaled by 1/max(freq, 1/max(w,h))^decay so
// that low frequencies dominate, and brought back by an orthonormal inverse real FFT (torch.fft.irfftn(norm='ortho')),
// divided by Lucent's magic 4. The inverse transform is two passes of 1-D DFTs (columns, then Hermitian rows),
// and its exact adjoint is the forward transforms in reverse order (see dft.ts for the FFTs used).
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
