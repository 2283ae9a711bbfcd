// The `atlas` command as a user runs it: real MobileNetV2, real photographs, and the bad inputs a user will type.
import { copyFile, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { readNpy, writeNpy } from '../src/compute/io/npy.ts';
import { atlas } from './helpers/atlas-cli.ts';
import { shared } from './helpers/shared.ts';

const MODEL = () => shared('models', 'mobilenetv2.onnx');
const photo = (wnid: string) => shared('images', 'imagenet-samples', `${wnid}.jpg`);
const WEASEL = 'n02441942';
const PANDA = 'n02510455';


const tmp = () => mkdtemp(path.join(os.tmpdir(), 'atlas-cli-'));

/** A failed command: non-zero exit, exactly one line on stderr. */
function expectOneLineError(r: { code: number; stderr: string }, pattern: RegExp) {
  expect(r.code).not.toBe(0);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^atlas: error: /);
  expect(lines[0]).toMatch(pattern);
}

describe('atlas inspect', () => {
  it('prints every analysable layer with its op and output shape', async () => {
    const r = await atlas('inspect', MODEL());
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/features\.14\.conv\.1\s+Conv\s+\[N,576,7,7\]/);
    expect(r.stdout).toMatch(/features\.14\.conv\.1\.relu6\s+Clip\s+\[N,576,7,7\]/);
    expect(r.stdout).toMatch(/classifier\.1\s+Add\s+\[N,1000\]/);
    const json = JSON.parse((await atlas('inspect', MODEL(), '--json')).stdout);
    expect(json.layers.length).toBeGreaterThan(100);
  });

  it('refuses a model without a card', async () => {
    const dir = await tmp();
    await copyFile(MODEL(), path.join(dir, 'nocard.onnx'));
    expectOneLineError(await atlas('inspect', path.join(dir, 'nocard.onnx')), /model card not found/);
  });

  it('says what is wrong with the model itself, in one line', async () => {
    const dir = await tmp();
    const card = JSON.parse(await readFile(shared('models', 'mobilenetv2.json'), 'utf8'));
    const classes = path.resolve(path.dirname(MODEL()), card.classes);
    const withCard = async (name: string, c: object) => writeFile(path.join(dir, `${name}.json`), JSON.stringify({ ...card, classes, ...c }));
    // A missing model is a missing model, even when its card is missing too.
    expectOneLineError(await atlas('inspect', path.join(dir, 'missing.onnx')), /^atlas: error: model file not found: .*missing\.onnx$/);
    await writeFile(path.join(dir, 'random.onnx'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251)));
    await withCard('random', {});
    expectOneLineError(await atlas('inspect', path.join(dir, 'random.onnx')), /^atlas: error: not an ONNX model: .*random\.onnx$/);
    await copyFile(MODEL(), path.join(dir, 'wide.onnx'));
    await withCard('wide', { input: { ...card.input, shape: ['N', 3, 299, 299] } });
    expectOneLineError(await atlas('inspect', path.join(dir, 'wide.onnx')), /wide\.onnx: input 'input' is \[.+,3,224,224\], but input\.shape in its model card is \[N,3,299,299\]; correct the card$/);
    // A model whose output is a feature map, not class scores.
    const { tinyModel, FLOAT } = await import('./helpers/tiny-net.ts');
    await writeFile(path.join(dir, 'map.onnx'), tinyModel(FLOAT, [3, 8, 8], (net, x) => net.b.op('Conv', [x, net.weight('w', [5, 3, 1, 1])])));
    await writeFile(path.join(dir, 'map.json'), JSON.stringify({
      input: { name: 'x', shape: ['N', 3, 8, 8], range: 'unit' }, output: { name: (await import('../src/compute/onnx/graph.ts')).Graph.decode(await readFile(path.join(dir, 'map.onnx'))).outputs[0].name },
      classes: Array.from({ length: 5 }, (_, i) => ({ index: i, wnid: `n0000000${i}`, name: `c${i}` })),
    }));
    expectOneLineError(await atlas('inspect', path.join(dir, 'map.onnx')), /the model's output must be class scores \[N, K\]: .*map\.onnx's output '.+' is \[N,5,8,8\]$/);
  });
});

