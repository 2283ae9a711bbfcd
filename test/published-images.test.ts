// How the content loader publishes a step's images (experiments-loader.ts, publishImage): PNGs as WebP for display,
// lossy for photos and lossless for perturbation maps and feature visualizations, an attack's adversarial PNG also
// byte for byte; names fixed by content and settings, bytes the same on every run, a file already there kept. And
// how a build leaves out the images no page names (pruneUnreferencedAssets).
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { publishImage, pruneUnreferencedAssets } from '../src/content/experiments-loader.ts';
import { shared } from './helpers/shared.ts';

const tmp = () => mkdtemp(path.join(os.tmpdir(), 'atlas-images-'));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Fixture { file: string; sha: string }
let photo: Fixture;
let noise: Fixture;

/** Decoded RGB bytes of an image file. */
async function pixels(file: string): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

function psnr(a: Buffer, b: Buffer): number {
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i] - b[i]) ** 2;
  return 10 * Math.log10((255 * 255) / (se / a.length));
}

beforeAll(async () => {
  const dir = await tmp();
  // A real photograph at the attacks' size, and an amplified-perturbation-like map: every pixel's channels at
  // −ε, 0 or +ε amplified to 0, 128 or 255, from a fixed-seed generator.
  const photoPng = await sharp(shared('images', 'nips17-dev', '000b7d55b6184b08.jpg')).resize(224, 224, { fit: 'cover' }).png().toBuffer();
  const raw = Buffer.alloc(224 * 224 * 3);
  let s = 12345;
  for (let i = 0; i < raw.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    raw[i] = [0, 128, 255][(s >>> 16) % 3];
  }
  const noisePng = await sharp(raw, { raw: { width: 224, height: 224, channels: 3 } }).png().toBuffer();
  photo = { file: path.join(dir, 'photo.png'), sha: sha256(photoPng) };
  noise = { file: path.join(dir, 'noise.png'), sha: sha256(noisePng) };
  await writeFile(photo.file, photoPng);
  await writeFile(noise.file, noisePng);
});

