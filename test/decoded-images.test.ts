// The in-process memo of decoded photos (io/decoded-images.ts): a photo served from it is the decoder's own bytes, the
// budget bounds it, and a file changed on disk is decoded again.
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { DecodedImages } from '../src/compute/io/decoded-images.ts';
import { loadImage } from '../src/compute/io/image.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'atlas-decoded-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function photo(name: string, colour: [number, number, number], width = 40, height = 30): Promise<string> {
  const file = path.join(dir, name);
  writeFileSync(file, await sharp({ create: { width, height, channels: 3, background: { r: colour[0], g: colour[1], b: colour[2] } } }).png().toBuffer());
  return file;
}

describe('decoded photos kept in memory', () => {
  it('decodes a photo once, and serves the same bytes after', async () => {
    const memo = new DecodedImages(1 << 20);
    const file = await photo('a.png', [10, 20, 30]);
    let decodes = 0;
    const decode = async () => { decodes++; return Uint8Array.from([1, 2, 3]); };
    const first = await memo.get(file, '8/8', decode);
    const second = await memo.get(file, '8/8', decode);
    expect(decodes).toBe(1);
    expect(Array.from(second)).toEqual(Array.from(first));
    // Another preprocessing of the same file is another entry.
    await memo.get(file, '16/16', decode);
    expect(decodes).toBe(2);
  });

  it('stops keeping photos at its budget instead of evicting, and decodes the rest each time', async () => {
    const memo = new DecodedImages(10);
    const files = await Promise.all([0, 1, 2].map((i) => photo(`b${i}.png`, [i * 50, 0, 0])));
    const decodes = [0, 0, 0];
    const read = (i: number) => memo.get(files[i], 'p', async () => { decodes[i]++; return new Uint8Array(4); });
    for (let pass = 0; pass < 3; pass++) for (let i = 0; i < 3; i++) await read(i);
    // 4 + 4 bytes fit in 10, the third photo never does: a scan keeps hitting the first two.
    expect(decodes).toEqual([1, 1, 3]);
    expect(memo.size).toBe(2);
  });

  it('decodes a file again when it changed on disk', async () => {
    const memo = new DecodedImages(1 << 20);
    const file = await photo('c.png', [0, 0, 0]);
    let decodes = 0;
    const decode = async () => { decodes++; return new Uint8Array(1); };
    await memo.get(file, 'p', decode);
    await photo('c.png', [255, 255, 255], 41, 30);
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    await memo.get(file, 'p', decode);
    expect(decodes).toBe(2);
  });

  it('gives loadImage the pixels of a fresh decode on the second read', async () => {
    const file = await photo('d.png', [200, 100, 50], 64, 48);
    const first = await loadImage(file, { resize: 32, crop: 32 });
    const second = await loadImage(file, { resize: 32, crop: 32 });
    expect(second).not.toBe(first); // a new array each time: callers may write into it
    expect(Array.from(second)).toEqual(Array.from(first));
    expect(second[0]).toBeCloseTo(200 / 255, 6);
    await expect(loadImage(path.join(dir, 'missing.png'), { resize: 32, crop: 32 })).rejects.toThrow(/cannot read image .*missing\.png: no such file/);
  });
});