describe('atlas grad', () => {
  it('writes d(objective)/d(pixels) as float32 .npy, from images or from .npy', async () => {
    const dir = await tmp();
    const out = path.join(dir, 'g.npy');
    const r = await atlas('grad', '--model', MODEL(), '--input', photo(WEASEL), photo(PANDA), '--objective', 'ce:356,388', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const g = await readNpy(out);
    expect(g.dtype).toBe('float32');
    expect(g.shape).toEqual([2, 3, 224, 224]);
    expect((g.data as Float32Array).some((v) => v !== 0)).toBe(true);

    const x = path.join(dir, 'x.npy');
    await writeNpy(x, Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => (i % 255) / 255), [1, 3, 224, 224]);
    const r2 = await atlas('grad', '--model', MODEL(), '--input', x, '--objective', 'channel:features.14.conv.1:37+0.5*logit:388', '--out', out, '--force');
    expect(r2.code, r2.stderr).toBe(0);
    expect((await readNpy(out)).shape).toEqual([1, 3, 224, 224]);
  });

  it('rejects unknown layers, out-of-range channels and missing labels', async () => {
    const dir = await tmp();
    const out = path.join(dir, 'g.npy');
    expectOneLineError(await atlas('grad', '--model', MODEL(), '--input', photo(WEASEL), '--objective', 'channel:features.99:1', '--out', out), /no layer named 'features\.99'/);
    expectOneLineError(await atlas('grad', '--model', MODEL(), '--input', photo(WEASEL), '--objective', 'channel:features.14.conv.1:9999', '--out', out), /out of range/);
    const unlabelled = path.join(dir, 'photo.jpg');
    await copyFile(photo(WEASEL), unlabelled);
    expectOneLineError(await atlas('grad', '--model', MODEL(), '--input', unlabelled, '--objective', 'ce', '--out', out), /needs one label per image/);
    expect(await readdir(dir)).not.toContain('g.npy');
  });
});

describe('atlas attack', () => {
  it('attacks photographs and writes PNGs and results.json, each saved image within eps on the 8-bit grid', async () => {
    const dir = await tmp();
    const out = path.join(dir, 'weasel-to-truck');
    const r = await atlas('attack', '--model', MODEL(), '--images', photo(WEASEL), photo(PANDA), '--target', 'trailer truck', '--eps', '4/255', '--alpha', '1/255', '--steps', '10', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/step 10\/10/); // progress on stderr
    const results = JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8'));
    expect(results).toHaveLength(2);
    const [weasel, panda] = results;
    expect(weasel.label).toBe(356);
    expect(panda.label).toBe(388);
    for (const res of results) {
      for (const key of ['file', 'label', 'top5_before', 'top5_after', 'success', 'linf', 'l2', 'steps']) expect(res).toHaveProperty(key);
      expect(res.top5_before).toHaveLength(5);
      expect(res.top5_after[0]).toHaveProperty('probability');
      expect(res.steps).toBe(10);
      expect(res.linf).toBeLessThanOrEqual(4 / 255 + 1e-6);
      // success means the saved image is classified as the target
      expect(res.success).toBe(res.top5_after[0].class === 867);
      const clean = await sharp(path.join(out, res.images.clean)).raw().toBuffer();
      const adv = await sharp(path.join(out, res.images.adversarial)).raw().toBuffer();
      let maxDiff = 0;
      for (let k = 0; k < clean.length; k++) maxDiff = Math.max(maxDiff, Math.abs(clean[k] - adv[k]));
      expect(maxDiff).toBeLessThanOrEqual(4);
      expect(maxDiff).toBeGreaterThan(0);
    }
    // 10 steps of 1/255 move MobileNetV2 to the target on these photos (measured: p(trailer truck) ≈ 0.97).
    expect(weasel.success).toBe(true);
  });

  it('attacks a .npy batch untargeted, with a seeded random start that reproduces', async () => {
    const dir = await tmp();
    const x = path.join(dir, 'x.npy');
    const pixels = new Float32Array(2 * 3 * 224 * 224);
    pixels.set(await (await import('../src/compute/io/image.ts')).loadImage(photo(WEASEL), { resize: 256, crop: 224 }));
    pixels.set(await (await import('../src/compute/io/image.ts')).loadImage(photo(PANDA), { resize: 256, crop: 224 }), 3 * 224 * 224);
    await writeNpy(x, pixels, [2, 3, 224, 224]);
    const args = ['attack', '--model', MODEL(), '--input', x, '--labels', '356,388', '--steps', '2', '--random-start', '--seed', '3'];
    const a = await atlas(...args, '--out', path.join(dir, 'a'));
    const b = await atlas(...args, '--out', path.join(dir, 'b'));
    expect(a.code, a.stderr).toBe(0);
    expect(b.code).toBe(0);
    const ra = JSON.parse(await readFile(path.join(dir, 'a', 'results.json'), 'utf8'));
    const rb = JSON.parse(await readFile(path.join(dir, 'b', 'results.json'), 'utf8'));
    expect(ra).toEqual(rb);
    expect(await readFile(path.join(dir, 'a', 'x-0.adversarial.png'))).toEqual(await readFile(path.join(dir, 'b', 'x-0.adversarial.png')));
    // untargeted success: the top-1 moved away from the clean top-1
    for (const r of ra) expect(r.success).toBe(r.top5_after[0].class !== r.top5_before[0].class);
  });

  it('fails in one line, leaving nothing behind, on bad input', async () => {
    const dir = await tmp();
    // In a folder that does not exist yet: it is not left behind either.
    const out = path.join(dir, 'new', 'out');
    const notImage = path.join(dir, 'n02441942.jpg');
    await writeFile(notImage, 'this is not a JPEG');
    expectOneLineError(await atlas('attack', '--model', MODEL(), '--images', notImage, '--out', out), /cannot read image .*n02441942\.jpg/);
    expectOneLineError(await atlas('attack', '--model', MODEL(), '--images', photo(WEASEL), '--eps', 'four', '--out', out), /--eps must be a number/);
    expectOneLineError(await atlas('attack', '--model', MODEL(), '--images', photo(WEASEL), '--target', '1000', '--out', out), /out of range/);
    expectOneLineError(await atlas('attack', '--model', MODEL(), '--images', photo(WEASEL), '--labels', '5000', '--out', out), /out of range/);
    expectOneLineError(await atlas('attack', '--model', path.join(dir, 'missing.onnx'), '--images', photo(WEASEL), '--out', out), /model file not found/);
    expectOneLineError(await atlas('attack', '--model', MODEL(), '--images', path.join(dir, 'nothing-here'), '--out', out), /cannot read image/);
    expect(await readdir(dir)).toEqual(['n02441942.jpg']);
  });
});

