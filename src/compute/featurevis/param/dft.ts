// Unnormalized complex DFTs of one size, in place on interleaved [re, im, re, im, …] arrays: fft.js (radix-4) for
// powers of two (Lucent renders 128×128), a direct O(n²) sum otherwise, so any image size works.
import FFT from 'fft.js';

export interface Dft {
  /** X[k] = Σ x[n]·e^{−2πikn/N} */
  forward(data: Float64Array): void;
  /** x[n] = Σ X[k]·e^{+2πikn/N} (no 1/N) */
  inverse(data: Float64Array): void;
}

export function makeDft(n: number): Dft {
  if (n > 1 && (n & (n - 1)) === 0) {
    const f = new FFT(n);
    const out = new Float64Array(2 * n);
    return {
      forward(data) {
        f.transform(out, data);
        data.set(out);
      },
      inverse(data) {
        f.inverseTransform(out, data); // fft.js divides by n: undo it
        for (let k = 0; k < 2 * n; k++) data[k] = out[k] * n;
      },
    };
  }
  const cos = Float64Array.from({ length: n * n }, (_, i) => Math.cos((2 * Math.PI * ((Math.floor(i / n) * (i % n)) % n)) / n));
  const sin = Float64Array.from({ length: n * n }, (_, i) => Math.sin((2 * Math.PI * ((Math.floor(i / n) * (i % n)) % n)) / n));
  const tmp = new Float64Array(2 * n);
  const direct = (data: Float64Array, sign: number) => {
    for (let k = 0; k < n; k++) {
      let re = 0;
      let im = 0;
      for (let j = 0; j < n; j++) {
        const c = cos[k * n + j];
        const s = sign * sin[k * n + j];
        re += data[2 * j] * c - data[2 * j + 1] * s;
        im += data[2 * j] * s + data[2 * j + 1] * c;
      }
      tmp[2 * k] = re;
      tmp[2 * k + 1] = im;
    }
    data.set(tmp);
  };
  return { forward: (d) => direct(d, -1), inverse: (d) => direct(d, 1) };
}
