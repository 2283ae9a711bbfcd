// Neuron statistics against independent computations, fragility and polysemanticity on cases with known answers,
// the WordNet groups, and spatial coordinates (argmax, receptive field, heatmap centre of mass) on a network whose
// channel fires exactly on a planted square.
import { readFile } from 'node:fs/promises';
import { describe, expect, it, vi } from 'vitest';
import { isUnder } from '../src/compute/analysis/class-groups.ts';
import { layerFragility } from '../src/compute/analysis/fragility.ts';
import { mapShift, upsample } from '../src/compute/analysis/heatmap.ts';
import { neuronHistograms } from '../src/compute/analysis/histogram.ts';
import { channelSpread, groupStats, topChannels } from '../src/compute/analysis/neuron-stats.ts';
import { largest, quantile } from '../src/compute/numbers.ts';
import { cellBox, receptiveFields } from '../src/compute/analysis/receptive-field.ts';
import { recordActivations, recordLayers } from '../src/compute/analysis/record.ts';
import { DifferentiableModel } from '../src/compute/model/differentiable-model.ts';
import { Graph } from '../src/compute/onnx/graph.ts';
import { buildProgramGraph, type ProgramResult } from '../src/compute/runtime/program.ts';
import type { Classifier } from '../src/compute/model/classifier.ts';
import { createRng } from '../src/compute/random.ts';
import { hierarchyFor } from '../scripts/imagenet-hierarchy-lib.ts';
import hierarchy from '../src/compute/analysis/imagenet-hierarchy.json' with { type: 'json' };
import { FLOAT, named, tinyModel } from './helpers/tiny-net.ts';
import { shared } from './helpers/shared.ts';

const rng = createRng(21);
const N = 37;
const C = 11;
const values = Float32Array.from({ length: N * C }, () => rng.normal() * 2 + 1);
const column = (c: number, rows: number[]) => rows.map((r) => values[r * C + c]);

describe('per-neuron statistics', () => {
  it('mean, median, max and n of a group agree with a direct computation', () => {
    const rows = [0, 3, 4, 9, 10, 22, 36];
    const s = groupStats(values, C, rows);
    expect(s.n).toBe(7);
    for (let c = 0; c < C; c++) {
      const col = column(c, rows);
      const sorted = [...col].sort((a, b) => a - b);
      expect(s.mean[c]).toBeCloseTo(col.reduce((a, b) => a + b) / col.length, 10);
      expect(s.median[c]).toBeCloseTo(sorted[3], 10);
      expect(s.max[c]).toBe(Math.max(...col));
    }
    const even = groupStats(values, C, [1, 2, 5, 8]);
    const sorted = column(0, [1, 2, 5, 8]).sort((a, b) => a - b);
    expect(even.median[0]).toBeCloseTo((sorted[1] + sorted[2]) / 2, 10);
  });

  it('top fraction of neurons and per-neuron spread', () => {
    const score = [5, 1, 9, 3, 9, 0, 2, 7, 4, 6];
    expect(topChannels(score, 0.3)).toEqual([2, 4, 7]);
    const { mean, std } = channelSpread(values, C);
    for (const c of [0, 5, 10]) {
      const col = column(c, [...Array(N).keys()]);
      const m = col.reduce((a, b) => a + b) / N;
      expect(mean[c]).toBeCloseTo(m, 6);
      expect(std[c]).toBeCloseTo(Math.sqrt(col.reduce((a, v) => a + (v - m) ** 2, 0) / N), 6);
    }
  });

  it('histograms count every image once, with log densities', () => {
    const h = neuronHistograms(values, C, 8);
    expect(h).toHaveLength(C);
    for (const nh of h) {
      expect(nh.counts.reduce((a, b) => a + b)).toBe(N);
      const width = nh.edges[1] - nh.edges[0];
      nh.counts.forEach((k, i) => expect(nh.log_density[i]).toBe(k ? Math.log10(k / (N * width)) : null));
    }
  });
});

