import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { loadImage, perturbationPng, toPng } from '../src/compute/io/image.ts';
import { encodeNpy, parseNpy, readNpy, writeNpy } from '../src/compute/io/npy.ts';
import { loadModelCard } from '../src/compute/model/model-card.ts';
import { labelFromFilename } from '../src/compute/model/classes.ts';
import { loadImageSet } from '../src/compute/pipeline/data.ts';
import { shared } from './helpers/shared.ts';

const tmp = () => mkdtemp(path.join(os.tmpdir(), 'atlas-io-'));

describe('.npy', () => {
  it('round-trips every supported dtype', () => {
    const cases = [
      new Float32Array([1.5, -2, 3.25, 0, 7, 8]),
      new Float64Array([Math.PI, -1e-300, 2, 3, 4, 5]),
      new BigInt64Array([1n, -2n, 3n, 4n, 5n, 6n]),
      new Int32Array([1, -2, 3, 4, 5, 6]),
      new Uint8Array([0, 255, 3, 4, 5, 6]),
    ];
    for (const data of cases) {
      const bytes = encodeNpy(data, [2, 3]);
      const headerEnd = bytes.indexOf(10) + 1; // the header ends with '\n'
      expect(headerEnd % 64).toBe(0);
      const back = parseNpy(bytes);
      expect(back.shape).toEqual([2, 3]);
      expect(Array.from(back.data as ArrayLike<unknown>)).toEqual(Array.from(data as ArrayLike<unknown>));
    }
  });

  it('reads numpy files written by numpy (the golden inputs)', async () => {
    const x = await readNpy(shared('golden', 'resnet50-random', 'input.npy'));
    expect(x.dtype).toBe('float32');
    expect(x.shape).toEqual([2, 3, 224, 224]);
    expect(x.data.length).toBe(2 * 3 * 224 * 224);
    for (const v of x.data as Float32Array) expect(v >= 0 && v <= 1).toBe(true);
    const logits = await readNpy(shared('golden', 'resnet50-random', 'logits.npy'));
    expect(logits.shape).toEqual([2, 1000]);
  });

  it('writes atomically and rejects what it cannot read', async () => {
    const dir = await tmp();
    const file = path.join(dir, 'a.npy');
    await writeNpy(file, new Float32Array([1, 2]), [2]);
    expect((await readNpy(file)).shape).toEqual([2]);
    await writeFile(path.join(dir, 'bad.npy'), 'not numpy');
    await expect(readNpy(path.join(dir, 'bad.npy'))).rejects.toThrow(/not a \.npy file/);
    const fortran = Buffer.from(encodeNpy(new Float32Array(4), [2, 2]));
    fortran.write('True ', fortran.indexOf('False'), 'latin1');
    expect(() => parseNpy(fortran)).toThrow(/Fortran/);
    await expect(readNpy(path.join(dir, 'missing.npy'))).rejects.toThrow(/cannot read/);
  });
});

