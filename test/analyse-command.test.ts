// `atlas analyse --model …` end to end on real photographs and real MobileNetV2: a reference folder of 20 photos
// with labels.json, four pairs made by `atlas attack`, the outputs checked against the analyses computed here from
// the same files without the command's code path, a rerun byte for byte, and the bad inputs a user will type.
import { copyFile, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPair } from '../src/compute/analysis/analyse.ts';
import { FragilityFile, PolysemanticFile } from '../src/compute/analysis/analyse-output.ts';
import { layerFragility } from '../src/compute/analysis/fragility.ts';
import { channelSpread } from '../src/compute/analysis/neuron-stats.ts';
import { calibratedPolysemanticity } from '../src/compute/analysis/polysemantic-calibrated.ts';
import { recordActivations } from '../src/compute/analysis/record.ts';
import { controlImage } from '../src/compute/attacks/control.ts';
import { canonical } from '../src/compute/cache/stable-json.ts';
import { hwcToChw, loadImage } from '../src/compute/io/image.ts';
import { loadClassifier } from '../src/compute/model/classifier.ts';
import { createRng } from '../src/compute/random.ts';
import { atlas, expectOneLineError } from './helpers/atlas-cli.ts';
import { shared } from './helpers/shared.ts';

const MODEL = () => shared('models', 'mobilenetv2.onnx');
const SAMPLES = () => shared('images', 'imagenet-samples');
const LAYERS = ['features.14.conv.1', 'features.17.conv.2'];
const SEED = 3;



interface Label { file: string; index: number; wnid: string; name: string }

let dir: string;
let reference: string;
let attacked: string;
let labels: Label[];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'atlas-analyse-'));
  reference = path.join(dir, 'reference');
  await mkdir(reference);
  const all: Label[] = JSON.parse(await readFile(path.join(SAMPLES(), 'labels.json'), 'utf8'));
  // Every 50th class: fish, birds, dogs, insects, vehicles, devices, food — 20 photos spread over WordNet.
  labels = all.filter((_, i) => i % 50 === 0).slice(0, 20);
  for (const l of labels) await copyFile(path.join(SAMPLES(), l.file), path.join(reference, l.file));
  // Out of file order, so the test relies on the command sorting as the pipeline does.
  await writeFile(path.join(reference, 'labels.json'), JSON.stringify([...labels].reverse()));
  attacked = path.join(dir, 'attack');
  const photos = labels.slice(0, 4).map((l) => path.join(reference, l.file));
  const r = await atlas('attack', '--model', MODEL(), '--images', ...photos, '--eps', '4/255', '--alpha', '1/255', '--steps', '2', '--out', attacked);
  expect(r.code, r.stderr).toBe(0);
});

const analyseArgs = (out: string, ...extra: string[]) => [
  'analyse', '--model', MODEL(), '--reference', reference, ...LAYERS.flatMap((l) => ['--layer', l]), '--seed', String(SEED), '--out', out, ...extra,
];

