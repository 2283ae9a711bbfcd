// Feature visualization's differentiable pieces, checked exactly: the Fourier parameterization against a direct
// evaluation of torch.fft.irfftn(norm='ortho') semantics, and every adjoint (parameterization, colour, transforms)
// against central finite differences — they are linear or smooth maps evaluated in float64 before rounding to
// float32, so a relative tolerance of 1e-3 on a directional derivative is loose for correct code and tight for wrong.
import { describe, expect, it } from 'vitest';
import { toValidRgb } from '../src/compute/featurevis/param/color.ts';
import { fftImage } from '../src/compute/featurevis/param/fft-image.ts';
import type { ImageParam } from '../src/compute/featurevis/param/param.ts';
import { pixelImage } from '../src/compute/featurevis/param/pixel-image.ts';
import { applySamplings, composeSamplings, jitter, pad, randomRotate, randomScale, resize, samplingFeeds, stageGroups, standardTransforms } from '../src/compute/featurevis/transform.ts';
import { Adam } from '../src/compute/featurevis/adam.ts';
import { highFrequencyFraction } from '../src/compute/featurevis/spectrum.ts';
import { deviceRenderNeurons, stepFeeds } from '../src/compute/featurevis/device-render.ts';
import { drawSamplings, imageParam, renderNeurons, samplingStages, targetObjective } from '../src/compute/featurevis/render.ts';
import { NEXT_M, NEXT_PARAMS, paramDims, renderStep } from '../src/compute/featurevis/render-graph.ts';
import { DifferentiableModel } from '../src/compute/model/differentiable-model.ts';
import { createRng } from '../src/compute/random.ts';
import { floatTensor } from '../src/compute/runtime/program.ts';
import { relativeL2 } from './helpers/shared.ts';
import { DOUBLE, head, named, tinyModel } from './helpers/tiny-net.ts';

/** torch.fft.irfftn(X, s=(h,w), norm='ortho') / 4 written out directly, for one plane. */
function directIrfft(x: Float32Array, base: number, h: number, w: number, wf: number, scale: (k: number, l: number) => number): Float64Array {
  const out = new Float64Array(h * w);
  const used = Math.floor(w / 2) + 1;
  for (let m = 0; m < h; m++) {
    for (let n = 0; n < w; n++) {
      let acc = 0;
      for (let k = 0; k < h; k++) {
        for (let l = 0; l < used; l++) {
          const re = x[base + (k * wf + l) * 2] * scale(k, l);
          const im = x[base + (k * wf + l) * 2 + 1] * scale(k, l);
          // Column k: full complex inverse DFT; columns l: Hermitian real part (DC/Nyquist once, others twice).
          const theta = 2 * Math.PI * ((k * m) / h + (l * n) / w);
          const weight = l === 0 || (w % 2 === 0 && l === w / 2) ? 1 : 2;
          acc += weight * (re * Math.cos(theta) - im * Math.sin(theta));
        }
      }
      out[m * w + n] = acc / Math.sqrt(h * w) / 4;
    }
  }
  return out;
}

function checkAdjoint(forward: (p: Float32Array) => Float32Array, backward: (g: Float32Array) => Float32Array, p0: Float32Array, h = 1e-3) {
  const rng = createRng(3);
  const out0 = forward(p0);
  const g = Float32Array.from(out0, () => rng.normal());
  forward(p0); // the adjoint is evaluated at p0
  const gp = backward(g);
  for (let trial = 0; trial < 3; trial++) {
    const v = Float64Array.from(p0, () => rng.normal());
    const norm = Math.hypot(...v);
    const at = (t: number) => {
      const out = forward(Float32Array.from(p0, (x, i) => x + (t * v[i]) / norm));
      return out.reduce((a, y, i) => a + y * g[i], 0);
    };
    const numeric = (at(h) - at(-h)) / (2 * h);
    const analytic = gp.reduce((a, x, i) => a + (x * v[i]) / norm, 0);
    expect(Math.abs(numeric - analytic)).toBeLessThan(1e-3 * Math.max(1e-3, Math.hypot(...gp)));
  }
}

