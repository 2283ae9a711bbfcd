// The spec's `roles` (what the article calls each analysed layer) and the names an attack may not take: the article
// reads layers only by role, so a role must name an analysed layer, and the spec's own collection entry (`spec`)
// and the fixed steps keep their ids.
import { describe, expect, it } from 'vitest';
import { ExperimentSpec } from '../src/compute/pipeline/spec.ts';
import { resolveValuePath } from '../src/components/value-path.ts';

const base = {
  id: 'roles-test',
  model: { file: 'models/resnet50-random.onnx' },
  images: { folder: 'images/imagenet-samples' },
  layers: ['layer3.2.conv3', 'layer4.2.conv3'],
};

function issues(spec: object): string[] {
  const r = ExperimentSpec.safeParse(spec);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('spec roles', () => {
  it('takes roles that name analysed layers, and defaults to none', () => {
    expect(issues({ ...base, roles: { middle: 'layer3.2.conv3', late: 'layer4.2.conv3' } })).toEqual([]);
    expect(ExperimentSpec.parse(base).roles).toEqual({});
  });

  it('refuses a role whose layer is not analysed, naming the role and the analysed layers', () => {
    expect(issues({ ...base, roles: { late: 'features.17.conv.2' } }))
      .toEqual(["roles.late: 'features.17.conv.2' is not among the analysed layers (layer3.2.conv3, layer4.2.conv3)"]);
  });

  it('refuses role names a path could not spell', () => {
    expect(issues({ ...base, roles: { 'Late layer': 'layer4.2.conv3' } })).toEqual(['roles.Late layer: role names use lowercase letters, digits and _ (a path spells one as [@role])']);
  });

  it("refuses an attack id that is another step's or the spec entry's", () => {
    const attack = { from: 'weasel' };
    for (const id of ['spec', 'atlas', 'comparison', 'polysemantic']) {
      expect(issues({ ...base, attacks: { [id]: attack } })).toEqual([`attacks.${id}: '${id}' names another step or the spec's own entry; choose another attack id`]);
    }
    expect(issues({ ...base, attacks: { spec_1: attack } })).toEqual([]);
  });
});

describe('a role in a <Value> path', () => {
  it('keeps `[@role]` as one key for read-value.ts to resolve', () => {
    expect(resolveValuePath('neurons_x.neurons.summary[@late].fdr')).toEqual({ entryId: 'neurons_x', path: ['neurons', 'summary', '@late', 'fdr'] });
    expect(resolveValuePath('spec.model_label')).toEqual({ entryId: 'spec', path: ['model_label'] });
  });
});
