// The schemas of the steps' JSON outputs (src/compute/pipeline/outputs/): a producer cannot write a file of the wrong
// shape, and the error names the step, the file and the field; a reader gets the same check on what it reads; the
// content collection's entries are the outputs as the loader arranges them. Step ids come from step-ids.ts.
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stableJson } from '../src/compute/cache/stable-json.ts';
import type { CacheEntry } from '../src/compute/cache/store.ts';
import { NEURONS_JSON, type Neurons } from '../src/compute/pipeline/outputs/analysis.ts';
import { RESULTS_JSON, type AttackResults } from '../src/compute/pipeline/outputs/attack.ts';
import { fieldPath, readJson, writeJson } from '../src/compute/pipeline/outputs/json-file.ts';
import { attackStepId, comparedStepId, isAttackOrSweep, isComparedStepId, neuronsStepId, sweepStepId } from '../src/compute/pipeline/step-ids.ts';
import { ExperimentEntry } from '../src/content/experiment-entry.ts';

const prediction = (k: number, p: number) => ({ class: k, name: `class ${k}`, probability: p });

function results(): AttackResults {
  return {
    id: 'weasel_to_truck',
    kind: 'attack',
    params: { norm: 'linf', eps: 4 / 255, alpha: 1 / 255, steps: 2, target: 867, random_start: false, seed: 7 },
    summary: {
      n: 1, sources: ['weasel'], target: 'trailer truck', success_rate: 1, clean_top1_probability: 0.9,
      adversarial_top1_probability: 0.6, mean_linf: 4 / 255, mean_l2: 2.1,
    },
    rows: [{
      file: 'images/two/n02441942.jpg', label: 356, label_name: 'weasel', label_source: 'given', target: 867, target_name: 'trailer truck',
      top5_before: [prediction(356, 0.9)], top5_after: [prediction(867, 0.6)], success: true, linf: 4 / 255, l2: 2.1, steps: 2,
      loss_before: 0.1, loss_after: 0.5,
      images: { clean: 'n02441942.clean.png', adversarial: 'n02441942.adversarial.png', perturbation: 'n02441942.perturbation.png' },
      credit: { wnid: 'n02441942', name: 'weasel' },
    }],
  };
}

function neurons(): Neurons {
  const stats = (group: string) => ({ group, n: 1, mean: [0.5, 1], median: [0.5, 1], max: [0.5, 1] });
  const fragility = {
    layer: 'features.17.conv.2', n: 1, channels: 2, fdr: 0.05, min_effect: 0.5, sigma_floor: 0.1, ci_level: 0.95, descriptive: true,
    permutations: null, exact: null, drops: 0, spikes: 0, fragile_fraction: 0, mean_effect: 1.2, mean_adversarial_change: 1.5,
    mean_control_change: 0.3,
    ranking: [{ channel: 1, clean: 1, adversarial: 0.2, control: 0.9, score: -2.5, effect: 2.2, ci: null, p: null, q: null, fragile: false }],
    topk_retained: 1, topk_retained_control: 1, topk_target_overlap: null, topk_target_overlap_control: null, scores: [0.5, -2.5],
    effect: [0.2, 2.2], ci_low: [null, null], ci_high: [null, null], p: [null, null], q: [null, null], fragile: [false, false],
  };
  const { n, descriptive, fdr, min_effect, drops, spikes, fragile_fraction, mean_effect, mean_adversarial_change, mean_control_change,
    topk_retained, topk_retained_control, topk_target_overlap, topk_target_overlap_control } = fragility;
  return {
    attack: 'weasel_to_truck',
    n: 1,
    summary: { 'features.17.conv.2': { n, descriptive, fdr, min_effect, drops, spikes, fragile_fraction, mean_effect, mean_adversarial_change,
      mean_control_change, topk_retained, topk_retained_control, topk_target_overlap, topk_target_overlap_control } },
    layers: {
      'features.17.conv.2': {
        fragility,
        heatmaps: { scale: 3, geometry: { spatial: [7, 7], start: [15.5, 15.5], jump: [32, 32], input: [224, 224] }, neurons: [] },
        stats: { source_clean: stats('source images, clean'), source_adversarial: stats('source images, adversarial'), source_control: stats('source images, control'), target_clean: stats('target: trailer truck') },
      },
    },
  };
}