describe('Fourier image parameterization', () => {
  for (const [h, w] of [[8, 8], [6, 5], [7, 6]] as const) {
    it(`matches irfftn(norm='ortho')/4 with Lucent's frequency scaling (${h}×${w})`, () => {
      const p = fftImage({ batch: 2, channels: 3, h, w, rng: createRng(1) });
      const img = p.image(p.params);
      const wf = w % 2 === 1 ? Math.floor(w / 2) + 2 : Math.floor(w / 2) + 1;
      const freq = (k: number, n: number) => (k < Math.ceil(n / 2) ? k : k - n) / n;
      const scale = (k: number, l: number) => 1 / Math.max(Math.hypot(freq(k, h), freq(l, w)), 1 / Math.max(h, w));
      for (let plane = 0; plane < 6; plane++) {
        const direct = directIrfft(p.params, plane * h * wf * 2, h, w, wf, scale);
        for (let q = 0; q < h * w; q++) expect(img[plane * h * w + q]).toBeCloseTo(direct[q], 6);
      }
      expect(p.params.length).toBe(2 * 3 * h * wf * 2);
    });
  }

  it('initialises the spectrum with sd 0.01 and reproduces from the seed', () => {
    const a = fftImage({ batch: 1, channels: 3, h: 32, w: 32, rng: createRng(5) });
    const b = fftImage({ batch: 1, channels: 3, h: 32, w: 32, rng: createRng(5) });
    expect(Array.from(a.params)).toEqual(Array.from(b.params));
    const sd = Math.sqrt(a.params.reduce((s, x) => s + x * x, 0) / a.params.length);
    expect(sd).toBeGreaterThan(0.009);
    expect(sd).toBeLessThan(0.011);
  });

  it('has exact gradients: FFT, colour decorrelation and sigmoid', () => {
    for (const [h, w] of [[8, 8], [6, 5]] as const) {
      const fft = fftImage({ batch: 1, channels: 3, h, w, rng: createRng(2), sd: 0.5 });
      checkAdjoint((p) => fft.image(p), (g) => fft.backward(g), fft.params);
      const rgb: ImageParam = toValidRgb(fftImage({ batch: 2, channels: 3, h, w, rng: createRng(2), sd: 0.5 }));
      checkAdjoint((p) => rgb.image(p), (g) => rgb.backward(g), rgb.params);
    }
    const pixels = toValidRgb(pixelImage({ batch: 1, channels: 3, h: 4, w: 4, rng: createRng(9), sd: 1 }), false);
    checkAdjoint((p) => pixels.image(p), (g) => pixels.backward(g), pixels.params);
  });
});