describe('fragility', () => {
  it('counts a neuron fragile when the attack moves it further than the control, beyond chance and by min_effect', () => {
    const channels = 10;
    const n = 12;
    const sigma = [1, 2, 0.5, 1, 1, 1, 1, 1, 1, 1];
    const clean = new Float32Array(n * channels);
    const adv = new Float32Array(n * channels);
    const control = new Float32Array(n * channels);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < channels; c++) {
        const k = i * channels + c;
        clean[k] = 10 - c; // channel 0 is the top neuron
        adv[k] = clean[k];
        // The control moves every neuron by half a natural σ, up on even images and down on odd ones.
        control[k] = clean[k] + (i % 2 ? -0.5 : 0.5) * sigma[c];
      }
      adv[i * channels + 0] -= 3; // a drop of 3σ: effect 3 − 0.5 = 2.5
      adv[i * channels + 1] += 1.2; // 0.6σ (σ = 2): effect 0.1, consistent but below min_effect
      adv[i * channels + 2] += 1.5; // a spike of 3σ: effect 2.5
    }
    const f = layerFragility({ layer: 'l', channels, clean, adversarial: adv, control, sigma, seed: 1, fdr: 0.05, minEffect: 0.5, topFraction: 0.1 });
    expect(f.descriptive).toBe(false);
    expect(f.effect[0]).toBeCloseTo(2.5, 5);
    expect(f.effect[1]).toBeCloseTo(0.1, 5);
    expect(f.effect[2]).toBeCloseTo(2.5, 5);
    expect(f.effect[5]).toBeCloseTo(-0.5, 5);
    expect(f.scores[0]).toBeCloseTo(-3, 5);
    // Every image moves each channel the same way: of the 2^12 sign vectors only the identity and its negation reach
    // the observed |sum|, so p = 2/4096 exactly; ten equal p-values keep q = p.
    expect(f.p[0]).toBeCloseTo(2 / 4096, 12);
    expect(f.q[0]).toBeCloseTo(2 / 4096, 12);
    expect(f.fragile.flatMap((x, c) => (x ? [c] : []))).toEqual([0, 2]);
    expect([f.drops, f.spikes]).toEqual([1, 1]);
    expect(f.ranking.slice(0, 2).map((r) => r.channel).sort()).toEqual([0, 2]);
    // The clean top neuron (channel 0: 10) falls to 7 after the attack, below channel 1 (9 + 1.2): not retained; the
    // control's moves cancel in the mean, so it keeps the top neuron.
    expect(f.topk_retained).toBe(0);
    expect(f.topk_retained_control).toBe(1);
  });

  it('makes no claim below three images', () => {
    const f = layerFragility({ layer: 'l', channels: 2, clean: [1, 1, 1, 1], adversarial: [5, 1, 5, 1], control: [1, 1, 1, 1], sigma: [1, 1], seed: 1 });
    expect(f.descriptive).toBe(true);
    expect(f.effect[0]).toBeCloseTo(4, 6);
    expect([f.p[0], f.q[0], f.ci_low[0], f.fragile[0], f.drops + f.spikes]).toEqual([null, null, null, false, 0]);
  });
});

describe('quantile', () => {
  it('interpolates linearly between order statistics, as NumPy does', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([4, 1, 3, 2], 0.25)).toBe(1.75);
  });
});

describe('largest', () => {
  it('keeps the k largest, largest first, equal values in the items\' order — what sorting all of them gives', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    // Few distinct values, so most comparisons are ties.
    const values = Array.from({ length: 500 }, () => Math.floor(rand() * 12));
    const items = Array.from({ length: 500 }, (_, i) => (i * 37) % 500); // not in index order
    for (const k of [0, 1, 5, 16, 499, 500, 600]) {
      const sorted = items.map((item, at) => ({ item, at })).sort((a, b) => values[b.item] - values[a.item] || a.at - b.at).slice(0, k).map((x) => x.item);
      expect(largest(items, (i) => values[i], k), `k = ${k}`).toEqual(sorted);
    }
    expect(largest([3, 1, 2], (i) => [0, 5, 5, 9][i], 2)).toEqual([3, 1]);
  });
});

describe('WordNet groups', () => {
  it('groups classes by their WordNet 3.0 hypernyms', () => {
    expect(isUnder('n02443484', 'n02441326')).toBe(true); // black-footed ferret is a musteline mammal
    expect(isUnder('n04467665', 'n04490091')).toBe(true); // trailer truck is a truck
    expect(isUnder('n02510455', 'n02441326')).toBe(false); // a giant panda is not
  });

  it('the shipped hierarchy is exactly what WordNet 3.0 gives for the ImageNet classes', async () => {
    const classes: { wnid: string }[] = JSON.parse(await readFile(shared('models', 'imagenet-classes.json'), 'utf8'));
    expect(await hierarchyFor(classes.map((c) => c.wnid))).toEqual(hierarchy);
  });
});

