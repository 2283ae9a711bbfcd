// The build pipeline's promises: compute once, reuse while inputs are unchanged, recompute exactly what changed,
// survive interruption, never publish a damaged cache entry, and explain itself.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { recordActivations } from '../src/compute/analysis/record.ts';
import { loadImage } from '../src/compute/io/image.ts';
import { parseNpy } from '../src/compute/io/npy.ts';
import { loadClassifier } from '../src/compute/model/classifier.ts';
import { Graph } from '../src/compute/onnx/graph.ts';
import { NEURONS_JSON } from '../src/compute/pipeline/outputs/analysis.ts';
import { RESULTS_JSON } from '../src/compute/pipeline/outputs/attack.ts';
import { COMPARISON_JSON } from '../src/compute/pipeline/outputs/comparison.ts';
import { STEP_OUTPUTS, type StepKind } from '../src/compute/pipeline/outputs/index.ts';
import { check, type JsonOutput } from '../src/compute/pipeline/outputs/json-file.ts';
import { runPipeline, type PipelineOptions } from '../src/compute/pipeline/run-pipeline.ts';
import { COMPARISON, attackStepId, comparedStepId, neuronsStepId } from '../src/compute/pipeline/step-ids.ts';
import { probeProvider } from '../src/compute/runtime/execution-provider.ts';
import { SPEC, testProject, type TestProject } from './helpers/project.ts';
import { shared } from './helpers/shared.ts';

const CLI = path.resolve(import.meta.dirname, '../src/cli/atlas.ts');

function run(p: TestProject, extra: Partial<PipelineOptions> = {}) {
  return runPipeline({ specPath: p.spec, projectRoot: p.root, dataDir: p.data, cacheDir: p.cache, ...extra });
}

const statuses = (r: Awaited<ReturnType<typeof run>>) => Object.fromEntries(r.steps.map((s) => [s.id, s.status]));

async function entryBytes(r: Awaited<ReturnType<typeof run>>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const s of r.steps) {
    for (const f of Object.keys(s.entry!.manifest.files)) out[`${s.id}/${f}`] = (await readFile(s.entry!.file(f))).toString('base64');
  }
  return out;
}