describe('high-frequency measure', () => {
  // A cosine of f cycles per pixel put in all three channels has luma equal to it (the BT.601 weights sum to 1), and
  // all its energy at radius f; cosines of different frequencies are orthogonal, so their energies add as amplitude².
  const cosines = (h: number, w: number, waves: { fy: number; fx: number; amplitude: number }[]) => {
    const img = new Float32Array(3 * h * w);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = 0.5 + waves.reduce((a, { fy, fx, amplitude }) => a + amplitude * Math.cos(2 * Math.PI * (fy * y + fx * x)), 0);
        for (let c = 0; c < 3; c++) img[c * h * w + y * w + x] = v;
      }
    }
    return img;
  };

  it('puts a cosine below a quarter cycle per pixel at 0, one above at 1, and a mixture at its share of amplitude²', () => {
    expect(highFrequencyFraction(cosines(128, 128, [{ fy: 0, fx: 4 / 128, amplitude: 0.2 }]), 128, 128)).toBeLessThan(1e-12);
    expect(highFrequencyFraction(cosines(128, 128, [{ fy: 40 / 128, fx: 0, amplitude: 0.1 }]), 128, 128)).toBeCloseTo(1, 12);
    // radius √(20² + 20²)/128 = 0.221: low; √(24² + 24²)/128 = 0.265: high, though each axis alone (0.1875) is low
    expect(highFrequencyFraction(cosines(128, 128, [{ fy: 20 / 128, fx: 20 / 128, amplitude: 0.1 }]), 128, 128)).toBeLessThan(1e-12);
    expect(highFrequencyFraction(cosines(128, 128, [{ fy: 24 / 128, fx: 24 / 128, amplitude: 0.1 }]), 128, 128)).toBeCloseTo(1, 12);
    const mixed = cosines(128, 128, [{ fy: 0, fx: 3 / 128, amplitude: 0.1 }, { fy: 48 / 128, fx: 8 / 128, amplitude: 0.2 }]);
    expect(highFrequencyFraction(mixed, 128, 128)).toBeCloseTo(0.2 ** 2 / (0.1 ** 2 + 0.2 ** 2), 8); // float32 pixels
    expect(highFrequencyFraction(new Float32Array(3 * 16 * 16).fill(0.3), 16, 16)).toBe(0); // no energy besides DC
  });

  it('measures sizes that are not powers of two, and gives each size its own answer when sizes alternate', () => {
    // 12×10 runs the direct DFT: 4 of 10 cycles across is 0.4 cycles per pixel, 1 of 12 down is 0.083.
    const high = cosines(12, 10, [{ fy: 0, fx: 4 / 10, amplitude: 0.2 }]);
    const low = cosines(12, 10, [{ fy: 1 / 12, fx: 0, amplitude: 0.2 }]);
    const big = cosines(128, 128, [{ fy: 0, fx: 3 / 128, amplitude: 0.1 }, { fy: 48 / 128, fx: 8 / 128, amplitude: 0.2 }]);
    const first = [highFrequencyFraction(high, 12, 10), highFrequencyFraction(big, 128, 128), highFrequencyFraction(low, 12, 10)];
    expect(first[0]).toBeCloseTo(1, 10);
    expect(first[1]).toBeCloseTo(0.8, 8);
    expect(first[2]).toBeLessThan(1e-12);
    expect([highFrequencyFraction(high, 12, 10), highFrequencyFraction(big, 128, 128), highFrequencyFraction(low, 12, 10)]).toEqual(first);
  });
});

