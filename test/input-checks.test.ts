// Checks in the right place: an attack's budget is validated once, the same way, by the command line and the spec;
// names a spec gives (layers, neurons) are checked against the model when the plan is made, so a dry run catches
// them; and "did you mean" offers the names nearest a typo, wherever they are in the list.
import { describe, expect, it } from 'vitest';
import { findClass } from '../src/compute/model/classes.ts';
import { loadModelCard } from '../src/compute/model/model-card.ts';
import { findLayer, type Layer } from '../src/compute/onnx/layers.ts';
import { runPipeline } from '../src/compute/pipeline/run-pipeline.ts';
import { atlas, expectOneLineError } from './helpers/atlas-cli.ts';
import { SPEC, testProject } from './helpers/project.ts';
import { shared } from './helpers/shared.ts';

const MODEL = () => shared('models', 'mobilenetv2.onnx');
const PHOTO = () => shared('images', 'imagenet-samples', 'n02441942.jpg');

async function dryRun(spec: string) {
  const p = await testProject(spec);
  return runPipeline({ specPath: p.spec, projectRoot: p.root, dataDir: p.data, cacheDir: p.cache, dryRun: true });
}

describe('attack budgets: one check for the command line and the spec', () => {
  it('the command line refuses a negative ε, an L∞ ε above 1 and an L2 ε in 0–255 units, and accepts an ImageNet L2 budget', async () => {
    const missing = '/nonexistent/model.onnx';
    const attack = (...args: string[]) => atlas('attack', '--model', missing, '--images', PHOTO(), '--out', '/nonexistent/out', ...args);
    expectOneLineError(await attack('--eps', '-0.01'), /atlas attack --eps: ε must be a number ≥ 0 \(pixel units\), got -0\.01$/);
    expectOneLineError(await attack('--eps', '2'), /atlas attack --eps: an L∞ ε lies in \[0, 1\]/);
    expectOneLineError(await attack('--norm', 'l2', '--eps', '128'), /atlas attack --eps: an L2 ε lies in \[0, 50\] .*got 128$/);
    expectOneLineError(await attack('--alpha', '0'), /atlas attack --alpha: the step size must be positive/);
    // An L2 budget of 3 passes the budget check: the command goes on and fails on the missing model.
    expectOneLineError(await attack('--norm', 'l2', '--eps', '3', '--alpha', '0.5'), /model file not found/);
  });

  it('the spec refuses the same budgets, naming the attack, and an eps_sweep value out of range', async () => {
    const edit = (from: string, to: string) => SPEC.replace(from, to);
    await expect(dryRun(edit('eps: 4/255, alpha: 1/255, steps: 2 }\n  panda', 'eps: 2, alpha: 1/255, steps: 2 }\n  panda')))
      .rejects.toThrow(/experiments\.yaml: attacks\.weasel_to_truck\.eps: attack 'weasel_to_truck': an L∞ ε lies in \[0, 1\]/);
    await expect(dryRun(edit('{ from: giant panda, eps: 4/255', '{ from: giant panda, eps: -4/255')))
      .rejects.toThrow(/attacks\.panda_untargeted\.eps: attack 'panda_untargeted': ε must be a number ≥ 0/);
    await expect(dryRun(edit('{ from: giant panda, eps: 4/255', '{ from: giant panda, norm: l2, eps: 300')))
      .rejects.toThrow(/attacks\.panda_untargeted\.eps: attack 'panda_untargeted': an L2 ε lies in \[0, 50\]/);
    await expect(dryRun(edit('steps: 2 }\n  panda', 'steps: 2, eps_sweep: [2/255, 3] }\n  panda')))
      .rejects.toThrow(/attacks\.weasel_to_truck\.eps_sweep\.1: attack 'weasel_to_truck': an L∞ ε lies in \[0, 1\]/);
  });

  it('the spec refuses a file:// model URL in the schema, saying where a local model goes', async () => {
    await expect(dryRun(SPEC.replace('file: models/mobilenetv2.onnx', 'file: models/other.onnx\n  url: file:///tmp/other.onnx')))
      .rejects.toThrow(/experiments\.yaml: model\.url: use an http\(s\) URL; a local model goes in the data directory/);
  });
});

describe('names checked against the model when the plan is made', () => {
  it('a dry run refuses a layer the model does not have, suggesting the nearest names', async () => {
    await expect(dryRun(`${SPEC}layers: [features.16.conv.2, features.16.conv2]\n`))
      .rejects.toThrow(/experiments\.yaml: layers\.1: no layer named 'features\.16\.conv2' \(did you mean: features\.16\.conv\.2,/);
  }, 60_000);

  it('a dry run refuses a feature visualization channel out of range', async () => {
    await expect(dryRun(`${SPEC}featurevis: { neurons: [features.17.conv.2:1, features.17.conv.2:5000], size: 16, steps: 1 }\n`))
      .rejects.toThrow(/featurevis\.neurons\.1: channel 5000 of 'features\.17\.conv\.2' is out of range: the layer has channels 0\.\.319/);
  }, 60_000);
});

describe('featurevis sizes the memory cannot hold', () => {
  it('a dry run refuses a spec\'s featurevis.size, stating the largest', async () => {
    await expect(dryRun(`${SPEC}featurevis: { neurons: [features.17.conv.2:1], size: 100000, steps: 1 }\n`))
      .rejects.toThrow(/featurevis\.size 100000: 1 image\(s\) of 100000×100000 px at a time need about \d+ GiB while rendering; this machine's memory holds at most size \d+$/);
  });
});

describe('did you mean', () => {
  it('offers the layers nearest a typo, not the first ones of the list', () => {
    const layers: Layer[] = ['features.0', 'features.1', 'features.2', 'features.3', 'features.4', 'features.5', 'features.6', 'features.7', 'features.8', 'features.16.conv.2']
      .map((name) => ({ name, tensor: name, op: 'Conv', dims: [2, 8, 4, 4] }));
    expect(() => findLayer(layers, 'features.16.conv2')).toThrow(/did you mean: features\.16\.conv\.2[,)]/);
  });

  it('offers the class names nearest a typo', async () => {
    const { classList } = await loadModelCard(MODEL());
    expect(() => findClass('giant pamda', classList)).toThrow(/no class 'giant pamda' \(did you mean 'giant panda'/);
  });
});

describe('atlas featurevis --size', () => {
  it('refuses a size the memory cannot hold, stating the largest it can', async () => {
    const r = await atlas('featurevis', '--model', MODEL(), '--neuron', 'features.14.conv.1:37', '--size', '100000', '--out', '/nonexistent/out');
    expectOneLineError(r, /--size 100000: 1 image\(s\) of 100000×100000 px need about \d+ GiB while rendering; .* hold at most --size \d+ for 1 image\(s\)$/);
    const largest = Number(/at most --size (\d+)/.exec(r.stderr)![1]);
    expect(largest).toBeGreaterThanOrEqual(128);
    expect(largest).toBeLessThan(100000);
  });
});
