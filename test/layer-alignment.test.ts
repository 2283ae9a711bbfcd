// Finding a layer of the main model in a second model by its activations (analysis/layer-alignment.ts): the int8
// original of MobileNetV2 names its layers by exporter index, and the hand-made map in the article's spec
// (features.14.conv.1 → Conv_75, features.17.conv.2 → Conv_94, from the two graphs' structure) is the expected answer;
// every block output finds a counterpart; an unrelated network (ResNet-50, random weights) finds none; the same
// model matches by name. The correlation itself on planted data.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { alignLayers, meanChannelCorrelation } from '../src/compute/analysis/layer-alignment.ts';
import { loadImage } from '../src/compute/io/image.ts';
import { loadClassifier, type Classifier } from '../src/compute/model/classifier.ts';
import { blockOutputs } from '../src/compute/onnx/layer-patterns.ts';
import { shared } from './helpers/shared.ts';

let float: Classifier;
let int8: Classifier;
let resnet: Classifier;
let photos: string[];

beforeAll(async () => {
  float = await loadClassifier(shared('models', 'mobilenetv2.onnx'));
  int8 = await loadClassifier(shared('models', 'mobilenetv2-12-int8.onnx'), {}, shared('models', 'mobilenetv2.json'));
  resnet = await loadClassifier(shared('models', 'resnet50-random.onnx'));
  const dir = shared('images', 'imagenet-samples');
  const labels = JSON.parse(await readFile(path.join(dir, 'labels.json'), 'utf8')) as { file: string }[];
  // Eight photos of classes far apart in the list.
  photos = labels.filter((_, k) => k % 125 === 0).map((l) => path.join(dir, l.file));
}, 120_000);

const probe = async (a: Classifier, b: Classifier) => ({
  first: await Promise.all(photos.map((p) => loadImage(p, a.preprocess))),
  second: await Promise.all(photos.map((p) => loadImage(p, b.preprocess))),
});

describe('layer alignment by activations', () => {
  it("finds the spec's hand-made int8 counterparts of the two analysed layers", async () => {
    const r = await alignLayers(float, int8, { layers: ['features.14.conv.1', 'features.17.conv.2'], probe: await probe(float, int8) });
    // Conv_75.acc is Conv_75 before its per-channel rescaling: the same tensor up to an affine map per channel.
    expect(r.map((l) => l.to?.replace(/\.acc$/, ''))).toEqual(['Conv_75', 'Conv_94']);
    for (const l of r) {
      expect(l.how).toBe('activations');
      expect(l.correlation!).toBeGreaterThan(0.95);
    }
  }, 300_000);

  it("finds every block output of MobileNetV2 in its int8 original, each a different layer", async () => {
    const blocks = blockOutputs(float.model.layers);
    const r = await alignLayers(float, int8, { layers: blocks, probe: await probe(float, int8) });
    expect(r.filter((l) => l.to === null).map((l) => l.layer)).toEqual([]);
    expect(new Set(r.map((l) => l.to)).size).toBe(blocks.length);
  }, 300_000);

  it('finds nothing of MobileNetV2 in an unrelated network, and keeps names a model shares', async () => {
    const none = await alignLayers(float, resnet, { layers: ['features.17.conv.2'], probe: await probe(float, resnet) });
    expect(none[0].to).toBeNull();
    expect(none[0].how).toBe('none');
    const same = await alignLayers(float, float, { layers: ['features.17.conv.2'], probe: await probe(float, float) });
    expect(same[0]).toEqual({ layer: 'features.17.conv.2', to: 'features.17.conv.2', correlation: null, how: 'name' });
  }, 300_000);
});

describe('mean per-channel correlation', () => {
  const n = 6;
  const x = Float64Array.from({ length: n * 2 }, (_, k) => (k % 2 === 0 ? Math.floor(k / 2) : (Math.floor(k / 2) * 7) % 5));

  it('is 1 for a per-channel affine copy and −1 for a negated one', () => {
    const affine = x.map((v, k) => (k % 2 === 0 ? 3 * v + 1 : 0.5 * v - 2));
    expect(meanChannelCorrelation(x, affine, 2, n)).toBeCloseTo(1, 12);
    expect(meanChannelCorrelation(x, x.map((v) => -v), 2, n)).toBeCloseTo(-1, 12);
  });

  it('skips a channel that is constant in either model', () => {
    const y = x.map((v, k) => (k % 2 === 0 ? v : 4));
    expect(meanChannelCorrelation(x, y, 2, n)).toBeCloseTo(1, 12);
  });
});