describe('transforms', () => {
  const rng = createRng(11);
  const x0 = Float32Array.from({ length: 2 * 3 * 20 * 20 }, () => rng.uniform());

  it('pad, jitter, scale, rotate and resize have exact adjoints', () => {
    const cases = [
      pad(3, 0.5)(20, 20, rng),
      jitter(8)(20, 20, createRng(1)),
      randomScale([0.9])(20, 20, rng),
      randomScale([1.1])(20, 20, rng),
      randomRotate([7])(20, 20, rng),
      resize(20, 20, 31, 31),
    ];
    for (const s of cases) {
      // A linear map's adjoint satisfies <A x, g> = <x, Aᵀ g> (up to the constant padding term).
      const g = Float32Array.from({ length: 6 * s.outH * s.outW }, () => rng.normal());
      const { out, backward } = applySamplings(x0, 6, [s]);
      const zero = applySamplings(new Float32Array(x0.length), 6, [s]).out;
      const lhs = out.reduce((a, y, i) => a + (y - zero[i]) * g[i], 0);
      const rhs = backward(g).reduce((a, v, i) => a + v * x0[i], 0);
      expect(Math.abs(lhs - rhs)).toBeLessThan(1e-3 * Math.abs(lhs) + 1e-3);
    }
  });

  it('make a padding, scale or resize once per size and draw, and composing or applying them changes none', () => {
    // A size no other test uses, so the first pass makes every sampling.
    const draw = (seed: number) => {
      const draws = createRng(seed);
      return Array.from({ length: 30 }, () => drawSamplings(standardTransforms(), 37, [53, 53], draws));
    };
    const feedsOf = (steps: ReturnType<typeof draw>) => steps.map((samplings) => samplings.map((s) => {
      applySamplings(Float32Array.from({ length: 3 * s.inH * s.inW }, (_, i) => i % 7), 3, [s]).backward(new Float32Array(3 * s.outH * s.outW).fill(1));
      const f = samplingFeeds(s);
      return [f.taps, f.weights, f.constant, f.backTaps, f.backMask].map((a) => Array.from(a));
    }));
    const first = feedsOf(draw(5));
    // The same draws again come from the samplings made in the first pass: equal, so nothing wrote into them.
    expect(feedsOf(draw(5))).toEqual(first);
    expect(randomScale([1.1])(53, 53, createRng(1))).toBe(randomScale([1.1])(53, 53, createRng(2)));
    expect(resize(53, 53, 61, 61)).toBe(resize(53, 53, 61, 61));
    expect(randomScale([1.1])(53, 53, createRng(1))).not.toBe(randomScale([0.9])(53, 53, createRng(1)));
  });

  it('reproduce Lucent geometry: padding colour, integer jitter, sizes of scaled images', () => {
    const p = pad(12, 0.5)(128, 128, rng);
    expect([p.outH, p.outW]).toEqual([152, 152]);
    expect(applySamplings(new Float32Array(128 * 128), 1, [p]).out[0]).toBe(0.5);
    const j = jitter(4)(5, 5, createRng(4));
    const ramp = Float32Array.from({ length: 25 }, (_, i) => i + 1);
    const moved = applySamplings(ramp, 1, [j]).out;
    const shift = moved.findIndex((v) => v === 1); // where pixel (0,0) went
    expect(shift).toBeGreaterThanOrEqual(0);
    const s = randomScale([0.9])(152, 152, rng);
    // ceil(0.9·152) = 137, padded by ceil(15/2) = 8 on each side
    expect([s.outH, s.outW]).toEqual([153, 153]);
    expect(standardTransforms()).toHaveLength(5);
  });

  it('sampling feeds: a gather through the transposed taps is the adjoint, at any size', () => {
    const cases = [...standardTransforms().map((t) => t(40, 40, createRng(6))), resize(40, 40, 97, 61), resize(700, 700, 720, 720)];
    for (const s of cases) {
      const f = samplingFeeds(s);
      expect([f.outArea, f.inArea]).toEqual([s.outH * s.outW, s.inH * s.inW]);
      const g = Float32Array.from({ length: f.outArea }, (_, i) => Math.sin(i * 0.61));
      // what the graph computes: Σ over each input pixel's transposed entries of weight·g at the tap's position
      const viaTranspose = new Float64Array(f.inArea);
      for (let i = 0; i < f.inArea; i++) {
        for (let j = 0; j < f.fanIn; j++) {
          const pos = f.backTaps[i * f.fanIn + j];
          viaTranspose[i] += f.backMask[i * f.fanIn + j] * f.weights[pos] * g[Math.floor(pos / 4)];
        }
      }
      const reference = applySamplings(new Float32Array(f.inArea), 1, [s]).backward(g);
      expect(relativeL2(viaTranspose, reference)).toBeLessThan(1e-6);
      // the forward taps never point outside the input (a missing tap has weight 0, not index −1)
      expect(f.taps.every((i) => i >= 0 && i < f.inArea)).toBe(true);
    }
  });

  it('groups each non-shift stage with the shifts around it: Lucent\'s chain runs as 3 samplings, not 6', () => {
    // pad, jitter, scale, rotate, jitter, resize
    expect(stageGroups([true, true, false, false, true, false])).toEqual([[0, 1, 2], [3, 4], [5]]);
    expect(stageGroups([false, false])).toEqual([[0], [1]]);
    expect(stageGroups([true, true])).toEqual([[0, 1]]);
    expect(stageGroups([false, true, true, false])).toEqual([[0, 1, 2], [3]]);
    expect(samplingStages(standardTransforms())).toBe(3);
    expect(drawSamplings(standardTransforms(), 128, [224, 224], createRng(3))).toHaveLength(3);
    // A bilinear stage after a bilinear stage is not a shift: composing them would need 16 taps.
    expect(() => composeSamplings(resize(9, 9, 13, 13), resize(13, 13, 20, 20))).toThrow(/both read several pixels/);
  });

  it('folded stages compute what the stages compute one after another, forward and backward', () => {
    for (const seed of [1, 2, 3, 4]) {
      // The same draws, unfolded: each transform in turn, then the resize (what drawSamplings draws before folding).
      const draws = createRng(seed);
      let [h, w] = [40, 40];
      const stages = standardTransforms().map((t) => { const s = t(h, w, draws); [h, w] = [s.outH, s.outW]; return s; });
      stages.push(resize(h, w, 64, 64));
      const folded = drawSamplings(standardTransforms(), 40, [64, 64], createRng(seed));
      expect(folded).toHaveLength(3);
      const x = Float32Array.from({ length: 3 * 40 * 40 }, (_, i) => 0.5 + 0.5 * Math.sin(i * 0.73 + seed));
      const g = Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.cos(i * 0.37 * seed));
      const one = applySamplings(x, 3, stages);
      const all = applySamplings(x, 3, folded);
      expect(relativeL2(all.out, one.out)).toBeLessThan(1e-6);
      expect(relativeL2(all.backward(g), one.backward(g))).toBeLessThan(1e-6);
      // The padding colour reaches the output through the folded constant: a black image is not black after padding.
      const blank = applySamplings(new Float32Array(x.length), 3, folded).out;
      expect(relativeL2(blank, applySamplings(new Float32Array(x.length), 3, stages).out)).toBeLessThan(1e-6);
      expect(Math.max(...blank)).toBeGreaterThan(0.1);
    }
  });

  it('the whole standard chain then upsampling to 224 has an exact adjoint', () => {
    let [h, w] = [32, 32];
    const steps = [];
    for (const t of standardTransforms()) { const s = t(h, w, rng); steps.push(s); [h, w] = [s.outH, s.outW]; }
    steps.push(resize(h, w, 224, 224));
    const x = Float32Array.from({ length: 3 * 32 * 32 }, () => rng.uniform());
    const g = Float32Array.from({ length: 3 * 224 * 224 }, () => rng.normal());
    const { out, backward } = applySamplings(x, 3, steps);
    const zero = applySamplings(new Float32Array(x.length), 3, steps).out;
    const lhs = out.reduce((a, y, i) => a + (y - zero[i]) * g[i], 0);
    const rhs = backward(g).reduce((a, v, i) => a + v * x[i], 0);
    expect(Math.abs(lhs - rhs)).toBeLessThan(1e-4 * Math.abs(lhs));
  });
});