describe('atlas featurevis', () => {
  it('renders copies of neurons with diversity, and the same seed gives the same bytes', async () => {
    const [a, b] = [await tmp(), await tmp()];
    const args = ['featurevis', '--model', MODEL(), '--neuron', 'features.14.conv.1:37', 'features.17.conv.2:10:3:4', '--size', '48', '--steps', '4', '--copies', '2', '--diversity', '100', '--seed', '3'];
    const r = await atlas(...args, '--out', a);
    expect(r.code, r.stderr).toBe(0);
    expect((await readdir(a)).sort()).toEqual(['curve.json', 'featurevis.json', 'features.14.conv.1_37_copy0.png', 'features.14.conv.1_37_copy1.png', 'features.17.conv.2_10_3_4_copy0.png', 'features.17.conv.2_10_3_4_copy1.png', 'atlas-output.json'].sort());
    const summary = JSON.parse(await readFile(path.join(a, 'featurevis.json'), 'utf8'));
    expect(summary.neurons).toHaveLength(4);
    const curve = JSON.parse(await readFile(path.join(a, 'curve.json'), 'utf8')) as number[][];
    expect(curve).toHaveLength(4);
    expect(curve.flat().every(Number.isFinite)).toBe(true);
    // Copies of one neuron start from different parameters and are pushed apart: different images.
    const copy = async (dir: string, k: number) => readFile(path.join(dir, `features.14.conv.1_37_copy${k}.png`));
    expect((await copy(a, 0)).equals(await copy(a, 1))).toBe(false);
    expect((await atlas(...args, '--out', b)).code).toBe(0);
    for (const f of await readdir(a)) if (f.endsWith('.png')) expect((await readFile(path.join(b, f))).equals(await readFile(path.join(a, f))), f).toBe(true);
  });

  it('fails in one line on an unknown layer or an out-of-range channel', async () => {
    const dir = await tmp();
    expectOneLineError(await atlas('featurevis', '--model', MODEL(), '--neuron', 'features.99:1', '--steps', '1', '--out', path.join(dir, 'x')), /features\.99/);
    expectOneLineError(await atlas('featurevis', '--model', MODEL(), '--neuron', 'features.14.conv.1:5000', '--steps', '1', '--out', path.join(dir, 'y')), /5000/);
  });
});

describe('atlas providers and --ep', () => {
  it('lists every provider: the CPU timed on the model, the others timed or with the reason they cannot start', async () => {
    const r = await atlas('providers', MODEL());
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').filter((l) => !l.startsWith(' '));
    expect(lines.map((l) => l.split(':')[0])).toEqual(['cpu', 'webgpu', 'cuda']);
    expect(lines[0]).toMatch(/^cpu: forward\+backward \d+ ms at batch 1; batch \d+: \d+ MiB per image/);
    for (const line of lines.slice(1)) expect(line).toMatch(/forward\+backward \d+ ms at batch 1, gradient vs CPU [\d.e+-]+|not available — ./);
  });

  it('an unavailable provider falls back to the CPU with one notice, and the attack still runs', async () => {
    const probe = await atlas('providers');
    const missing = ['cuda', 'webgpu'].find((ep) => probe.stdout.includes(`${ep}: not available`));
    if (!missing) return console.log('every provider starts here: nothing falls back');
    const out = await tmp();
    const r = await atlas('attack', '--model', MODEL(), '--images', photo(PANDA), '--steps', '1', '--ep', missing, '--out', out);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`^atlas: ${missing} is not available here \\(.+\\); running on the CPU$`, 'm'));
    expect(r.stderr).toMatch(/^atlas: batch \d+: \d+ MiB per image/m);
    expect(JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8'))).toHaveLength(1);
  });
});
