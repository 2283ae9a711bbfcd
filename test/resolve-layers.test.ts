// A spec written for two architectures resolves to each model's own layer names (pipeline/resolve-layers.ts), on the
// two real layer inventories: roles take the first listed layer the model has, `layers` may be `@role`, globs or
// `all`, a compare: block is kept only for the model it names, and whatever names no layer fails with the spec path
// before anything is computed.
import { beforeAll, describe, expect, it } from 'vitest';
import { loadClassifier } from '../src/compute/model/classifier.ts';
import type { Layer } from '../src/compute/onnx/layers.ts';
import { resolveSpecLayers } from '../src/compute/pipeline/resolve-layers.ts';
import { ExperimentSpec } from '../src/compute/pipeline/spec.ts';
import { shared } from './helpers/shared.ts';

let mobilenet: readonly Layer[];
let resnet: readonly Layer[];

beforeAll(async () => {
  mobilenet = (await loadClassifier(shared('models', 'mobilenetv2.onnx'))).model.layers;
  resnet = (await loadClassifier(shared('models', 'resnet50-random.onnx'))).model.layers;
});

const twoArchitectures = (file: string) => ({
  id: 'two-architectures',
  model: { file },
  images: { folder: 'images/imagenet-samples' },
  attacks: { any: { from: '*' } },
  roles: { middle: ['features.14.conv.1', 'layer3.2.conv3'], late: ['features.17.conv.2', 'layer4.2.conv3'] },
  layers: ['@middle', '@late'],
  patching: [{ attack: 'any', layer: '@late' }],
  compare: { id: 'int8', file: 'models/mobilenetv2-12-int8.onnx', layers: { '@middle': 'Conv_75', '@late': 'Conv_94' }, for_model: 'models/mobilenetv2.onnx' },
  featurevis: { neurons: ['@late:7'], choose: [{ ranking: 'fragile', attack: 'any', layer: '@middle', top: 1 }] },
});

const resolve = (spec: object, layers: readonly Layer[]) =>
  resolveSpecLayers(ExperimentSpec.parse(spec), (spec as { model: { file: string } }).model.file, async () => layers);

describe('a spec written for MobileNetV2 and ResNet-50', () => {
  it("resolves to MobileNetV2's layers and keeps the comparison made for it", async () => {
    const { spec, compareSkipped } = await resolve(twoArchitectures('models/mobilenetv2.onnx'), mobilenet);
    expect(spec.roles).toEqual({ middle: 'features.14.conv.1', late: 'features.17.conv.2' });
    expect(spec.layers).toEqual(['features.14.conv.1', 'features.17.conv.2']);
    expect(spec.patching[0].layer).toBe('features.17.conv.2');
    expect(spec.featurevis?.neurons).toEqual(['features.17.conv.2:7']);
    expect(spec.featurevis?.choose[0].layer).toBe('features.14.conv.1');
    expect(spec.compare?.layers).toEqual({ 'features.14.conv.1': 'Conv_75', 'features.17.conv.2': 'Conv_94' });
    expect(compareSkipped).toBeNull();
  });

  it("resolves to ResNet-50's layers after the model line alone changes, and leaves out MobileNetV2's comparison", async () => {
    const { spec, compareSkipped } = await resolve(twoArchitectures('models/resnet50-random.onnx'), resnet);
    expect(spec.roles).toEqual({ middle: 'layer3.2.conv3', late: 'layer4.2.conv3' });
    expect(spec.layers).toEqual(['layer3.2.conv3', 'layer4.2.conv3']);
    expect(spec.featurevis?.neurons).toEqual(['layer4.2.conv3:7']);
    expect(spec.compare).toBeUndefined();
    expect(compareSkipped).toBe("the spec's compare: block is written for models/mobilenetv2.onnx, not for models/resnet50-random.onnx");
  });

  it('fails on a role none of whose layers the model has, naming the role, the layers and the model', async () => {
    const spec = { ...twoArchitectures('models/resnet50-random.onnx'), roles: { middle: ['features.14.conv.1', 'layer3.9.conv3'], late: 'layer4.2.conv3' } };
    await expect(resolve(spec, resnet)).rejects.toThrow('spec roles.middle: models/resnet50-random.onnx has none of features.14.conv.1, layer3.9.conv3');
  });

  it('fails on a layer entry naming a role the spec lacks', async () => {
    const spec = { ...twoArchitectures('models/resnet50-random.onnx'), layers: ['@middle', '@early'] };
    await expect(resolve(spec, resnet)).rejects.toThrow("spec layers.1: no role 'early' in the spec's roles (middle, late)");
  });
});

describe('layers by pattern', () => {
  const patterned = (layers: string | string[]) => ({ id: 'patterns', model: { file: 'models/resnet50-random.onnx' }, images: { folder: 'x' }, layers });

  it('expands globs in network order, with `all` for every block output', async () => {
    expect((await resolve(patterned('layer4.*.conv3'), resnet)).spec.layers).toEqual(['layer4.0.conv3', 'layer4.1.conv3', 'layer4.2.conv3']);
    const all = (await resolve(patterned('all'), resnet)).spec.layers;
    expect(all).toHaveLength(16);
    expect(all.at(-1)).toBe('layer4.2');
  });

  it('keeps each layer once when patterns overlap', async () => {
    expect((await resolve(patterned(['layer4.2.conv3', 'layer4.*.conv3']), resnet)).spec.layers).toEqual(['layer4.2.conv3', 'layer4.0.conv3', 'layer4.1.conv3']);
  });

  it('fails on a glob that matches nothing', async () => {
    await expect(resolve(patterned('features.*.conv.2'), resnet)).rejects.toThrow("no [N,C,H,W] layer of models/resnet50-random.onnx matches 'features.*.conv.2'");
  });

  it('resolves a spec of plain names without loading the model', async () => {
    const spec = ExperimentSpec.parse({ ...patterned(['layer3.2.conv3']), roles: { middle: 'layer3.2.conv3' } });
    const { spec: resolved } = await resolveSpecLayers(spec, 'm', async () => { throw new Error('loaded the model'); });
    expect(resolved.layers).toEqual(['layer3.2.conv3']);
  });
});