describe('spatial coordinates on a planted square', () => {
  // 1×16×16 input → 3×3 box filter (pad 1) → "detect": channel 0 sums each 3×3 neighbourhood, so on an image that is
  // 1 on a 4×4 square (rows 8–11, cols 2–5) and 0 elsewhere it peaks (9) where the window lies inside the square.
  const bytes = tinyModel(FLOAT, [1, 16, 16], (net, x) => {
    const conv = named(net, 'detect', 'Conv', [x, net.graph.addInitializer('box', FLOAT, [1, 1, 3, 3], new Array(9).fill(1))], { pads: [1, 1, 1, 1] });
    const pooled = named(net, 'pool', 'MaxPool', [named(net, 'detect.relu', 'Relu', [conv])], { kernel_shape: [2, 2], strides: [2, 2] });
    const deeper = named(net, 'deeper', 'Conv', [pooled, net.graph.addInitializer('box2', FLOAT, [1, 1, 3, 3], new Array(9).fill(1))], { pads: [1, 1, 1, 1] });
    return net.b.op('Flatten', [deeper], { axis: 1 });
  });
  const image = new Float32Array(256);
  for (let y = 8; y < 12; y++) for (let x = 2; x < 6; x++) image[y * 16 + x] = 1;

  it('records the argmax inside the square, and the receptive fields of a conv–pool–conv stack', async () => {
    const model = await DifferentiableModel.fromBytes(bytes, { name: 'x', dims: [1, 16, 16] });
    const classifier = { model, inputDims: [1, 16, 16] } as unknown as Classifier;
    const rec = (await recordActivations(classifier, 1, async () => image, ['detect'])).get('detect')!;
    expect(rec.max[0]).toBe(9);
    const cell = rec.argmax[0];
    expect([Math.floor(cell / 16), cell % 16]).toEqual([9, 3]); // first (row-major) window fully inside the square
    expect(rec.mean[0]).toBeCloseTo((16 * 9) / 256, 6); // the box filter preserves mass: 16 ones × 9
    const fields = receptiveFields(model.prepared);
    const f = (layer: string) => fields.get(model.layers.find((l) => l.name === layer)!.tensor)!;
    expect(f('detect')).toEqual({ size: [3, 3], jump: [1, 1], start: [0, 0] });
    expect(f('pool')).toEqual({ size: [4, 4], jump: [2, 2], start: [0.5, 0.5] });
    expect(f('deeper')).toEqual({ size: [8, 8], jump: [2, 2], start: [0.5, 0.5] });
    // The patch at the argmax is the 3×3 window there, inside the square.
    expect(cellBox(f('detect'), 9, 3, 16, 16)).toEqual([8, 2, 11, 5]);
  });

  it('averages a layer over space in the graph: spatialMeans gives recordActivations\' means as [N,C]', async () => {
    const model = await DifferentiableModel.fromBytes(bytes, { name: 'x', dims: [1, 16, 16] });
    const classifier = { model, inputDims: [1, 16, 16] } as unknown as Classifier;
    const twice = new Float32Array(512);
    twice.set(image);
    twice.set(image.map((v) => 2 * v), 256);
    const means = await model.spatialMeans(twice, ['detect', 'deeper']);
    const detect = means.get('detect')!;
    expect(detect.dims).toEqual([2, 1]);
    // The box filter keeps mass: 16 ones × 9 over 256 cells, and twice that for the doubled image.
    expect(detect.data[0]).toBeCloseTo((16 * 9) / 256, 6);
    expect(detect.data[1]).toBeCloseTo((2 * 16 * 9) / 256, 6);
    const rec = await recordActivations(classifier, 2, async (i) => twice.subarray(i * 256, (i + 1) * 256), ['deeper']);
    const deeper = means.get('deeper')!;
    expect(deeper.dims).toEqual([2, 1]);
    for (let i = 0; i < 2; i++) expect(deeper.data[i]).toBeCloseTo(rec.get('deeper')!.mean[i], 5);
  });

  it('records activations without the classifier head: the program stops at the deepest layer asked for, with the maps forward() gives', async () => {
    const model = await DifferentiableModel.fromBytes(bytes, { name: 'x', dims: [1, 16, 16] });
    const { bytes: program } = buildProgramGraph(model.prepared, { activations: ['detect'], means: ['pool'], logits: false });
    const ops = Graph.decode(program).nodes.map((n) => n.opType);
    // 'deeper' and the Flatten after it lie past the deepest layer asked for ('pool'): they are not in the program.
    expect(ops).toContain('MaxPool');
    expect(ops.filter((op) => op === 'Conv')).toHaveLength(1);
    expect(ops).not.toContain('Flatten');
    const r = await model.activations(image, ['detect'], ['pool']);
    expect((r as ProgramResult).logits).toBeUndefined();
    const full = await model.forward(image, ['detect'], ['pool']);
    expect(full.logits).toHaveLength(64); // 'deeper' flattened: 8×8
    expect(Array.from(r.activations.get('detect')!.data)).toEqual(Array.from(full.activations.get('detect')!.data));
    expect(Array.from(r.means.get('pool')!.data)).toEqual(Array.from(full.means.get('pool')!.data));
    expect(Math.max(...r.activations.get('detect')!.data)).toBe(9); // the box filter inside the square
  });

  it('records a layer\'s means alone in the same pass: recordLayers\' means equal the full maps\' means, row for row across batches', async () => {
    const model = await DifferentiableModel.fromBytes(bytes, { name: 'x', dims: [1, 16, 16] });
    const classifier = { model, inputDims: [1, 16, 16] } as unknown as Classifier;
    // Image i is the square scaled by i + 1: 16 ones × 9 (the box filter keeps mass) × (i + 1) over 256 cells.
    const scaled = async (i: number) => image.map((v) => (i + 1) * v);
    // Recording reads no logits, so it must not run the program that computes them.
    const withLogits = vi.spyOn(model, 'forward');
    const rec = await recordLayers(classifier, 5, scaled, { layers: ['detect'], means: ['detect', 'deeper'] }, 2);
    expect(withLogits).not.toHaveBeenCalled();
    expect([...rec.stats.keys()]).toEqual(['detect']);
    const detect = rec.means.get('detect')!;
    expect(detect.channels).toBe(1);
    expect(Array.from(detect.values)).toEqual(Array.from({ length: 5 }, (_, i) => expect.closeTo(((i + 1) * 16 * 9) / 256, 5)));
    for (let i = 0; i < 5; i++) expect(detect.values[i]).toBeCloseTo(rec.stats.get('detect')!.mean[i], 6);
    const deeper = rec.means.get('deeper')!;
    const host = await recordActivations(classifier, 5, scaled, ['deeper'], 3);
    for (let i = 0; i < 5; i++) expect(deeper.values[i]).toBeCloseTo(host.get('deeper')!.mean[i], 5);
  });

  it('keeps every image in its place when later images load first (batches are prefetched while the model runs)', async () => {
    const model = await DifferentiableModel.fromBytes(bytes, { name: 'x', dims: [1, 16, 16] });
    const classifier = { model, inputDims: [1, 16, 16] } as unknown as Classifier;
    // Image i is the square shifted i px right, so its argmax column says which image it was.
    const shifted = (i: number) => {
      const im = new Float32Array(256);
      for (let y = 8; y < 12; y++) for (let x = 2 + i; x < 6 + i; x++) im[y * 16 + x] = 1;
      return im;
    };
    const order: number[] = [];
    // Early images resolve last: a loader that kept only arrival order would scramble them.
    const slow = (i: number) => new Promise<Float32Array>((resolve) => setTimeout(() => { order.push(i); resolve(shifted(i)); }, 2 * (7 - i)));
    const rec = (await recordActivations(classifier, 7, slow, ['detect'], 3)).get('detect')!;
    expect(Array.from(rec.argmax, (cell) => cell % 16)).toEqual([3, 4, 5, 6, 7, 8, 9]);
    expect(order.slice(0, 3)).toEqual([2, 1, 0]); // the first batch did arrive out of order
    // A failing load is reported, not lost in the prefetch.
    await expect(recordActivations(classifier, 7, async (i) => { if (i === 5) throw new Error('unreadable photo 5'); return shifted(i); }, ['detect'], 3)).rejects.toThrow('unreadable photo 5');
  });

  it('puts the heatmap centre of mass on the square and measures a shift', async () => {
    const model = await DifferentiableModel.fromBytes(bytes, { name: 'x', dims: [1, 16, 16] });
    const maps = (await model.forward(image, ['detect'])).activations.get('detect')!.data;
    const moved = new Float32Array(256);
    for (let y = 8; y < 12; y++) for (let x = 8; x < 12; x++) moved[y * 16 + x] = 1; // the square moved 6 px right
    const maps2 = (await model.forward(moved, ['detect'])).activations.get('detect')!.data;
    const field = receptiveFields(model.prepared).get(model.layers.find((l) => l.name === 'detect')!.tensor)!;
    const s = mapShift(maps, maps2, 16, 16, field);
    expect(s.com_clean![0]).toBeCloseTo(9.5, 6);
    expect(s.com_clean![1]).toBeCloseTo(3.5, 6);
    expect(s.com_shift!).toBeCloseTo(6, 6);
    expect(s.inside_clean!).toBeGreaterThan(0.5);
    expect(s.inside_adversarial!).toBe(0);
    // Upsampling onto the input grid keeps the peak at the square.
    const up = upsample(maps, 16, 16, field, 16, 16);
    expect(up[9 * 16 + 3]).toBe(9);
  });
});