describe('build pipeline cache', () => {
  it('computes once, then reuses; a forced recompute is byte-identical', async () => {
    const p = await testProject();
    const first = await run(p);
    expect(statuses(first)).toEqual({ weasel_to_truck: 'computed', panda_untargeted: 'computed' });
    const results = JSON.parse(await readFile(first.steps[0].entry!.file('results.json'), 'utf8'));
    expect(results.summary.n).toBe(1);
    expect(results.rows[0].file).toBe('images/two/n02441942.jpg');
    const second = await run(p);
    expect(statuses(second)).toEqual({ weasel_to_truck: 'cached', panda_untargeted: 'cached' });
    const forced = await run(p, { force: 'all' });
    expect(statuses(forced)).toEqual({ weasel_to_truck: 'computed', panda_untargeted: 'computed' });
    expect(await entryBytes(forced)).toEqual(await entryBytes(first));
  });

  it('recomputes only the step whose parameter changed, and says which parameter', async () => {
    const p = await testProject();
    await run(p);
    await writeFile(p.spec, SPEC.replace('target: trailer truck, eps: 4/255', 'target: trailer truck, eps: 8/255'));
    const plan = await run(p, { dryRun: true });
    expect(plan.steps.map((s) => [s.id, s.run, s.reason])).toEqual([
      ['weasel_to_truck', true, 'changed: params.eps'],
      ['panda_untargeted', false, 'cached'],
    ]);
    const after = await run(p);
    expect(statuses(after)).toEqual({ weasel_to_truck: 'computed', panda_untargeted: 'cached' });
    const results = JSON.parse(await readFile(after.steps[0].entry!.file('results.json'), 'utf8'));
    expect(results.params.eps).toBeCloseTo(8 / 255, 6);
  });

  it('recomputes every step when the model file changes', async () => {
    const p = await testProject();
    await run(p);
    // Same network, different bytes: a changed doc string is enough to be another model file.
    const g = Graph.decode(await readFile(shared('models', 'mobilenetv2.onnx')));
    g.model.docString = 'retrained';
    const modelPath = path.join(p.data, 'models', 'mobilenetv2.onnx');
    await (await import('node:fs/promises')).rm(modelPath);
    await writeFile(modelPath, g.encode());
    const plan = await run(p, { dryRun: true });
    expect(plan.steps.map((s) => s.reason)).toEqual(['changed: model.sha256', 'changed: model.sha256']);
    expect(statuses(await run(p))).toEqual({ weasel_to_truck: 'computed', panda_untargeted: 'computed' });
  });

  it('detects a damaged cache entry and recomputes it', async () => {
    const p = await testProject();
    const first = await run(p);
    const png = first.steps[0].entry!.file('n02441942.adversarial.png');
    const good = await readFile(png);
    await writeFile(png, Buffer.concat([good.subarray(0, 100), Buffer.from('damage'), good.subarray(106)]));
    const plan = await run(p, { dryRun: true });
    expect(plan.steps[0].reason).toBe('cache entry damaged (n02441942.adversarial.png does not match its hash)');
    const again = await run(p);
    expect(statuses(again)).toEqual({ weasel_to_truck: 'computed', panda_untargeted: 'cached' });
    expect(await readFile(png)).toEqual(good);
  });

  it('resumes after a build is killed mid-way, keeping finished steps and no partial entry', async () => {
    const p = await testProject();
    // Kill the build as soon as its first step has finished, while the second is computing.
    const child = spawn(process.execPath, [CLI, 'compute', p.spec], { env: { ...process.env, ATLAS_DATA: p.data, ATLAS_CACHE: p.cache }, cwd: p.root });
    let stderr = '';
    await new Promise<void>((resolve) => {
      child.stderr.on('data', (chunk) => {
        stderr += chunk;
        if (/done attack:weasel_to_truck/.test(stderr)) child.kill('SIGKILL');
      });
      child.on('exit', () => resolve());
    });
    expect(stderr).toMatch(/done attack:weasel_to_truck/);
    // A leftover temporary folder of a dead build must be swept, not read as an entry.
    const stale = path.join(p.cache, 'attack', '.tmp-deadbeef-999999999-0');
    await mkdir(stale, { recursive: true });
    await writeFile(path.join(stale, 'results.json'), '{ half');
    const resumed = await run(p);
    expect(statuses(resumed)).toEqual({ weasel_to_truck: 'cached', panda_untargeted: 'computed' });
    expect(existsSync(stale)).toBe(false);
    expect((await readdir(path.join(p.cache, 'attack'))).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('runs the neuron analyses after the attacks, and re-runs an analysis when its attack changes', async () => {
    const p = await testProject(SPEC + 'layers: [features.17.conv.2]\nanalysis: { groups: { mustelids: n02441326 } }\n');
    const first = await run(p);
    expect(statuses(first)).toEqual({
      weasel_to_truck: 'computed', panda_untargeted: 'computed', activations: 'computed',
      neurons_weasel_to_truck: 'computed', neurons_panda_untargeted: 'computed', polysemantic: 'computed', atlas: 'computed',
    });
    const neurons = JSON.parse(await readFile(first.steps.find((s) => s.id === 'neurons_weasel_to_truck')!.entry!.file('neurons.json'), 'utf8'));
    const layer = neurons.layers['features.17.conv.2'];
    expect(layer.fragility.scores).toHaveLength(320);
    expect(layer.stats.source_clean.n).toBe(1);
    expect(layer.heatmaps.neurons).toHaveLength(3);
    await writeFile(p.spec, (await readFile(p.spec, 'utf8')).replace('target: trailer truck, eps: 4/255', 'target: trailer truck, eps: 2/255'));
    const plan = await run(p, { dryRun: true });
    expect(Object.fromEntries(plan.steps.map((s) => [s.id, s.reason]))).toEqual({
      weasel_to_truck: 'changed: params.eps', panda_untargeted: 'cached', activations: 'cached',
      neurons_weasel_to_truck: 'changed: needs.weasel_to_truck', neurons_panda_untargeted: 'cached', polysemantic: 'cached', atlas: 'cached',
    });
    const only = await run(p, { kinds: ['polysemantic'], dryRun: true });
    expect(only.steps.map((s) => s.id)).toEqual(['activations', 'polysemantic']);
  });

  it('computes on the provider asked for, keys the cache by it, and falls back to the CPU with a notice', async () => {
    const p = await testProject();
    const first = await run(p);
    const keys = first.steps.map((s) => s.key);
    expect(JSON.parse(await readFile(first.steps[0].entry!.file('results.json'), 'utf8')).params.batch).toBeUndefined();
    const lines: string[] = [];
    // A provider that cannot start computes on the CPU, so the CPU's entries are found; one that starts is a new key.
    const status = await probeProvider('cuda');
    const again = await run(p, { provider: 'cuda', reporter: { log: (l) => lines.push(l) } });
    if (!status.available) {
      expect(lines).toContain(`cuda is not available here (${status.reason}); running on the CPU`);
      expect(statuses(again)).toEqual({ weasel_to_truck: 'cached', panda_untargeted: 'cached' });
      expect(again.steps.map((s) => s.key)).toEqual(keys);
    } else {
      expect(again.steps.every((s, k) => s.key !== keys[k] && s.status === 'computed')).toBe(true);
    }
    await expect(run(p, { provider: 'tpu' as never })).rejects.toThrow("unknown execution provider 'tpu' (ATLAS_EP or --ep): use cpu, webgpu, cuda, auto");
  });

  it('runs the same attacks on a compared model (int8 MobileNetV2) and sets the two side by side', async () => {
    const spec = `${SPEC}layers: [features.17.conv.2]
compare: { id: int8, label: MobileNetV2 int8, file: models/mobilenetv2-12-int8.onnx, card: models/mobilenetv2.json, layers: { features.17.conv.2: Conv_94 } }
`;
    const p = await testProject(spec);
    await symlink(shared('models', 'mobilenetv2-12-int8.onnx'), path.join(p.data, 'models', 'mobilenetv2-12-int8.onnx'));
    const first = await run(p);
    expect(statuses(first)).toEqual({
      weasel_to_truck: 'computed', panda_untargeted: 'computed', activations: 'computed',
      neurons_weasel_to_truck: 'computed', neurons_panda_untargeted: 'computed', polysemantic: 'computed', atlas: 'computed',
      'int8/weasel_to_truck': 'computed', 'int8/panda_untargeted': 'computed', 'int8/activations': 'computed',
      'int8/neurons_weasel_to_truck': 'computed', 'int8/neurons_panda_untargeted': 'computed', comparison: 'computed',
    });
    // Each step leaves exactly the JSON files its kind declares (src/compute/pipeline/outputs/index.ts).
    for (const s of first.steps) {
      expect(Object.keys(s.entry!.manifest.files).filter((f) => f.endsWith('.json')).sort(), s.id).toEqual(STEP_OUTPUTS[s.kind as StepKind].map((o) => o.file).sort());
    }
    const read = async <S extends z.ZodType>(id: string, output: JsonOutput<S>) =>
      check(output, JSON.parse(await readFile(first.steps.find((s) => s.id === id)!.entry!.file(output.file), 'utf8')), (problem) => `${id}: ${problem}`);
    const comparison = await read(COMPARISON, COMPARISON_JSON);
    expect(comparison.models).toEqual([{ id: 'main', label: 'mobilenetv2' }, { id: 'int8', label: 'MobileNetV2 int8' }]);
    expect(comparison.rows).toHaveLength(4);
    for (const row of comparison.rows) {
      // Recomputed here from the attack's own results and the neuron step of the same model.
      const stepOf = (id: string) => (row.model === 'main' ? id : comparedStepId('int8', id));
      const results = await read(stepOf(attackStepId(row.attack)), RESULTS_JSON);
      const rows = results.rows;
      expect(row.n).toBe(rows.length);
      expect(row.success_rate).toBeCloseTo(rows.filter((r) => r.success).length / rows.length, 6);
      expect(row.mean_linf).toBeCloseTo(rows.reduce((a, r) => a + r.linf, 0) / rows.length, 6);
      expect(row.rms_levels).toBeCloseTo(rows.reduce((a, r) => a + (r.l2 / Math.sqrt(3 * 224 * 224)) * 255, 0) / rows.length, 5);
      const before = rows.map((r) => r.top5_before[0].probability);
      const after = rows.map((r) => r.top5_after.find((q) => q.class === r.top5_before[0].class)?.probability ?? 0);
      const meanOf = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
      expect(row.clean_probability).toBeCloseTo(meanOf(before), 6);
      expect(row.adversarial_probability).toBeCloseTo(meanOf(after), 6);
      expect(row.confidence_drop).toBeCloseTo(meanOf(before.map((b, i) => b - after[i])), 6);
      expect(row.mean_l2).toBeCloseTo(meanOf(rows.map((r) => r.l2)), 6);
      // Pixels changed, from the saved PNGs: positions where some channel of the adversarial image differs.
      const entry = first.steps.find((s) => s.id === stepOf(attackStepId(row.attack)))!.entry!;
      const changed = await Promise.all(rows.map(async (r) => {
        const [c, a] = await Promise.all([r.images.clean, r.images.adversarial].map((f) => sharp(entry.file(f)).removeAlpha().raw().toBuffer()));
        let k = 0;
        for (let i = 0; i < c.length; i += 3) if (c[i] !== a[i] || c[i + 1] !== a[i + 1] || c[i + 2] !== a[i + 2]) k++;
        return k / (c.length / 3);
      }));
      expect(row.changed_pixels).toBeCloseTo(meanOf(changed), 6);
      expect(row.changed_pixels).toBeGreaterThan(0);
      const neurons = await read(stepOf(neuronsStepId(row.attack)), NEURONS_JSON);
      const layer = neurons.layers[row.model === 'main' ? 'features.17.conv.2' : 'Conv_94'].fragility;
      expect(row.fragile['features.17.conv.2']).toEqual({ drops: layer.drops, spikes: layer.spikes, channels: 320, descriptive: layer.descriptive });
    }
    for (const m of ['main', 'int8']) {
      const own = comparison.rows.filter((r) => r.model === m);
      const n = own.reduce((a, r) => a + r.n, 0);
      expect(comparison.summary[m].n).toBe(n);
      expect(comparison.summary[m].success_rate).toBeCloseTo(own.reduce((a, r) => a + r.n * r.success_rate, 0) / n, 6);
      expect(comparison.summary[m].confidence_drop).toBeCloseTo(own.reduce((a, r) => a + r.n * r.confidence_drop, 0) / n, 6);
    }
    // Two different models: the int8 one's clean confidence is its own.
    const [main, int8] = [await read('panda_untargeted', RESULTS_JSON), await read(comparedStepId('int8', 'panda_untargeted'), RESULTS_JSON)];
    expect(int8.rows[0].top5_before[0].probability).not.toBe(main.rows[0].top5_before[0].probability);
    expect(int8.params).toEqual(main.params);
    const second = await run(p);
    expect(second.steps.every((s) => s.status === 'cached')).toBe(true);
    await writeFile(p.spec, spec.replace('features.17.conv.2: Conv_94', 'features.14.conv.1: Conv_75'));
    await expect(run(p)).rejects.toThrow("compare.layers: 'features.14.conv.1' not in the spec's layers (features.17.conv.2)");
  });

  it('takes depth\'s σ in the activations pass, through the layers the depth step tests, for both models', async () => {
    const spec = `${SPEC}layers: [features.17.conv.2]
analysis: { reference: images/imagenet-samples, max_reference_images: 6 }
depth: [features.16.conv.2, features.17.conv.2]
compare: { id: int8, label: MobileNetV2 int8, file: models/mobilenetv2-12-int8.onnx, card: models/mobilenetv2.json, layers: { features.17.conv.2: Conv_94 } }
`;
    const p = await testProject(spec);
    await symlink(shared('models', 'mobilenetv2-12-int8.onnx'), path.join(p.data, 'models', 'mobilenetv2-12-int8.onnx'));
    await symlink(shared('images', 'imagenet-samples'), path.join(p.data, 'images', 'imagenet-samples'));
    const r = await run(p);
    const entry = (id: string) => r.steps.find((s) => s.id === id)!.entry!;
    const json = async (id: string, file: string) => JSON.parse(await readFile(entry(id).file(file), 'utf8'));
    const npy = async (id: string, file: string) => parseNpy(await readFile(entry(id).file(file)));
    const models = [
      { activations: 'activations', depth: 'depth', file: 'mobilenetv2.onnx' },
      { activations: comparedStepId('int8', 'activations'), depth: comparedStepId('int8', 'depth'), file: 'mobilenetv2-12-int8.onnx' },
    ];
    for (const m of models) {
      const acts = await json(m.activations, 'activations.json');
      const tested = (await json(m.depth, 'depth.json')).layers.map((l: { layer: string }) => l.layer);
      expect(tested).toHaveLength(2);
      expect(acts.depth.layers.map((l: { layer: string }) => l.layer), m.activations).toEqual(tested);
      // σ recomputed here, independently of the step: the 6 reference photos through the model, each channel's
      // spatial mean averaged in JavaScript from the full maps, then the population σ in two passes.
      const classifier = await loadClassifier(shared('models', m.file), {}, shared('models', 'mobilenetv2.json'));
      const photos = acts.images.map((im: { name: string }) => path.join(p.data, im.name));
      expect(photos).toHaveLength(6);
      const recorded = await recordActivations(classifier, 6, (i) => loadImage(photos[i], classifier.preprocess), tested);
      for (const { layer, file, channels } of acts.depth.layers as { layer: string; file: string; channels: number }[]) {
        const { mean } = recorded.get(layer)!;
        const sigma = (await npy(m.activations, `${file}.sigma.npy`)).data as Float64Array;
        expect(sigma).toHaveLength(channels);
        let varying = 0;
        for (let c = 0; c < channels; c++) {
          let mu = 0;
          for (let i = 0; i < 6; i++) mu += mean[i * channels + c] / 6;
          let v = 0;
          for (let i = 0; i < 6; i++) v += (mean[i * channels + c] - mu) ** 2 / 6;
          expect(Math.abs(sigma[c] - Math.sqrt(v)), `${m.activations} ${layer}:${c}`).toBeLessThan(1e-4 * Math.max(1, Math.sqrt(v)));
          if (v > 0) varying++;
        }
        expect(varying).toBeGreaterThan(channels / 2);
      }
      await classifier.model.release();
    }
    // The int8 model's layers are the main model's, found by their activations (its nodes are named Conv_N).
    expect((await json(comparedStepId('int8', 'depth'), 'depth.json')).layers.map((l: { aligned: { layer: string } }) => l.aligned.layer)).toEqual(['features.16.conv.2', 'features.17.conv.2']);
  });

  it('says what is wrong with a spec, a missing model or an unknown class', async () => {
    const bad = await testProject(SPEC.replace('seed: 1', 'seed: 1\ncolour: blue'));
    await expect(run(bad)).rejects.toThrow(/experiments\.yaml: .*colour/);
    const noModel = await testProject(SPEC.replace('models/mobilenetv2.onnx', 'models/resnet50.onnx'));
    await expect(run(noModel)).rejects.toThrow(/model not found: .*resnet50\.onnx — put the \.onnx file and its model card there/);
    const noClass = await testProject(SPEC.replace('target: trailer truck', 'target: unicorn'));
    await expect(run(noClass)).rejects.toThrow(/attack 'weasel_to_truck': no class 'unicorn'/);
    const noImages = await testProject(SPEC.replace('from: giant panda', 'from: tench'));
    await expect(run(noImages)).rejects.toThrow(/attack 'panda_untargeted': no images of tench/);
    const badEps = await testProject(SPEC.replace('eps: 4/255, alpha: 1/255, steps: 2 }\n', 'eps: four, alpha: 1/255, steps: 2 }\n'));
    await expect(run(badEps)).rejects.toThrow(/attacks\.weasel_to_truck\.eps: expected a number such as 4\/255/);
  });

  it('says what is wrong with a compare: block', async () => {
    const compare = (block: string, layers = 'layers: [features.17.conv.2]\n') => testProject(`${SPEC}${layers}compare: ${block}\n`);
    await expect(run(await compare('{ id: main, file: models/mobilenetv2.onnx }'))).rejects.toThrow(/compare\.id: 'main' names the spec's own model/);
    await expect(run(await compare('{ id: int8/x, file: models/mobilenetv2.onnx }'))).rejects.toThrow(/compare\.id: use letters, digits, - and _/);
    await expect(run(await compare('{ id: twin, file: models/mobilenetv2.onnx, layers: { features.14.conv.1: Conv_75 } }')))
      .rejects.toThrow(/compare\.layers: 'features\.14\.conv\.1' not in the spec's layers \(features\.17\.conv\.2\)/);
    await expect(run(await compare('{ id: twin, file: models/mobilenetv2.onnx, layers: { features.14.conv.1: Conv_94, features.17.conv.2: Conv_94 } }', 'layers: [features.14.conv.1, features.17.conv.2]\n')))
      .rejects.toThrow(/compare\.layers: two layers map to 'Conv_94'/);
    await expect(run(await compare('{ id: twin, file: models/mobilenetv2.onnx, lables: {} }'))).rejects.toThrow(/compare: .*lables/);
    await expect(run(await compare('{ id: twin, file: models/missing.onnx }'))).rejects.toThrow(/model not found: .*missing\.onnx/);
    // Its label must differ from the main model's (the card id, mobilenetv2, when model.label is absent).
    await expect(run(await compare('{ id: twin, label: mobilenetv2, file: models/mobilenetv2.onnx }'))).rejects.toThrow(/compare: both models are labelled 'mobilenetv2'/);
    // A layer the compared model does not have fails its activations step, which names the model.
    const noLayer = await compare('{ id: twin, file: models/mobilenetv2.onnx, layers: { features.17.conv.2: Conv_94 } }');
    await expect(run(noLayer)).rejects.toThrow(/step twin\/activations \(compared model models\/mobilenetv2\.onnx\): no layer named 'Conv_94'/);
  });
});