describe('published images', () => {
  it("publishes an attack's adversarial image as WebP that looks like it, and as its exact PNG", async () => {
    const dir = await tmp();
    const out = await publishImage('attack', 'x.adversarial.png', photo.file, photo.sha, dir);
    expect(out.display).toMatch(/^[0-9a-f]{20}\.webp$/);
    expect(out.exact).toBe(`${photo.sha.slice(0, 20)}.png`);
    const shown = path.join(dir, out.display);
    expect((await sharp(shown).metadata()).format).toBe('webp');
    const [a, b] = await Promise.all([pixels(photo.file), pixels(shown)]);
    expect([b.width, b.height]).toEqual([224, 224]);
    // Lossy but close: a photo at quality 82 is ~36 dB from its PNG; 30 dB would already show.
    expect(psnr(a.data, b.data)).toBeGreaterThan(30);
    expect((await readFile(path.join(dir, out.exact!))).equals(await readFile(photo.file))).toBe(true);
    expect((await readdir(dir)).sort()).toEqual([out.display, out.exact!].sort());
  });

  it('publishes no exact PNG of clean images, or of adversarial-named images of other steps', async () => {
    const dir = await tmp();
    expect((await publishImage('attack', 'x.clean.png', photo.file, photo.sha, dir)).exact).toBeUndefined();
    expect((await publishImage('neurons', 'l_1_x.adversarial.png', photo.file, photo.sha, dir)).exact).toBeUndefined();
    expect((await readdir(dir)).every((f) => f.endsWith('.webp'))).toBe(true);
  });

  it("publishes the atlas's patch sprites lossy at a lower quality than photos, still close to the PNG", async () => {
    const dir = await tmp();
    const sprite = await publishImage('atlas', 'l_1.patches.png', photo.file, photo.sha, dir);
    const shown = await publishImage('attack', 'x.clean.png', photo.file, photo.sha, dir);
    const [a, b] = await Promise.all([pixels(photo.file), pixels(path.join(dir, sprite.display))]);
    expect(psnr(a.data, b.data)).toBeGreaterThan(30);
    const [spriteBytes, shownBytes] = await Promise.all([readFile(path.join(dir, sprite.display)), readFile(path.join(dir, shown.display))]);
    expect(spriteBytes.length).toBeLessThan(shownBytes.length);
  });

  it('publishes perturbation maps and feature visualizations losslessly', async () => {
    const dir = await tmp();
    const source = await pixels(noise.file);
    for (const [kind, name] of [['attack', 'x.perturbation.png'], ['featurevis', 'features.14.conv.1_3.png']]) {
      const out = await publishImage(kind, name, noise.file, noise.sha, dir);
      expect(out.exact).toBeUndefined();
      const shown = await pixels(path.join(dir, out.display));
      expect((await sharp(path.join(dir, out.display)).metadata()).format).toBe('webp');
      expect(shown.data.equals(source.data)).toBe(true);
    }
  });

  it('names a WebP by its PNG and its encoder settings', async () => {
    const dir = await tmp();
    const lossy = await publishImage('attack', 'x.clean.png', noise.file, noise.sha, dir);
    const lossless = await publishImage('attack', 'x.perturbation.png', noise.file, noise.sha, dir);
    const other = await publishImage('attack', 'x.clean.png', photo.file, photo.sha, dir);
    const sprite = await publishImage('atlas', 'l_1.patches.png', noise.file, noise.sha, dir);
    const again = await publishImage('neurons', 'l_1.clean.png', noise.file, noise.sha, dir);
    expect(new Set([lossy.display, lossless.display, other.display, sprite.display]).size).toBe(4);
    // The same PNG with the same settings, from another step: one file.
    expect(again.display).toBe(lossy.display);
  });

  it('writes the same bytes on every run and keeps a file that is already there', async () => {
    const [d1, d2] = await Promise.all([tmp(), tmp()]);
    const names = ['x.adversarial.png', 'x.perturbation.png'];
    for (const name of names) {
      const [a, b] = [await publishImage('attack', name, photo.file, photo.sha, d1), await publishImage('attack', name, photo.file, photo.sha, d2)];
      expect(b).toEqual(a);
      expect((await readFile(path.join(d2, a.display))).equals(await readFile(path.join(d1, a.display)))).toBe(true);
    }
    const out = await publishImage('attack', 'x.adversarial.png', photo.file, photo.sha, d1);
    await writeFile(path.join(d1, out.display), 'kept');
    await publishImage('attack', 'x.adversarial.png', photo.file, photo.sha, d1);
    expect(await readFile(path.join(d1, out.display), 'utf8')).toBe('kept');
    // No temporary files left behind.
    expect((await readdir(d1)).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('leaves out of a built site the images none of its pages, scripts or data files names', async () => {
    const out = await tmp();
    const name = (c: string) => `${c.repeat(20)}.webp`;
    await mkdir(path.join(out, '_atlas'));
    await mkdir(path.join(out, 'neurons', 'l', '3'), { recursive: true });
    for (const c of 'abcdef') await writeFile(path.join(out, '_atlas', c === 'e' ? `${'e'.repeat(20)}.png` : name(c)), c.repeat(100));
    await writeFile(path.join(out, 'index.html'), `<img src="/sub/_atlas/${name('a')}"><a href="/sub/_atlas/${'e'.repeat(20)}.png" download>`);
    await writeFile(path.join(out, 'neurons', 'l', '3', 'index.html'), `<img src="/_atlas/${name('b')}">`);
    await writeFile(path.join(out, 'grid.js'), `const thumbs=["_atlas\\/${name('c')}"];`);
    // Named only by a file that is no text a browser reads: not a reference.
    await writeFile(path.join(out, 'notes.bin'), `_atlas/${name('d')}`);
    expect(await pruneUnreferencedAssets(out)).toEqual({ files: 2, bytes: 200 });
    expect((await readdir(path.join(out, '_atlas'))).sort()).toEqual([name('a'), name('b'), name('c'), `${'e'.repeat(20)}.png`].sort());
  });
});