// The device loop (device-render.ts) runs the whole step as one graph: image parameterization, transforms, model,
// gradient back to the parameters, Adam. On a float64 model it must reproduce the host loop's arithmetic: the first
// step's Adam moment m = (1−β₁)·g exposes the gradient g the graph computed, to compare with render.ts's pieces.
describe('feature visualization step as one graph', () => {
  const DIMS: [number, number, number] = [3, 20, 20];
  const tiny = (elem: number) => tinyModel(elem, DIMS, (n, x) => {
    // elementwise ops and Gemm only: onnxruntime's CPU provider has no float64 Conv
    const feat = named(n, 'feat', 'Add', [n.b.op('Mul', [x, n.weight('feat.weight', DIMS, 2)]), n.weight('feat.bias', DIMS, 0.5)]);
    return head(n, named(n, 'act', 'Tanh', [feat]), 3 * 20 * 20);
  });
  const targets = [{ layer: 'act', channel: 1 }, { layer: 'act', channel: 2, y: 4, x: 7 }];

  async function oneStep(model: DifferentiableModel, kind: 'fft' | 'pixel', size: number) {
    const rng = createRng(5);
    const param = imageParam({ param: kind }, targets.length, size, rng);
    for (let i = 0; i < param.params.length; i++) param.params[i] += 0.3 * Math.sin(i * 0.37); // away from the initial point
    const { objective, inputs } = targetObjective(model, targets, 0);
    const samplings = drawSamplings(standardTransforms(), size, [DIMS[1], DIMS[2]], rng.fork('transforms'));
    const { out, backward } = applySamplings(param.image(param.params), targets.length * 3, samplings);
    const r = await model.objectiveGradient(out, objective, inputs);
    const host = param.backward(backward(Float32Array.from(r.grad, (g) => -g)));
    const spec = { param: kind, size, decorrelate: true, stages: samplings.length, batch: targets.length };
    const program = await model.program({ objective, logits: false, extension: renderStep(spec) });
    const f = (data: ArrayLike<number>, dims: number[]) => floatTensor(model.prepared.floatType, data, dims);
    const state = [targets.length, ...paramDims(spec)];
    const zeros = () => f(new Float32Array(param.params.length), state);
    const o = await program.runTensors({
      ...program.inputFeeds(targets.length, inputs),
      ...stepFeeds(model.prepared.floatType, { params: f(param.params, state), m: zeros(), v: zeros() }, 0.05, 1, samplings),
    });
    const data = (name: string) => Array.from(o[name].data as Float32Array | Float64Array);
    return { param, host, hostObjective: Array.from(r.objective), objective: data(program.outputs.objective!), m: data(NEXT_M), next: data(NEXT_PARAMS) };
  }

  for (const [kind, size] of [['fft', 16], ['fft', 15], ['pixel', 16]] as const) {
    it(`computes the host loop's objective, gradient and Adam step (${kind} ${size}×${size}, float64 model)`, async () => {
      const model = await DifferentiableModel.fromBytes(tiny(DOUBLE), { name: 'x', dims: DIMS });
      try {
        const s = await oneStep(model, kind, size);
        expect(relativeL2(s.objective, s.hostObjective)).toBeLessThan(1e-6);
        const g = s.m.map((m) => m / 0.1);
        expect(relativeL2(g, Array.from(s.host))).toBeLessThan(1e-5);
        // Adam's first step moves every parameter with a nonzero gradient by lr against its sign.
        const adam = new Adam(s.param.params.length, 0.05);
        const expected = Float32Array.from(s.param.params);
        adam.step(expected, g);
        expect(relativeL2(s.next.map((p, i) => p - s.param.params[i]), Array.from(expected, (p, i) => p - s.param.params[i]))).toBeLessThan(1e-5);
      } finally {
        await model.release();
      }
    });
  }

  it('renders on the device what the host loop renders (float64 model, 8 steps)', async () => {
    const model = await DifferentiableModel.fromBytes(tiny(DOUBLE), { name: 'x', dims: DIMS });
    try {
      const opts = { size: 16, steps: 8, seed: 3 };
      const [host, device] = [await renderNeurons(model, targets, opts), await deviceRenderNeurons(model, targets, opts)];
      expect(device.curve).toHaveLength(8);
      expect(relativeL2(device.curve.flat(), host.curve.flat())).toBeLessThan(1e-4);
      expect(relativeL2(Array.from(device.images), Array.from(host.images))).toBeLessThan(1e-4);
      // and it optimises: every image's objective rose
      targets.forEach((_, i) => expect(device.curve[7][i]).toBeGreaterThan(device.curve[0][i]));
    } finally {
      await model.release();
    }
  });
});
