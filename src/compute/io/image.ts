// Images in and out with sharp. Preprocessing follows torchvision's Resize(shorter side) + CenterCrop so a crop here
// is the crop the model was evaluated on; everything leaves as [0,1] float32 CHW.
import sharp from 'sharp';
import { DecodedImages } from './decoded-images.ts';
import { LEVELS } from './levels.ts';

export interface Preprocess {
  /** shorter side after resizing */
  resize: number;
  /** side of the centre crop */
  crop: number;
}

const decoded = new DecodedImages();

/** Load an image file as [3,crop,crop] float32 in [0,1]; a photo read before in this process is not decoded again. */
export async function loadImage(path: string, { resize, crop }: Preprocess): Promise<Float32Array /* [3,crop,crop] */> {
  return hwcToChw(await decoded.get(path, `${resize}/${crop}`, () => decodeImage(path, { resize, crop })), crop, crop);
}

/** The file resized and centre-cropped, as 8-bit RGB [crop,crop,3]. */
async function decodeImage(path: string, { resize, crop }: Preprocess): Promise<Uint8Array> {
  const meta = await sharp(path).metadata().catch((err: unknown) => {
    const reason = err instanceof Error && /no such file|missing/i.test(err.message) ? 'no such file' : 'not a readable image';
    throw new Error(`cannot read image ${path}: ${reason}`);
  });
  const w0 = meta.autoOrient?.width ?? meta.width ?? 0;
  const h0 = meta.autoOrient?.height ?? meta.height ?? 0;
  if (!(w0 > 0 && h0 > 0)) throw new Error(`cannot read image ${path}: no dimensions`);
  const scale = resize / Math.min(w0, h0);
  const w = Math.max(crop, Math.round(w0 * scale));
  const h = Math.max(crop, Math.round(h0 * scale));
  // torchvision's CenterCrop offset: round((size - crop) / 2)
  const left = Math.round((w - crop) / 2);
  const top = Math.round((h - crop) / 2);
  let raw: Buffer;
  try {
    raw = await (await source(path, meta.hasAlpha === true))
      .autoOrient()
      .resize(w, h, { fit: 'fill' })
      .extract({ left, top, width: crop, height: crop })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer();
  } catch (err) {
    throw new Error(`cannot read image ${path}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
  return raw;
}

/**
 * The decoder's pipeline for `path`. An image with an alpha channel loses it first, keeping the colour stored under
 * transparent pixels, as PIL's `.convert('RGB')` (what torchvision users load images with) does; resizing it with
 * its alpha would premultiply, and fully transparent pixels would come out black.
 */
async function source(path: string, hasAlpha: boolean): Promise<ReturnType<typeof sharp>> {
  if (!hasAlpha) return sharp(path);
  const { data, info } = await sharp(path).autoOrient().removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } });
}

/** Interleaved RGB bytes (HWC) to planar [3,H,W] floats in [0,1]. */
export function hwcToChw(raw: Uint8Array, h: number, w: number): Float32Array {
  const channels = raw.length / (h * w);
  const area = h * w;
  const out = new Float32Array(3 * area);
  // One plane at a time through a table of the 256 levels: this runs for every photo of every pass over the
  // reference set.
  for (let c = 0; c < 3; c++) {
    const from = channels >= 3 ? c : 0;
    const base = c * area;
    for (let p = 0; p < area; p++) out[base + p] = LEVELS[raw[p * channels + from]];
  }
  return out;
}

/** [3,H,W] floats to interleaved RGB bytes, clamped and rounded. */
export function chwToHwc(chw: ArrayLike<number>, h: number, w: number): Buffer {
  const out = Buffer.alloc(3 * h * w);
  for (let p = 0; p < h * w; p++) {
    for (let c = 0; c < 3; c++) out[p * 3 + c] = Math.round(Math.min(1, Math.max(0, chw[c * h * w + p])) * 255);
  }
  return out;
}

export async function toPng(chw: ArrayLike<number> /* [3,H,W] */, h: number, w: number): Promise<Buffer> {
  return sharp(chwToHwc(chw, h, w), { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}

/** A perturbation made visible: mid-grey is no change, ±eps saturates. */
export async function perturbationPng(delta: ArrayLike<number> /* [3,H,W] */, h: number, w: number, eps: number): Promise<Buffer> {
  const shown = Float32Array.from({ length: delta.length }, (_, i) => 0.5 + delta[i] / (2 * eps));
  return toPng(shown, h, w);
}
