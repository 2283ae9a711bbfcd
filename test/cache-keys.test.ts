// The cache contract: a step re-plans exactly when something its outputs depend on changed. One project with every
// kind of step (attacks and an ε sweep, activations, neuron analyses, polysemantic, feature visualization, a compared
// model and the comparison) is computed once; then each spec field that feeds a step is changed on its own, and a dry
// run must re-plan exactly the steps written out by hand below — no more (a rebuild that costs minutes for nothing) and
// no fewer (a figure that shows another model's numbers). Code is part of the key too: a comment edit re-plans
// nothing, a change inside a step's import closure re-plans it, one outside leaves it cached.
import { execFile } from 'node:child_process';
import { copyFile, cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { Graph } from '../src/compute/onnx/graph.ts';
import { runPipeline } from '../src/compute/pipeline/run-pipeline.ts';
import { PANDA, testProject, WEASEL, type TestProject } from './helpers/project.ts';
import { shared } from './helpers/shared.ts';

const REPO = path.resolve(import.meta.dirname, '..');

const BASE = {
  seed: 'seed: 1',
  model: 'model: { file: models/mobilenetv2.onnx }',
  images: 'images: { folder: images/two }',
  weasel: 'weasel_to_truck: { from: weasel, target: trailer truck, eps: 4/255, alpha: 1/255, steps: 1, eps_sweep: [2/255] }',
  panda: 'panda_untargeted: { from: giant panda, eps: 4/255, alpha: 1/255, steps: 1 }',
  layers: 'layers: [features.17.conv.2]',
  analysis: 'analysis: { reference: images/ref, max_reference_images: 3, groups: { mustelids: n02441326 } }',
  compare: 'compare: { id: int8, label: MobileNetV2 int8, file: models/mobilenetv2-12-int8.onnx, card: models/int8-card.json, layers: { features.17.conv.2: Conv_94 } }',
  featurevis: 'featurevis: { neurons: [features.17.conv.2:1], size: 16, steps: 2, batch: 1 }',
};
type Part = keyof typeof BASE;

function specOf(parts: Partial<Record<Part, string>> = {}): string {
  const p = { ...BASE, ...parts };
  return [
    'id: cache-keys', p.seed, p.model, p.images, 'attacks:', `  ${p.weasel}`, `  ${p.panda}`, p.layers, p.analysis, p.compare, p.featurevis, '',
  ].join('\n');
}

const ALL = [
  'weasel_to_truck', 'weasel_to_truck_eps0', 'panda_untargeted', 'activations', 'neurons_weasel_to_truck', 'neurons_panda_untargeted',
  'polysemantic', 'atlas', 'featurevis', 'int8/weasel_to_truck', 'int8/panda_untargeted', 'int8/activations', 'int8/neurons_weasel_to_truck',
  'int8/neurons_panda_untargeted', 'comparison',
];
const INT8 = ALL.filter((id) => id.startsWith('int8/'));
const MAIN_MODEL = ALL.filter((id) => !id.startsWith('int8/'));
const WEASEL_ATTACK = ['weasel_to_truck', 'weasel_to_truck_eps0', 'neurons_weasel_to_truck', 'int8/weasel_to_truck', 'int8/neurons_weasel_to_truck', 'comparison'];
const NEURONS = ['neurons_weasel_to_truck', 'neurons_panda_untargeted', 'int8/neurons_weasel_to_truck', 'int8/neurons_panda_untargeted', 'comparison'];
// featurevis reads the reference photos' means in its neuron's layer (features.17.conv.2, analysed) from activations.
const ACTIVATIONS_DOWN = ['activations', 'neurons_weasel_to_truck', 'neurons_panda_untargeted', 'polysemantic', 'atlas', 'featurevis', 'int8/activations', 'int8/neurons_weasel_to_truck', 'int8/neurons_panda_untargeted', 'comparison'];
const REFERENCE_DOWN = ACTIVATIONS_DOWN;

let p: TestProject;

/** labels files (written in every image folder) whose one entry differs from labels.json: folder, file, changed fields */
const LABEL_EDITS: Record<string, [string, string, Record<string, string>]> = {
  'labels-author.json': ['two', `${WEASEL}.jpg`, { author: 'A. Photographer' }],
  'labels-licence.json': ['two', `${PANDA}.jpg`, { license: 'https://creativecommons.org/licenses/by/2.0/' }],
  'labels-ref-licence.json': ['ref', `${PANDA}.jpg`, { license: 'https://creativecommons.org/licenses/by/2.0/' }],
};

async function replanned(spec: string): Promise<string[]> {
  await writeFile(p.spec, spec);
  const plan = await runPipeline({ specPath: p.spec, projectRoot: p.root, dataDir: p.data, cacheDir: p.cache, dryRun: true });
  return plan.steps.filter((s) => s.run).map((s) => s.id).sort();
}

beforeAll(async () => {
  p = await testProject(specOf());
  const models = path.join(p.data, 'models');
  await symlink(shared('models', 'mobilenetv2-12-int8.onnx'), path.join(models, 'mobilenetv2-12-int8.onnx'));
  await copyFile(shared('models', 'mobilenetv2.json'), path.join(models, 'int8-card.json'));
  // Second copies of files and folders: a spec pointing at another path with other bytes (or the same bytes under
  // another name) is a change the keys must see, or not, as written below.
  const g = Graph.decode(await readFile(shared('models', 'mobilenetv2.onnx')));
  g.model.docString = 'retrained';
  await writeFile(path.join(models, 'mobilenetv2-b.onnx'), g.encode());
  await copyFile(shared('models', 'mobilenetv2.json'), path.join(models, 'mobilenetv2-b.json'));
  const gi = Graph.decode(await readFile(shared('models', 'mobilenetv2-12-int8.onnx')));
  gi.model.docString = 'requantized';
  await writeFile(path.join(models, 'int8-b.onnx'), gi.encode());
  const card = JSON.parse(await readFile(shared('models', 'mobilenetv2.json'), 'utf8'));
  await writeFile(path.join(models, 'int8-card-b.json'), JSON.stringify({ ...card, note: 'another card' }));
  const images = path.join(p.data, 'images');
  await copyFile(path.join(images, 'two', 'labels.json'), path.join(images, 'two', 'labels-copy.json'));
  await cp(path.join(images, 'two'), path.join(images, 'two-b'), { recursive: true });
  for (const ref of ['ref', 'ref-b']) {
    await mkdir(path.join(images, ref), { recursive: true });
    const labels = [];
    for (const [wnid, index] of [[WEASEL, 356], [PANDA, 388], ['n01440764', 0]] as const) {
      await copyFile(shared('images', 'imagenet-samples', `${wnid}.jpg`), path.join(images, ref, `${wnid}.jpg`));
      labels.push({ index, wnid, file: `${wnid}.jpg` });
    }
    for (const f of ['labels.json', 'labels-copy.json', ...Object.keys(LABEL_EDITS)]) await writeFile(path.join(images, ref, f), JSON.stringify(labels));
  }
  // labels.json with one field of one entry changed (a spec's images.labels names the file in every folder it reads).
  const two = JSON.parse(await readFile(path.join(images, 'two', 'labels.json'), 'utf8')) as { file: string }[];
  for (const [f, [folder, file, field]] of Object.entries(LABEL_EDITS)) {
    const base = JSON.parse(await readFile(path.join(images, folder, 'labels.json'), 'utf8')) as { file: string }[];
    const edited = base.map((e) => (e.file === file ? { ...e, ...field } : e));
    await writeFile(path.join(images, folder, f), JSON.stringify(edited));
    if (folder !== 'two') await writeFile(path.join(images, 'two', f), JSON.stringify(two));
  }
  const first = await runPipeline({ specPath: p.spec, projectRoot: p.root, dataDir: p.data, cacheDir: p.cache });
  expect(first.steps.map((s) => s.id).sort()).toEqual([...ALL].sort());
  expect(first.steps.every((s) => s.status === 'computed')).toBe(true);
}, 600_000);

describe('cache keys follow the step graph', () => {
  it('an unchanged spec re-plans nothing', async () => {
    expect(await replanned(specOf())).toEqual([]);
  });

  const cases: [string, Partial<Record<Part, string>>, string[]][] = [
    // Activations and the atlas's photos and patches are the only steps that draw nothing at random.
    // The atlas's neuron labels draw their label shuffles from the seed.
    ['seed', { seed: 'seed: 2' }, ALL.filter((id) => !['activations', 'int8/activations'].includes(id))],
    ['model.file (other bytes)', { model: 'model: { file: models/mobilenetv2-b.onnx }' }, MAIN_MODEL],
    ['model.label', { model: 'model: { file: models/mobilenetv2.onnx, label: MobileNetV2 float }' }, ['comparison']],
    ['images.folder (same photos, other names)', { images: 'images: { folder: images/two-b }' },
      ['weasel_to_truck', 'weasel_to_truck_eps0', 'panda_untargeted', 'neurons_weasel_to_truck', 'neurons_panda_untargeted',
        'int8/weasel_to_truck', 'int8/panda_untargeted', 'int8/neurons_weasel_to_truck', 'int8/neurons_panda_untargeted', 'comparison']],
    ['images.labels (a copy with the same labels)', { images: 'images: { folder: images/two, labels: labels-copy.json }' }, []],
    // Every labels.json field an attack copies into its results (credits, licences) is part of its key: withdrawing a
    // licence must reach the article without --force.
    ['labels.json: an attacked photo\'s author', { images: 'images: { folder: images/two, labels: labels-author.json }' }, WEASEL_ATTACK],
    ['labels.json: an attacked photo\'s licence', { images: 'images: { folder: images/two, labels: labels-licence.json }' },
      ['panda_untargeted', 'neurons_panda_untargeted', 'int8/panda_untargeted', 'int8/neurons_panda_untargeted', 'comparison']],
    ['labels.json: a reference photo\'s licence', { images: 'images: { folder: images/two, labels: labels-ref-licence.json }' }, ['atlas']],
    ['attack eps', { weasel: BASE.weasel.replace('eps: 4/255', 'eps: 8/255') }, WEASEL_ATTACK],
    ['attack alpha', { weasel: BASE.weasel.replace('alpha: 1/255', 'alpha: 2/255') }, WEASEL_ATTACK],
    ['attack steps', { weasel: BASE.weasel.replace('steps: 1', 'steps: 2') }, WEASEL_ATTACK],
    ['attack target', { weasel: BASE.weasel.replace('trailer truck', 'giant panda') }, WEASEL_ATTACK],
    ['attack norm', { weasel: BASE.weasel.replace('{ from:', '{ norm: l2, from:') }, WEASEL_ATTACK],
    ['attack random_start', { weasel: BASE.weasel.replace('{ from:', '{ random_start: true, from:') }, WEASEL_ATTACK],
    ['attack batch', { weasel: BASE.weasel.replace('{ from:', '{ batch: 1, from:') }, WEASEL_ATTACK],
    ['attack from', { weasel: BASE.weasel.replace('from: weasel', 'from: [weasel, giant panda]') }, WEASEL_ATTACK],
    ['attack folder', { weasel: BASE.weasel.replace('{ from:', '{ folder: images/two-b, from:') }, WEASEL_ATTACK],
    // One photo per class: a smaller limit chooses the same image, so the outputs cannot change.
    ['attack max_images (same images chosen)', { weasel: BASE.weasel.replace('{ from:', '{ max_images: 1, from:') }, []],
    ['attack eps_sweep', { weasel: BASE.weasel.replace('eps_sweep: [2/255]', 'eps_sweep: [3/255]') }, ['weasel_to_truck_eps0']],
    ['the other attack', { panda: BASE.panda.replace('eps: 4/255', 'eps: 2/255') },
      ['panda_untargeted', 'neurons_panda_untargeted', 'int8/panda_untargeted', 'int8/neurons_panda_untargeted', 'comparison']],
    ['layers', { layers: 'layers: [features.17.conv.2, features.16.conv.2]' }, ACTIVATIONS_DOWN],
    ['analysis.reference', { analysis: BASE.analysis.replace('images/ref', 'images/ref-b') }, REFERENCE_DOWN],
    // Pooled folders in order, then the first max_reference_images: ref-b first changes the set, ref first does not.
    ['analysis.reference (two folders, another first)', { analysis: BASE.analysis.replace('reference: images/ref,', 'reference: [images/ref-b, images/ref],') }, REFERENCE_DOWN],
    ['analysis.reference (two folders, the same first)', { analysis: BASE.analysis.replace('reference: images/ref,', 'reference: [images/ref, images/ref-b],') }, []],
    ['analysis.max_reference_images', { analysis: BASE.analysis.replace('max_reference_images: 3', 'max_reference_images: 2') }, REFERENCE_DOWN],
    ['analysis.top_fraction', { analysis: BASE.analysis.replace('{ reference', '{ top_fraction: 0.2, reference') }, NEURONS],
    ['analysis.fdr', { analysis: BASE.analysis.replace('{ reference', '{ fdr: 0.1, reference') }, [...NEURONS, 'polysemantic', 'atlas']],
    ['analysis.label_permutations', { analysis: BASE.analysis.replace('{ reference', '{ label_permutations: 99, reference') }, ['atlas']],
    ['analysis.label_min_images', { analysis: BASE.analysis.replace('{ reference', '{ label_min_images: 3, reference') }, ['atlas']],
    ['analysis.min_effect', { analysis: BASE.analysis.replace('{ reference', '{ min_effect: 1, reference') }, NEURONS],
    ['analysis.groups', { analysis: BASE.analysis.replace('{ mustelids: n02441326 }', '{ mustelids: n02441326, bears: n02131653 }') }, NEURONS],
    ['analysis.percentile', { analysis: BASE.analysis.replace('{ reference', '{ percentile: 95, reference') }, ['polysemantic']],
    ['analysis.batch', { analysis: BASE.analysis.replace('{ reference', '{ batch: 4, reference') }, ACTIVATIONS_DOWN],
    ['featurevis.neurons', { featurevis: BASE.featurevis.replace(':1]', ':2]') }, ['featurevis']],
    ['featurevis.size', { featurevis: BASE.featurevis.replace('size: 16', 'size: 24') }, ['featurevis']],
    ['featurevis.steps', { featurevis: BASE.featurevis.replace('steps: 2', 'steps: 3') }, ['featurevis']],
    ['featurevis.batch', { featurevis: BASE.featurevis.replace('batch: 1', 'batch: 2') }, ['featurevis']],
    ['featurevis.param', { featurevis: BASE.featurevis.replace('{ neurons', '{ param: pixel, neurons') }, ['featurevis']],
    ['compare.file', { compare: BASE.compare.replace('mobilenetv2-12-int8.onnx', 'int8-b.onnx') }, [...INT8, 'comparison']],
    ['compare.card', { compare: BASE.compare.replace('int8-card.json', 'int8-card-b.json') }, [...INT8, 'comparison']],
    ['compare.layers', { compare: BASE.compare.replace('Conv_94', 'Conv_92') }, ['int8/activations', 'int8/neurons_weasel_to_truck', 'int8/neurons_panda_untargeted', 'comparison']],
    ['compare.label', { compare: BASE.compare.replace('MobileNetV2 int8', 'MobileNetV2 quantized') }, ['comparison']],
    // A key is of what a step computes, not of its name: the renamed attacks and activations find their entries; the
    // steps that need them list their needs by id, so they (and the comparison) re-plan.
    ['compare.id', { compare: BASE.compare.replace('id: int8', 'id: q8') }, ['q8/neurons_weasel_to_truck', 'q8/neurons_panda_untargeted', 'comparison']],
    // Figures only, but for the atlas: its patches come from the photos a public article may show.
    ['private', { seed: 'seed: 1\nprivate: true' }, ['atlas']],
  ];
  it.each(cases)('%s', async (_field, parts, expected) => {
    expect(await replanned(specOf(parts))).toEqual([...expected].sort());
  });

  it('the model card beside the main model', async () => {
    const cardPath = path.join(p.data, 'models', 'mobilenetv2.json');
    const text = await readFile(cardPath, 'utf8');
    await rm(cardPath);
    await writeFile(cardPath, JSON.stringify({ ...JSON.parse(text), note: 'edited card' }));
    try {
      expect(await replanned(specOf())).toEqual([...MAIN_MODEL].sort());
    } finally {
      await writeFile(cardPath, text);
    }
    expect(await replanned(specOf())).toEqual([]);
  });

  it('feature visualization chosen from the rankings needs them: it re-plans when the ranked attack changes', async () => {
    const choose = 'featurevis: { choose: [{ ranking: fragile, attack: weasel_to_truck, layer: features.17.conv.2, top: 2 }, { ranking: polysemantic, layer: features.17.conv.2, top: 1 }], size: 16, steps: 2, batch: 2 }';
    const spec = specOf({ featurevis: choose });
    expect(await replanned(spec)).toEqual(['featurevis']);
    const done = await runPipeline({ specPath: p.spec, projectRoot: p.root, dataDir: p.data, cacheDir: p.cache, kinds: ['featurevis'] });
    const fv = JSON.parse(await readFile(done.steps.find((s) => s.id === 'featurevis')!.entry!.file('featurevis.json'), 'utf8'));
    const neurons = JSON.parse(await readFile(done.steps.find((s) => s.id === 'neurons_weasel_to_truck')!.entry!.file('neurons.json'), 'utf8'));
    const ranking = neurons.layers['features.17.conv.2'].fragility.ranking;
    // The top two of the attack's ranking; the three reference photos are too few for a polysemanticity ranking.
    expect(fv.neurons.map((x: { channel: number }) => x.channel)).toEqual([ranking[0].channel, ranking[1].channel]);
    expect(fv.neurons[0].chosen_by).toMatch(/^rank 1 by fragility under weasel_to_truck \(effect [\d.]+σ; descriptive, n = 1\)$/);
    expect(await replanned(specOf({ featurevis: choose, weasel: BASE.weasel.replace('eps: 4/255', 'eps: 8/255') }))).toContain('featurevis');
    expect(await replanned(specOf({ featurevis: choose, panda: BASE.panda.replace('eps: 4/255', 'eps: 2/255') }))).not.toContain('featurevis');
    // Back to the base spec: everything is found cached, and the index explains later changes against it again.
    await writeFile(p.spec, specOf());
    const back = await runPipeline({ specPath: p.spec, projectRoot: p.root, dataDir: p.data, cacheDir: p.cache });
    expect(back.steps.every((s) => s.status === 'cached')).toBe(true);
  });

  it('refuses a choose rule for a layer or an attack the spec does not have', async () => {
    await expect(replanned(specOf({ featurevis: 'featurevis: { choose: [{ ranking: polysemantic, layer: features.9, top: 1 }] }' })))
      .rejects.toThrow(/featurevis\.choose\.0\.layer: 'features\.9' is not among the analysed layers \(features\.17\.conv\.2\)/);
    await expect(replanned(specOf({ featurevis: 'featurevis: { choose: [{ ranking: fragile, attack: nope, layer: features.17.conv.2, top: 1 }] }' })))
      .rejects.toThrow(/featurevis\.choose\.0\.attack: no attack 'nope' in the spec/);
  });

  it('says which field changed', async () => {
    await writeFile(p.spec, specOf({ weasel: BASE.weasel.replace('eps: 4/255', 'eps: 8/255') }));
    const plan = await runPipeline({ specPath: p.spec, projectRoot: p.root, dataDir: p.data, cacheDir: p.cache, dryRun: true });
    const reason = Object.fromEntries(plan.steps.map((s) => [s.id, s.reason]));
    expect(reason.weasel_to_truck).toBe('changed: params.eps');
    expect(reason.neurons_weasel_to_truck).toBe('changed: needs.weasel_to_truck');
    expect(reason.comparison).toBe('changed: needs.int8/neurons_weasel_to_truck, needs.int8/weasel_to_truck, needs.neurons_weasel_to_truck, needs.weasel_to_truck');
  });
});

describe('code versions follow each step\'s import closure', () => {
  const exec = promisify(execFile);
  /** A copy of the project's code (src/ and package.json, with its node_modules linked), edited by the test. */
  async function codeCopy(): Promise<string> {
    const root = await mkdtemp(path.join(os.tmpdir(), 'atlas-code-'));
    await cp(path.join(REPO, 'src'), path.join(root, 'src'), { recursive: true });
    await copyFile(path.join(REPO, 'package.json'), path.join(root, 'package.json'));
    await symlink(path.join(REPO, 'node_modules'), path.join(root, 'node_modules'));
    return root;
  }
  async function dryRun(root: string): Promise<Record<string, string>> {
    await writeFile(p.spec, specOf());
    const { stderr } = await exec(process.execPath, [path.join(root, 'src', 'cli', 'atlas.ts'), 'compute', p.spec, '--dry-run'],
      { cwd: p.root, env: { ...process.env, ATLAS_DATA: p.data, ATLAS_CACHE: p.cache } });
    return Object.fromEntries([...stderr.matchAll(/^ {2}(?:run |skip) [\w-]+:(\S+) — (.*)$/gm)].map((m) => [m[1], m[2]]));
  }
  const edit = async (root: string, file: string, f: (s: string) => string) => {
    const at = path.join(root, file);
    await writeFile(at, f(await readFile(at, 'utf8')));
  };

  it('an unchanged copy of the code finds every step cached; a comment edit in dequantize.ts re-plans nothing', async () => {
    const root = await codeCopy();
    try {
      const plan = await dryRun(root);
      expect(Object.keys(plan).sort()).toEqual([...ALL].sort());
      expect(Object.values(plan).every((r) => r === 'cached')).toBe(true);
      await edit(root, 'src/compute/onnx/dequantize.ts', (s) => s.replace(/\n/, '\n// A comment the cache must not see.\n').replace(/\{\n/, '{ \n\n'));
      expect(Object.values(await dryRun(root)).every((r) => r === 'cached')).toBe(true);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('a code change inside a step\'s closure re-plans that step and what needs it, not the others', async () => {
    const root = await codeCopy();
    try {
      // spectrum.ts is imported by the featurevis step alone.
      await edit(root, 'src/compute/featurevis/spectrum.ts', (s) => `${s}\nexport const CHANGED = 1;\n`);
      const plan = await dryRun(root);
      expect(plan.featurevis).toBe('changed: code: src/compute/featurevis/spectrum.ts');
      expect(Object.entries(plan).filter(([, r]) => r !== 'cached').map(([id]) => id)).toEqual(['featurevis']);
      // attack-report.ts is the attack step's: every attack, and through them the analyses of attacks and the comparison.
      await edit(root, 'src/compute/attacks/attack-report.ts', (s) => `${s}\nexport const CHANGED = 1;\n`);
      const again = await dryRun(root);
      expect(Object.entries(again).filter(([, r]) => r !== 'cached').map(([id]) => id).sort()).toEqual(
        ['featurevis', 'weasel_to_truck', 'weasel_to_truck_eps0', 'panda_untargeted', 'neurons_weasel_to_truck', 'neurons_panda_untargeted',
          'int8/weasel_to_truck', 'int8/panda_untargeted', 'int8/neurons_weasel_to_truck', 'int8/neurons_panda_untargeted', 'comparison'].sort());
      expect(again.weasel_to_truck).toBe('changed: code: src/compute/attacks/attack-report.ts');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('a package version is part of the closure', async () => {
    const root = await codeCopy();
    try {
      // A package of the copy's own (shadowing node_modules) with another version: what a dependency upgrade looks like.
      // pure-rand draws the attacks' random starts, the controls, the permutation nulls and the feature
      // visualizations' transforms; the activations draw nothing.
      const pkg = path.join(root, 'src', 'node_modules', 'pure-rand');
      await mkdir(pkg, { recursive: true });
      await cp(path.join(REPO, 'node_modules', 'pure-rand'), pkg, { recursive: true });
      const meta = JSON.parse(await readFile(path.join(pkg, 'package.json'), 'utf8'));
      await writeFile(path.join(pkg, 'package.json'), JSON.stringify({ ...meta, version: `${meta.version}-patched` }));
      const plan = await dryRun(root);
      expect(plan.weasel_to_truck).toBe(`changed: code: pure-rand@${meta.version}-patched`);
      expect(plan.featurevis).toBe(`changed: code: pure-rand@${meta.version}-patched`);
      expect(plan.polysemantic).toBe(`changed: code: pure-rand@${meta.version}-patched`);
      expect(plan.activations).toBe('cached');
      expect(plan['int8/activations']).toBe('cached');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
