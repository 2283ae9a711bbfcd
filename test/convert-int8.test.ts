// The model zoo's int8 MobileNetV2 turned into the float, torchvision-named graph the article is built from
// (src/compute/onnx/torchvision-names.ts), against ../shared/models/mobilenetv2.onnx, which was made the same way:
// the same file byte for byte (so a data directory filled by `atlas fetch` without a mirror has the same cache keys),
// the same Conv/Clip/Add names, and the same logits on sample photos.
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadImage } from '../src/compute/io/image.ts';
import { Graph } from '../src/compute/onnx/graph.ts';
import { encodeModel, decodeModel, tensorNumbers } from '../src/compute/onnx/proto.ts';
import { unpackRepeated } from '../src/compute/onnx/proto2-wire.ts';
import { int8MobileNetV2ToTorchvision, mobileNetV2ConvNames } from '../src/compute/onnx/torchvision-names.ts';
import { relativeL2, shared } from './helpers/shared.ts';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];
const D = 3 * 224 * 224;

describe('int8 MobileNetV2 → float, torchvision names', () => {
  const int8 = readFileSync(shared('models', 'mobilenetv2-12-int8.onnx'));
  const reference = readFileSync(shared('models', 'mobilenetv2.onnx'));
  let converted: ReturnType<typeof int8MobileNetV2ToTorchvision>;

  beforeAll(() => {
    converted = int8MobileNetV2ToTorchvision(int8);
  });

  it('gives ../shared/models/mobilenetv2.onnx byte for byte', () => {
    expect(converted).toMatchObject({ convs: 52, relu6: 35, residualAdds: 10 });
    expect(converted.bytes.length).toBe(reference.length);
    expect(sha256(converted.bytes)).toBe(sha256(reference));
  });

  it("names its Conv, Clip and Add nodes as the reference does: torchvision's modules", () => {
    const names = (bytes: Uint8Array, op: string) => Graph.decode(bytes).nodes.filter((n) => n.opType === op).map((n) => n.name);
    for (const op of ['Conv', 'Clip', 'Add']) expect(names(converted.bytes, op), op).toEqual(names(reference, op));
    expect(names(converted.bytes, 'Conv')).toEqual(mobileNetV2ConvNames());
    expect(names(converted.bytes, 'Add')).toEqual([3, 5, 6, 8, 9, 10, 12, 13, 15, 16].map((k) => `features.${k}`).concat('classifier.1'));
    const g = Graph.decode(converted.bytes);
    for (const clip of g.nodes.filter((n) => n.opType === 'Clip')) {
      expect(clip.name).toMatch(/^features\.\d+(\.conv\.\d)?\.relu6$/);
      expect([tensorNumbers(g.initializers.get(clip.input![1])!), tensorNumbers(g.initializers.get(clip.input![2])!)]).toEqual([[0], [6]]);
    }
    expect(g.nodes.slice(-4).map((n) => `${n.opType} ${n.name}`)).toEqual(['GlobalAveragePool avgpool', 'Flatten flatten', 'MatMul classifier.1.matmul', 'Add classifier.1']);
  });

  it('gives the reference logits on sample photos (relative error ≤ 1e-4)', async () => {
    const photos = [
      ...(JSON.parse(readFileSync(shared('images', 'imagenet-samples', 'labels.json'), 'utf8')) as { file: string }[]).filter((_, k) => k % 125 === 0).map((l) => shared('images', 'imagenet-samples', l.file)),
      ...(JSON.parse(readFileSync(shared('images', 'nips17-dev', 'labels.json'), 'utf8')) as { file: string }[]).slice(0, 4).map((l) => shared('images', 'nips17-dev', l.file)),
    ];
    const n = photos.length;
    const x = new Float32Array(n * D);
    for (let i = 0; i < n; i++) {
      const img = await loadImage(photos[i], { resize: 256, crop: 224 });
      for (let c = 0; c < 3; c++) for (let p = 0; p < 224 * 224; p++) x[i * D + c * 224 * 224 + p] = (img[c * 224 * 224 + p] - MEAN[c]) / STD[c];
    }
    const logits = async (bytes: Uint8Array) => {
      const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2 });
      const out = await s.run({ input: new ort.Tensor('float32', x, [n, 3, 224, 224]) });
      await s.release();
      return out.output.data as Float32Array;
    };
    const ours = await logits(converted.bytes);
    const ref = await logits(reference);
    for (let i = 0; i < n; i++) {
      expect(relativeL2(ours.subarray(i * 1000, (i + 1) * 1000), ref.subarray(i * 1000, (i + 1) * 1000)), photos[i]).toBeLessThanOrEqual(1e-4);
    }
  });

  it('writes repeated numbers unpacked, as the onnx Python package does (protobufjs packs them)', () => {
    const repacked = encodeModel(decodeModel(reference));
    expect(repacked.length).not.toBe(reference.length);
    expect(sha256(unpackRepeated(repacked))).toBe(sha256(reference));
  });

  it('refuses a graph that is not the int8 MobileNetV2', () => {
    expect(() => int8MobileNetV2ToTorchvision(reference)).toThrow("Conv 'features.0' does not come from a QLinearConv");
    const resnet = readFileSync(shared('models', 'resnet50-random.onnx'));
    expect(() => int8MobileNetV2ToTorchvision(resnet)).toThrow(/^expected MobileNetV2's 52 convolutions, found 53/);
  });
});
