// attackImages' bookkeeping on MobileNetV2: what a row says about the clean image must be about the label the attack
// climbed (its given label, or the clean top-1 when the photo has none).
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { attackImages } from '../src/compute/attacks/attack-images.ts';
import { loadImage } from '../src/compute/io/image.ts';
import { loadClassifier, type Classifier } from '../src/compute/model/classifier.ts';
import { shared } from './helpers/shared.ts';

describe('attackImages on MobileNetV2', () => {
  let classifier: Classifier;
  let pixels: Float32Array;

  beforeAll(async () => {
    classifier = await loadClassifier(shared('models', 'mobilenetv2.onnx'));
    pixels = await loadImage(path.join(shared('images', 'nips17-dev'), '000b7d55b6184b08.jpg'), classifier.preprocess);
  });

  it('an unlabelled photo: the loss before the attack is the cross-entropy of its clean top-1, the label it climbed', async () => {
    const [row] = await attackImages(classifier, [{ name: 'unlabelled', pixels }], { norm: 'linf', eps: 1 / 255, alpha: 1 / 255, steps: 1, batch: 1 });
    expect(row.labelSource).toBe('prediction');
    expect(row.label).toBe(row.top5Before[0].class);
    // Cross-entropy of a class is −ln of its softmax probability, which the row reports for the top-1.
    expect(row.lossBefore).toBeCloseTo(-Math.log(row.top5Before[0].probability), 4);
  });
});
