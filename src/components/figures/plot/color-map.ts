// The activation colour map of the heatmaps and the colour scale beside them: inferno (perceptually uniform, readable
// in grey and by most colour-blind readers), from 0 to a layer's scale. Plot's own scale gives the colours, so the
// figures and their legends cannot disagree.
import sharp from 'sharp';
import { Plot } from './render.ts';

export const SCHEME = 'inferno';
const scale = Plot.scale({ color: { type: 'linear', scheme: SCHEME, domain: [0, 1] } });

/** The colour of t ∈ [0, 1] (clamped) as a CSS hex string. */
export function colorAt(t: number): string {
  return String(scale.apply(Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0))));
}

/**
 * A [h,w] map as a tiny PNG data URI, one pixel per cell, coloured by value / top. Drawn scaled over the photo, the
 * browser's bilinear filtering interpolates between cell centres as the receptive-field upsampling does.
 */
export async function mapDataUri(map: readonly number[], h: number, w: number, top: number): Promise<string> {
  const rgb = Buffer.alloc(3 * h * w);
  map.forEach((v, i) => {
    const hex = colorAt(v / (top || 1));
    for (let c = 0; c < 3; c++) rgb[3 * i + c] = parseInt(hex.slice(1 + 2 * c, 3 + 2 * c), 16);
  });
  const png = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

let ramps = 0;
/** A gradient id unique in the build, in render order (deterministic, unlike a random one). */
export function nextRampId(): string {
  return `atlas-ramp-${++ramps}`;
}