describe('images', () => {
  it('resizes the shorter side, centre-crops like torchvision and returns CHW in [0,1]', async () => {
    const dir = await tmp();
    // 300×200: left third red, middle green, right third blue. Shorter side 200 → 100 gives 150×100, and a
    // 100-wide centre crop starts at round((150 − 100) / 2) = 25: it shows the right part of red, all green,
    // the left part of blue.
    const w = 300;
    const h = 200;
    const raw = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw[(y * w + x) * 3 + Math.floor((3 * x) / w)] = 255;
    const file = path.join(dir, 'bands.png');
    await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
    const chw = await loadImage(file, { resize: 100, crop: 100 });
    expect(chw.length).toBe(3 * 100 * 100);
    const at = (c: number, y: number, x: number) => chw[c * 100 * 100 + y * 100 + x];
    // crop column x ↔ resized column x + 25 ↔ source column ≈ 2(x + 25)
    expect(at(0, 50, 2)).toBeCloseTo(1, 1); // source ≈ 54: red
    expect(at(1, 50, 2)).toBeCloseTo(0, 1);
    expect(at(1, 50, 50)).toBeCloseTo(1, 1); // source ≈ 150: green
    expect(at(2, 50, 97)).toBeCloseTo(1, 1); // source ≈ 244: blue
    for (const v of chw) expect(v >= 0 && v <= 1).toBe(true);
  });

  it('turns greyscale into three equal channels', async () => {
    const dir = await tmp();
    const file = path.join(dir, 'grey.png');
    await sharp(Buffer.alloc(64 * 64, 77), { raw: { width: 64, height: 64, channels: 1 } }).png().toFile(file);
    const chw = await loadImage(file, { resize: 32, crop: 32 });
    for (let p = 0; p < 32 * 32; p++) {
      expect(chw[p]).toBeCloseTo(77 / 255, 5);
      expect(chw[32 * 32 + p]).toBe(chw[p]);
      expect(chw[2 * 32 * 32 + p]).toBe(chw[p]);
    }
  });

  it('drops an alpha channel the way PIL\'s convert(\'RGB\') does: transparent pixels keep their colour', async () => {
    const dir = await tmp();
    // Left half fully transparent, right half opaque, one colour everywhere: whatever the resize, every pixel is that colour.
    const w = 64;
    const raw = Buffer.alloc(w * w * 4);
    for (let p = 0; p < w * w; p++) raw.set([200, 100, 50, p % w < w / 2 ? 0 : 255], p * 4);
    const file = path.join(dir, 'alpha.png');
    await sharp(raw, { raw: { width: w, height: w, channels: 4 } }).png().toFile(file);
    for (const [resize, crop] of [[64, 64], [32, 32], [48, 40]]) {
      const chw = await loadImage(file, { resize, crop });
      const n = crop * crop;
      for (let p = 0; p < n; p += 7) expect([chw[p], chw[n + p], chw[2 * n + p]].map((v) => Math.round(v * 255)), `${resize}/${crop} pixel ${p}`).toEqual([200, 100, 50]);
    }
  });

  it('names the file when it is missing or not an image', async () => {
    const dir = await tmp();
    const bad = path.join(dir, 'photo.jpg');
    await writeFile(bad, 'not an image');
    await expect(loadImage(bad, { resize: 256, crop: 224 })).rejects.toThrow(new RegExp(`cannot read image .*photo\\.jpg`));
    await expect(loadImage(path.join(dir, 'none.jpg'), { resize: 256, crop: 224 })).rejects.toThrow(/none\.jpg/);
  });

  it('loads a real photograph and writes PNGs that read back exactly', async () => {
    const chw = await loadImage(shared('images', 'imagenet-samples', 'n02441942.jpg'), { resize: 256, crop: 224 });
    expect(chw.length).toBe(3 * 224 * 224);
    const png = await toPng(chw, 224, 224);
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([224, 224, 3]);
    for (let p = 0; p < 224 * 224; p += 97) for (let c = 0; c < 3; c++) expect(data[p * 3 + c]).toBe(Math.round(chw[c * 224 * 224 + p] * 255));
    const grey = await sharp(await perturbationPng(new Float32Array(3 * 4 * 4), 4, 4, 4 / 255)).raw().toBuffer();
    expect(new Set(grey)).toEqual(new Set([128])); // no change shows as mid-grey
  });
});

describe('model cards', () => {
  it('loads both shared cards with their class lists', async () => {
    for (const id of ['mobilenetv2', 'resnet50-random']) {
      const card = await loadModelCard(shared('models', `${id}.onnx`));
      expect(card.input.shape.slice(1)).toEqual([3, 224, 224]);
      expect(card.classList).toHaveLength(1000);
      expect(card.classList[356].name).toBe('weasel');
      expect(labelFromFilename('/x/n02441942.jpg', card.classList)).toBe(356);
      expect(labelFromFilename('/x/photo.jpg', card.classList)).toBeUndefined();
    }
  });

  it('explains what is wrong with a card in one line', async () => {
    const dir = await tmp();
    const model = path.join(dir, 'm.onnx');
    await expect(loadModelCard(model)).rejects.toThrow(/model card not found: .*m\.json/);
    await writeFile(path.join(dir, 'm.json'), '{ not json');
    await expect(loadModelCard(model)).rejects.toThrow(/not valid JSON/);
    const good = JSON.parse(await readFile(shared('models', 'mobilenetv2.json'), 'utf8'));
    await writeFile(path.join(dir, 'm.json'), JSON.stringify({ ...good, input: { ...good.input, mean: 'oops' } }));
    await expect(loadModelCard(model)).rejects.toThrow(/input\.mean/);
    await writeFile(path.join(dir, 'm.json'), JSON.stringify({ ...good, classes: 'nowhere.json' }));
    await expect(loadModelCard(model)).rejects.toThrow(/cannot read its class list/);
  });
});

describe('labels.json', () => {
  it('decodes HTML entities in credits once, where labels are read', async () => {
    const dir = await tmp();
    await writeFile(path.join(dir, 'a.jpg'), '');
    const entry = { file: 'a.jpg', index: 1, author: 'Brian O&#x27;Neil &amp; &quot;Friends&quot;', title: 'caf&eacute; &#39;ok&#39;', note: 'Ag\\303\\252ncia', source_url: 'https://x/?a=1&amp;b=2' };
    await writeFile(path.join(dir, 'labels.json'), JSON.stringify([entry]));
    const [im] = await loadImageSet('.', 'labels.json', dir);
    expect(im.meta).toEqual({ author: 'Brian O\'Neil & "Friends"', title: 'café \'ok\'', note: 'Agência', source_url: 'https://x/?a=1&b=2' });
  });

  it('names a listed file that is missing, and the labels.json that lists it', async () => {
    const dir = await tmp();
    await writeFile(path.join(dir, 'a.jpg'), '');
    await writeFile(path.join(dir, 'labels.json'), JSON.stringify([{ file: 'a.jpg', index: 1 }, { file: 'gone.jpg', index: 2 }]));
    await expect(loadImageSet('.', 'labels.json', dir)).rejects.toThrow(/labels\.json lists gone\.jpg, which is not in /);
  });
});