describe('step output schemas', () => {
  it('write the stable JSON of a value of the right shape', () => {
    const value = results();
    expect(new TextDecoder().decode(writeJson(RESULTS_JSON, 'weasel_to_truck', value))).toBe(stableJson(value));
  });

  it('refuse to write a wrong shape, naming the step, the file and the field', () => {
    const missing = results();
    delete (missing.rows[0].images as Partial<AttackResults['rows'][number]['images']>).adversarial;
    expect(() => writeJson(RESULTS_JSON, 'weasel_to_truck', missing))
      .toThrow(/^step weasel_to_truck: results\.json not written: does not match its schema: rows\[0\]\.images\.adversarial: Invalid input: expected string, received undefined$/);

    const wrongType = results();
    Object.assign(wrongType.rows[0], { success: 'yes' });
    expect(() => writeJson(RESULTS_JSON, 'weasel_to_truck', wrongType)).toThrow(/rows\[0\]\.success: Invalid input: expected boolean, received string/);

    // A field the schema does not know is a shape change too: the schema has to say what a file holds.
    const extra = results();
    Object.assign(extra.summary, { median_l2: 2 });
    expect(() => writeJson(RESULTS_JSON, 'int8/weasel_to_truck', extra)).toThrow(/^step int8\/weasel_to_truck: results\.json not written: .*summary: Unrecognized key: "median_l2"/);
  });

  it('check the file as written: a NaN, which JSON writes as null, is refused where the schema wants a number', () => {
    const value = neurons();
    value.layers['features.17.conv.2'].stats.target_clean!.mean[1] = NaN;
    expect(() => writeJson(NEURONS_JSON, neuronsStepId('weasel_to_truck'), value))
      .toThrow(/^step neurons_weasel_to_truck: neurons\.json not written: .*layers\["features\.17\.conv\.2"\]\.stats\.target_clean\.mean\[1\]: Invalid input: expected number, received null/);
  });

  it('say how many fields are wrong beyond the first three', () => {
    const value = neurons();
    value.layers['features.17.conv.2'].fragility.scores = ['a', 'b', 'c', 'd', 'e'] as never;
    expect(() => writeJson(NEURONS_JSON, 'neurons_x', value)).toThrow(/scores\[2\]: .*\(and 2 more\)$/);
  });

  it('check what a dependent step reads, naming the reader, the step that wrote it and its cache entry', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'atlas-outputs-'));
    const entry: CacheEntry = { dir, manifest: { kind: 'attack', key: 'k', inputs: {}, files: {} }, file: (name) => path.join(dir, name) };
    const old = results() as unknown as { params: Record<string, unknown> };
    old.params.eps = '4/255';
    await writeFile(entry.file('results.json'), JSON.stringify(old));
    await expect(readJson(RESULTS_JSON, entry, 'neurons_weasel_to_truck', 'weasel_to_truck'))
      .rejects.toThrow(`step neurons_weasel_to_truck: results.json of step weasel_to_truck (${dir}): does not match its schema: params.eps: Invalid input: expected number, received string`);
    await writeFile(entry.file('results.json'), stableJson(results()));
    expect((await readJson(RESULTS_JSON, entry, 'neurons_weasel_to_truck', 'weasel_to_truck')).rows[0].images.clean).toBe('n02441942.clean.png');
    await writeFile(entry.file('results.json'), '{ half');
    await expect(readJson(RESULTS_JSON, entry, 'comparison', 'weasel_to_truck')).rejects.toThrow(/^step comparison: cannot read results\.json of step weasel_to_truck/);
  });

  it('write field paths a reader can find in the file', () => {
    expect(fieldPath([])).toBe('(the whole file)');
    expect(fieldPath(['rows', 0, 'top5_before', 1, 'class'])).toBe('rows[0].top5_before[1].class');
    expect(fieldPath(['layers', 'features.17.conv.2', 'stats'])).toBe('layers["features.17.conv.2"].stats');
  });
});

describe('experiments collection schema', () => {
  const meta = { key: 'abc', spec: 'test-atlas', model: 'models/mobilenetv2.onnx', private: false, exact: {} };

  it('takes an attack entry with its results also at the top level, and a neurons entry under its file name', () => {
    const r = results();
    expect(ExperimentEntry.safeParse({ ...r, results: r, ...meta }).success).toBe(true);
    expect(ExperimentEntry.safeParse({ kind: 'neurons', neurons: neurons(), ...meta }).success).toBe(true);
  });

  it('refuses an entry whose outputs do not match its kind', () => {
    const parsed = ExperimentEntry.safeParse({ kind: 'neurons', neurons: results(), ...meta });
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues.map((i) => fieldPath(i.path))).toContain('neurons.n');
    expect(ExperimentEntry.safeParse({ kind: 'heatmaps', ...meta }).success).toBe(false);
  });
});

describe('step ids', () => {
  it('name every step from one place', () => {
    expect(attackStepId('weasel_to_truck')).toBe('weasel_to_truck');
    expect(neuronsStepId('weasel_to_truck')).toBe('neurons_weasel_to_truck');
    expect(sweepStepId('any_untargeted', 2)).toBe('any_untargeted_eps2');
    expect(comparedStepId('int8', neuronsStepId('panda'))).toBe('int8/neurons_panda');
    expect(isComparedStepId('int8/panda')).toBe(true);
    expect(isComparedStepId('panda')).toBe(false);
  });

  it('tell an attack’s sweep steps from other attacks whose ids start alike', () => {
    expect(isAttackOrSweep('any', 'any')).toBe(true);
    expect(isAttackOrSweep('any', sweepStepId('any', 12))).toBe(true);
    expect(isAttackOrSweep('any', 'any_untargeted')).toBe(false);
    expect(isAttackOrSweep('any', 'any_eps')).toBe(false);
    expect(isAttackOrSweep('any', 'any_epsx')).toBe(false);
    expect(isAttackOrSweep('any', neuronsStepId('any'))).toBe(false);
  });
});
