// Layers by pattern (onnx/layer-patterns.ts) on the two real graph inventories: `all` gives torchvision's block
// outputs in network order — MobileNetV2's inverted residual blocks end in their residual Add (`features.K`) where
// stride 1 keeps the shape, else in their projection convolution; ResNet-50's Bottlenecks in their final ReLU
// (`layerX.Y`) — and globs pick layers by name.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Layer } from '../src/compute/onnx/layers.ts';
import { blockOutputs, matchLayers } from '../src/compute/onnx/layer-patterns.ts';
import { loadClassifier } from '../src/compute/model/classifier.ts';
import { shared } from './helpers/shared.ts';

let mobilenet: readonly Layer[];
let resnet: readonly Layer[];

beforeAll(async () => {
  mobilenet = (await loadClassifier(shared('models', 'mobilenetv2.onnx'))).model.layers;
  resnet = (await loadClassifier(shared('models', 'resnet50-random.onnx'))).model.layers;
});

describe('layer patterns', () => {
  it("gives MobileNetV2's 19 block outputs: residual Adds where the block keeps its shape", () => {
    const residual = new Set([3, 5, 6, 8, 9, 10, 12, 13, 15, 16]);
    const expected = Array.from({ length: 19 }, (_, k) => {
      if (k === 0) return 'features.0.relu6';
      if (k === 18) return 'features.18.relu6';
      if (residual.has(k)) return `features.${k}`;
      return k === 1 ? 'features.1.conv.1' : `features.${k}.conv.2`;
    });
    expect(blockOutputs(mobilenet)).toEqual(expected);
  });

  it("gives ResNet-50's 16 Bottleneck outputs", () => {
    const expected = [[1, 3], [2, 4], [3, 6], [4, 3]].flatMap(([stage, blocks]) => Array.from({ length: blocks }, (_, b) => `layer${stage}.${b}`));
    expect(matchLayers(resnet, 'all', 'resnet50')).toEqual(expected);
  });

  it('matches globs within a name part, in network order, each layer once', () => {
    expect(matchLayers(resnet, ['layer4.*.conv3', 'layer3.2.conv3', 'layer4.2.conv3'], 'resnet50')).toEqual(['layer3.2.conv3', 'layer4.0.conv3', 'layer4.1.conv3', 'layer4.2.conv3']);
    expect(matchLayers(mobilenet, ['features.1*.conv.2'], 'mobilenetv2')).toEqual([10, 11, 12, 13, 14, 15, 16, 17].map((k) => `features.${k}.conv.2`));
  });

  it('says which pattern matched nothing, and that a graph without module paths has no blocks', () => {
    expect(() => matchLayers(resnet, ['layer5.*'], 'resnet50')).toThrow("no [N,C,H,W] layer of resnet50 matches 'layer5.*'");
    const flat = mobilenet.map((l, i) => ({ ...l, name: `Conv_${i}` }));
    expect(() => matchLayers(flat, 'all', 'int8.onnx')).toThrow(/int8\.onnx has no block outputs/);
  });
});