describe('atlas analyse --model', () => {
  it('writes polysemantic.json and fragility.json equal to the analyses computed directly, byte-identical on a rerun', async () => {
    const out = path.join(dir, 'out');
    await mkdir(out);
    await writeFile(path.join(out, 'notes.txt'), 'mine');
    const r = await atlas(...analyseArgs(out, '--clean', attacked, '--adversarial', attacked));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/analysed in .* wrote .*polysemantic\.json and fragility\.json/);
    expect((await readdir(out)).sort()).toEqual(['fragility.json', 'notes.txt', 'polysemantic.json']);
    const fragBytes = await readFile(path.join(out, 'fragility.json'));
    const polyBytes = await readFile(path.join(out, 'polysemantic.json'));
    const frag = FragilityFile.parse(JSON.parse(fragBytes.toString()));
    const poly = PolysemanticFile.parse(JSON.parse(polyBytes.toString()));

    // Shape: the format, one object per channel per layer in channel order.
    const channels: Record<string, number> = { 'features.14.conv.1': 576, 'features.17.conv.2': 320 };
    expect(Object.keys(frag.layers).sort()).toEqual(LAYERS);
    expect(Object.keys(poly.layers).sort()).toEqual(LAYERS);
    for (const layer of LAYERS) {
      expect(frag.layers[layer].map((x) => x.channel)).toEqual([...Array(channels[layer]).keys()]);
      expect(poly.layers[layer].map((x) => x.channel)).toEqual([...Array(channels[layer]).keys()]);
    }
    expect(frag).toMatchObject({ n: 4, fdr: 0.05, seed: SEED, eps: null, reference: 20 });
    expect(poly).toMatchObject({ n: 20, fdr: 0.05, seed: SEED, top: 10 });
    const stems = labels.slice(0, 4).map((l) => l.file.replace('.jpg', '')).sort();
    expect(frag.pairs.map((p) => [p.name, p.clean, p.adversarial, p.preprocessed])).toEqual(stems.map((s) => [s, `${s}.clean.png`, `${s}.adversarial.png`, false]));
    // Two PGD steps of 1/255 (the budget 4/255 is not reached), so the control's radius is 2/255.
    for (const p of frag.pairs) expect(p.eps).toBeCloseTo(2 / 255, 9);

    // The same numbers from the analyses themselves, on inputs read here.
    const classifier = await loadClassifier(MODEL());
    const sorted = [...labels].sort((a, b) => a.file.localeCompare(b.file));
    const ref = await recordActivations(classifier, sorted.length, (i) => loadImage(path.join(reference, sorted[i].file), classifier.preprocess), LAYERS);
    const png = async (file: string) => hwcToChw(await sharp(path.join(attacked, file)).removeAlpha().raw().toBuffer(), 224, 224);
    const clean = await Promise.all(stems.map((s) => png(`${s}.clean.png`)));
    const adv = await Promise.all(stems.map((s) => png(`${s}.adversarial.png`)));
    const rng = createRng(SEED).fork('analyse');
    const control = clean.map((c, i) => controlImage(c, 'linf', 2 / 255, rng.fork(`control/${stems[i]}`)));
    const acts = async (pixels: Float32Array[]) => recordActivations(classifier, pixels.length, async (i) => pixels[i], LAYERS);
    const [ac, aa, ak] = [await acts(clean), await acts(adv), await acts(control)];
    for (const layer of LAYERS) {
      const r0 = ref.get(layer)!;
      const f = layerFragility({
        layer, channels: r0.channels, clean: ac.get(layer)!.mean, adversarial: aa.get(layer)!.mean, control: ak.get(layer)!.mean,
        sigma: channelSpread(r0.mean, r0.channels).std, seed: rng.fork(`fragility/${layer}`).uniformInt(0, 2 ** 31 - 1),
      });
      const expected = f.effect.map((effect, c) => ({
        channel: c, effect, ci: f.ci_low[c] === null ? null : [f.ci_low[c], f.ci_high[c]], p: f.p[c], q: f.q[c], fragile: f.fragile[c], signed_change: f.scores[c],
      }));
      expect(frag.layers[layer].map(({ channel, effect, ci, p, q, fragile, signed_change }) => ({ channel, effect, ci, p, q, fragile, signed_change }))).toEqual(canonical(expected));
      expect(frag.summary[layer]).toMatchObject({ descriptive: false, exact: true, fragile: f.drops + f.spikes });
      // n = 4: exact over 2³ sign patterns (up to the overall sign), smallest p 1/8: tested, but nothing can pass BH.
      expect(frag.summary[layer].permutations).toBe(8);
      expect(Math.min(...frag.layers[layer].map((x) => x.p ?? 1))).toBe(0.125);
      expect(frag.summary[layer].fragile).toBe(0);

      const pc = calibratedPolysemanticity({
        channels: r0.channels, values: r0.mean, labels: sorted.map((l) => l.index), classes: classifier.classes,
        seed: createRng(SEED).fork(`polysemantic/${layer}`).uniformInt(0, 2 ** 31 - 1),
      });
      const expectedPoly = pc.neurons.map((x) => ({ channel: x.channel, score: x.score, p: x.p, q: x.q, polysemantic: x.polysemantic, strong: x.strong.map((i) => sorted[i].file) }));
      expect(poly.layers[layer].map(({ channel, score, p, q, polysemantic, strong }) => ({ channel, score, p, q, polysemantic, strong }))).toEqual(canonical(expectedPoly));
      expect(poly.summary[layer]).toEqual({ channels: r0.channels, testable: pc.testable, polysemantic: pc.count });
      // Real channels decide their strong sets, and 20 classes give scores with p below 1 somewhere.
      expect(pc.testable).toBeGreaterThan(r0.channels * 0.9);
      expect(poly.layers[layer].some((x) => x.p !== null && x.p < 1)).toBe(true);
    }

    const again = path.join(dir, 'again');
    expect((await atlas(...analyseArgs(again, '--clean', attacked, '--adversarial', attacked))).code).toBe(0);
    expect((await readFile(path.join(again, 'fragility.json'))).equals(fragBytes)).toBe(true);
    expect((await readFile(path.join(again, 'polysemantic.json'))).equals(polyBytes)).toBe(true);

    // Without pairs, into the first folder: the same polysemantic.json, the stale fragility.json gone, notes.txt kept.
    const alone = await atlas(...analyseArgs(out));
    expect(alone.code, alone.stderr).toBe(0);
    expect((await readdir(out)).sort()).toEqual(['notes.txt', 'polysemantic.json']);
    expect((await readFile(path.join(out, 'polysemantic.json'))).equals(polyBytes)).toBe(true);
    expect(await readFile(path.join(out, 'notes.txt'), 'utf8')).toBe('mine');
  });

  it('gives photos not at the input size the model card\'s preprocessing', async () => {
    const classifier = await loadClassifier(MODEL());
    const file = path.join(reference, labels[0].file);
    const pair = await loadPair({ name: 'x', clean: file, adversarial: file }, classifier);
    expect(pair.preprocessed).toBe(true);
    expect(pair.clean).toEqual(await loadImage(file, classifier.preprocess));
  });

  it('stops bad input with one line: missing labels.json, unpaired files, unknown layer, mismatched sizes, mixed forms', async () => {
    const out = path.join(dir, 'bad-out');
    const noLabels = path.join(dir, 'no-labels');
    await mkdir(noLabels);
    await copyFile(path.join(reference, labels[0].file), path.join(noLabels, labels[0].file));
    const args = (ref: string, ...extra: string[]) => ['analyse', '--model', MODEL(), '--reference', ref, '--layer', LAYERS[0], '--out', out, ...extra];
    expectOneLineError(await atlas(...args(noLabels)), /reference folder .*no-labels has no labels\.json/);

    const cleanDir = path.join(dir, 'clean');
    const advDir = path.join(dir, 'adversarial');
    await mkdir(cleanDir);
    await mkdir(advDir);
    const [a, b] = labels.slice(0, 2).map((l) => l.file.replace('.jpg', ''));
    await copyFile(path.join(attacked, `${a}.clean.png`), path.join(cleanDir, `${a}.clean.png`));
    await copyFile(path.join(attacked, `${b}.clean.png`), path.join(cleanDir, `${b}.png`));
    await copyFile(path.join(attacked, `${a}.adversarial.png`), path.join(advDir, `${a}.adversarial.png`));
    await copyFile(path.join(attacked, `${a}.adversarial.png`), path.join(advDir, 'stray.png'));
    expectOneLineError(await atlas(...args(reference, '--clean', cleanDir, '--adversarial', advDir)),
      new RegExp(`unpaired images .*only in the clean folder .*: ${b}\\.png; only in the adversarial folder .*: stray\\.png`));

    expectOneLineError(await atlas('analyse', '--model', MODEL(), '--reference', reference, '--layer', 'features.99', '--out', out), /no layer named 'features\.99' .*did you mean: features\./);
    expectOneLineError(await atlas('analyse', '--model', MODEL(), '--reference', reference, '--layer', 'nonsense', '--out', out), /no layer named 'nonsense' .*layers include \S+.*atlas inspect/);

    const small = path.join(dir, 'small');
    await mkdir(small);
    await copyFile(path.join(attacked, `${a}.clean.png`), path.join(small, `${a}.clean.png`));
    await sharp(path.join(attacked, `${a}.adversarial.png`)).resize(200, 200).png().toFile(path.join(small, `${a}.adversarial.png`));
    expectOneLineError(await atlas(...args(reference, '--clean', small, '--adversarial', small)), /pair '.*': the clean image .* is 224×224 but the adversarial .* is 200×200/);

    expectOneLineError(await atlas(...args(reference, '--clean', attacked)), /give --clean and --adversarial together/);
    expectOneLineError(await atlas('analyse', 'content/article.experiments.yaml', '--model', MODEL()), /a spec argument belongs to the spec form/);
    expectOneLineError(await atlas('analyse', '--reference', reference, '--layer', LAYERS[0]), /--reference, --layer need --model/);
    await expect(readdir(out)).rejects.toThrow();
  });
});
