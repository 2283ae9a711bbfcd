// Checks of the article's figures that look at what a figure draws, not only that it has an SVG: each is a pure
// function over a DOM (the browser test serializes the live page and parses it here with jsdom; the unit tests in
// test/figure-checks.test.ts feed hand-written SVG/HTML) or over pixel statistics of a screenshot, and returns the
// problems it found ([] when there are none), each naming where it is (the enclosing figure's id, fig-…).
//
//   nonFiniteAttributes    NaN or Infinity in any attribute of an SVG inside a figure
//   noisyTickLabels        an axis tick label (`g[aria-label$="tick label"] text`) showing float noise
//   blankTickLabels        a tick drawn with an empty label (d3's log-scale format blanks the ticks it thins out,
//                          even ticks a figure chose)
//   histogramsWithoutBars  a `[data-histogram]` whose Plot SVG draws no bar (a rect of positive width and height in
//                          Plot's rect group) in some facet
//   heatmapsWithoutColorScale
//                          a `[data-heatmap]` whose figure has no `svg[data-color-scale]` with ≥ 2 tick labels
//   imageLoadProblems, blankImages, pixelStats, pngStats
//                          images that did not load, and screenshots whose pixels are (nearly) all one colour
//   tileFilterProblems, sortProblems, pickQuery
//                          the atlas layer page's search and sort
import { JSDOM } from 'jsdom';
import sharp from 'sharp';

export interface Problem {
  /** The enclosing figure's id (fig-…), else the nearest id or data-figure, else the element's tag. */
  where: string;
  what: string;
}

/** A tick label with more significant digits than this is float noise (0.25000001099999997, 62.99999999999999). */
export const MAX_SIGNIFICANT_DIGITS = 6;
/** A run of this many zeros before a further digit, or of nines, among a number's significant digits is noise. */
export const NOISE_RUN = 5;
/** A screenshot whose luminance standard deviation (0–255) is at or below this is blank: one flat colour. */
export const BLANK_STD = 2;

/** Parses an HTML page or fragment (SVG inline) into a document to run the checks on. */
export function parseHtml(html: string): Document {
  return new JSDOM(html).window.document;
}

/** Where `el` is, for a problem's message: its figure's id, else the nearest id / data-figure, else its tag. */
export function whereOf(el: Element): string {
  const fig = el.closest('figure[id^="fig-"]');
  if (fig) return fig.id;
  for (let e: Element | null = el; e; e = e.parentElement) {
    if (e.id) return e.id;
    const named = e.getAttribute('data-figure');
    if (named) return `figure ${named}`;
  }
  return el.tagName.toLowerCase();
}

function describe(el: Element): string {
  const label = el.getAttribute('aria-label');
  return `<${el.tagName.toLowerCase()}${label ? ` aria-label="${label.slice(0, 40)}"` : ''}>`;
}

// Case-sensitive, anywhere: "M0,NaNL5,5" in a path has a letter right after it.
const NON_FINITE = /NaN|Infinity/;

/** 1. Every attribute of every SVG element inside a `figure` (the svg and all it holds) is free of NaN and Infinity. */
export function nonFiniteAttributes(root: ParentNode): Problem[] {
  const out: Problem[] = [];
  for (const el of root.querySelectorAll('figure svg, figure svg *')) {
    for (const attr of el.attributes) {
      if (NON_FINITE.test(attr.value)) out.push({ where: whereOf(el), what: `${describe(el)} ${attr.name}="${attr.value.slice(0, 80)}"` });
    }
  }
  return out;
}

/** The significant digits of a number as written ("0.0250" → "250", "1,200" → "12", "1e-7" → "1"). */
export function significantDigits(token: string): string {
  const mantissa = token.replace(/,/g, '').replace(/e[-+−]?\d+$/i, '');
  const [int, frac] = mantissa.split('.');
  const digits = (int + (frac ?? '')).replace(/^0+/, '');
  // An integer's trailing zeros are magnitude, not precision (1000 has one significant digit).
  return frac === undefined ? digits.replace(/0+$/, '') : digits;
}

/** 2. Whether a tick label shows float noise: a number with more than MAX_SIGNIFICANT_DIGITS significant digits, or
 * a run of NOISE_RUN zeros (then a further digit) or nines among them. */
export function hasFloatNoise(text: string): boolean {
  for (const token of text.match(/\d[\d,]*(?:\.\d+)?(?:e[-+−]?\d+)?/gi) ?? []) {
    const sig = significantDigits(token);
    if (sig.length > MAX_SIGNIFICANT_DIGITS) return true;
    if (new RegExp(`0{${NOISE_RUN},}[1-9]|9{${NOISE_RUN},}`).test(sig)) return true;
  }
  return false;
}

/** 2. Every axis tick label (Plot's `g[aria-label$="tick label"] text`: "x-axis tick label", …) is free of float noise. */
export function noisyTickLabels(root: ParentNode): Problem[] {
  const out: Problem[] = [];
  for (const text of root.querySelectorAll('g[aria-label$="tick label"] text')) {
    const label = (text.textContent ?? '').trim();
    if (hasFloatNoise(label)) {
      out.push({ where: whereOf(text), what: `${text.closest('g[aria-label$="tick label"]')!.getAttribute('aria-label')} "${label}"` });
    }
  }
  return out;
}

/** 2b. No axis tick label is empty: a figure that names its ticks shows every one. */
export function blankTickLabels(root: ParentNode): Problem[] {
  const out: Problem[] = [];
  for (const group of root.querySelectorAll('g[aria-label$="tick label"]')) {
    const texts = [...group.querySelectorAll('text')];
    const blank = texts.filter((t) => (t.textContent ?? '').trim() === '').length;
    if (blank) out.push({ where: whereOf(group), what: `${group.getAttribute('aria-label')}: ${blank} of ${texts.length} tick(s) without a label` });
  }
  return out;
}

function positive(el: Element, name: string): boolean {
  const v = Number.parseFloat(el.getAttribute(name) ?? '');
  return Number.isFinite(v) && v > 0;
}

/** Facets of a Plot SVG: the product of its fx and fy facet axes' tick label counts (1 when it is not faceted). */
export function facetCount(svg: Element): number {
  const count = (axis: string) => svg.querySelectorAll(`g[aria-label="${axis}-axis tick label"] text`).length;
  return Math.max(1, count('fx')) * Math.max(1, count('fy'));
}

/** The Plot SVGs under `el` (not SVGs nested in another SVG). */
function plotSvgs(el: Element): Element[] {
  return [...el.querySelectorAll('svg')].filter((s) => !s.parentElement?.closest('svg'));
}

/** 3. Every `[data-histogram]` holds a Plot SVG whose rect mark (`g[aria-label="rect"]`) draws at least one bar of
 * positive width and height in each facet (each neuron, when faceted by neuron). */
export function histogramsWithoutBars(root: ParentNode): Problem[] {
  const out: Problem[] = [];
  for (const h of root.querySelectorAll('[data-histogram]')) {
    const svgs = plotSvgs(h);
    if (svgs.length === 0) {
      out.push({ where: whereOf(h), what: 'a [data-histogram] without an SVG' });
      continue;
    }
    for (const svg of svgs) {
      const facets = facetCount(svg);
      const groups = [...svg.querySelectorAll('g[aria-label="rect"]')];
      // A faceted mark has one <g> per facet inside its group; an unfaceted one holds its rects directly.
      const drawn = Math.max(0, ...groups.map((g) => {
        const perFacet = [...g.children].filter((c) => c.tagName.toLowerCase() === 'g');
        const parts = perFacet.length ? perFacet : [g];
        return parts.filter((p) => [...p.querySelectorAll('rect')].some((r) => positive(r, 'width') && positive(r, 'height'))).length;
      }));
      if (drawn < facets) {
        out.push({
          where: whereOf(h),
          what: groups.length === 0
            ? `histogram without a rect mark (no g[aria-label="rect"]) in ${describe(svg)}`
            : `histogram draws bars in ${drawn} of ${facets} facet(s) (${svg.querySelectorAll('g[aria-label="rect"] rect').length} rect(s), none of positive size in the others)`,
        });
      }
    }
  }
  return out;
}

/** Tick labels of a colour scale: the non-empty texts of its tick label groups (else any text holding a digit). */
export function colorScaleTicks(svg: Element): string[] {
  const texts = (sel: string) => [...svg.querySelectorAll(sel)].map((t) => (t.textContent ?? '').trim());
  const ticks = texts('g[aria-label$="tick label"] text').filter((t) => t !== '');
  return ticks.length ? ticks : texts('text').filter((t) => /\d/.test(t));
}

/** 5. Every `[data-heatmap]` (a clean/adversarial pair) sits in a figure holding an `svg[data-color-scale]` with at
 * least two tick labels. The figure is the enclosing fig-… figure (a heatmap's panels are figures of their own),
 * else its outermost figure. One problem per figure. */
export function heatmapsWithoutColorScale(root: ParentNode): Problem[] {
  const out: Problem[] = [];
  const seen = new Set<Element>();
  for (const h of root.querySelectorAll('[data-heatmap]')) {
    let fig = h.closest('figure[id^="fig-"]');
    for (let e = h.parentElement; !fig && e; e = e.parentElement) if (e.tagName.toLowerCase() === 'figure') fig = e; // outermost
    if (!fig) {
      out.push({ where: whereOf(h), what: 'a [data-heatmap] outside any figure' });
      continue;
    }
    if (seen.has(fig)) continue;
    seen.add(fig);
    const scales = [...fig.querySelectorAll('svg[data-color-scale]')];
    const best = Math.max(0, ...scales.map((s) => colorScaleTicks(s).length));
    if (best < 2) {
      const n = fig.querySelectorAll('[data-heatmap]').length;
      out.push({ where: whereOf(fig), what: scales.length === 0 ? `${n} heatmap(s) and no svg[data-color-scale]` : `${n} heatmap(s), colour scale with ${best} tick label(s)` });
    }
  }
  return out;
}

export interface ImageRecord {
  where: string;
  src: string;
  complete: boolean;
  naturalWidth: number;
}

/** 4. Every (laid-out) figure image finished loading and has pixels. */
export function imageLoadProblems(images: ImageRecord[]): Problem[] {
  return images.filter((i) => !i.complete || !(i.naturalWidth > 0))
    .map((i) => ({ where: i.where, what: `image ${i.src} ${i.complete ? 'loaded with no pixels (naturalWidth 0: broken)' : 'did not finish loading'}` }));
}

export interface PixelStats {
  width: number;
  height: number;
  /** Mean and standard deviation of the luminance (Rec. 709 weights), 0–255. */
  mean: number;
  std: number;
}

/** Luminance statistics of raw interleaved pixels (1–4 channels; a 4th, alpha, is ignored; 2 is grey + alpha). */
export function pixelStats(data: Uint8Array, width: number, height: number, channels: number): PixelStats {
  const n = width * height;
  if (n === 0 || data.length < n * channels) throw new Error(`pixelStats: ${data.length} bytes for ${width}×${height}×${channels}`);
  let sum = 0;
  let sum2 = 0;
  for (let p = 0; p < n; p++) {
    const o = p * channels;
    const y = channels >= 3 ? 0.2126 * data[o] + 0.7152 * data[o + 1] + 0.0722 * data[o + 2] : data[o];
    sum += y;
    sum2 += y * y;
  }
  const mean = sum / n;
  return { width, height, mean, std: Math.sqrt(Math.max(0, sum2 / n - mean * mean)) };
}

/** Decodes a PNG (a Playwright screenshot) and returns its luminance statistics. */
export async function pngStats(png: Buffer | Uint8Array): Promise<PixelStats> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return pixelStats(data, info.width, info.height, info.channels);
}

/** 4, 6. Screenshots that are blank: (nearly) one flat colour, luminance std ≤ `threshold`. */
export function blankImages(shots: { where: string; stats: PixelStats }[], threshold = BLANK_STD): Problem[] {
  return shots.filter((s) => !(s.stats.std > threshold))
    .map((s) => ({ where: s.where, what: `blank: ${s.stats.width}×${s.stats.height} px, luminance std ${s.stats.std.toFixed(2)} ≤ ${threshold} (mean ${s.stats.mean.toFixed(0)})` }));
}

export interface Tile {
  channel: string;
  /** data-classes: class names, '|'-separated, lower case. */
  classes: string;
  visible: boolean;
}

const entries = (t: Pick<Tile, 'classes'>) => t.classes.toLowerCase().split('|').map((c) => c.trim()).filter(Boolean);

/** A class name to search the layer grid for: one tile's whole entry that some other tile does not contain (so the
 * search must hide something), preferring the one most tiles hold. undefined when no entry leaves a tile out. */
export function pickQuery(tiles: Pick<Tile, 'classes'>[]): string | undefined {
  const holders = new Map<string, number>();
  for (const t of tiles) for (const e of new Set(entries(t))) holders.set(e, (holders.get(e) ?? 0) + 1);
  const candidates = [...holders].filter(([e]) => e.length >= 3 && tiles.some((t) => !entries(t).some((c) => c.includes(e))));
  candidates.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return candidates[0]?.[0];
}

/** 7. After searching for `query`: every tile holding it as a whole class name is shown, every tile with no class
 * name containing it is hidden, and at least one tile is shown. */
export function tileFilterProblems(tiles: Tile[], query: string): Problem[] {
  const q = query.trim().toLowerCase();
  const out: Problem[] = [];
  const shown = tiles.filter((t) => t.visible);
  if (shown.length === 0) out.push({ where: 'layer grid', what: `searching "${q}" hides every one of ${tiles.length} tiles` });
  for (const t of tiles) {
    const es = entries(t);
    if (t.visible && !es.some((e) => e.includes(q))) out.push({ where: `tile ${t.channel}`, what: `shown after searching "${q}", but its classes are ${es.join(', ')}` });
    if (!t.visible && es.includes(q)) out.push({ where: `tile ${t.channel}`, what: `hidden after searching "${q}", which is one of its classes` });
  }
  return out;
}

/** 7. Tiles in page order after sorting: their `key` values descend (ties in any order). */
export function sortProblems(tiles: { channel: string; value: number }[], key: string): Problem[] {
  const out: Problem[] = [];
  if (tiles.some((t) => !Number.isFinite(t.value))) {
    out.push({ where: 'layer grid', what: `tiles without a numeric data-${key}: ${tiles.filter((t) => !Number.isFinite(t.value)).map((t) => t.channel).slice(0, 5).join(', ')}` });
  }
  for (let i = 1; i < tiles.length; i++) {
    if (tiles[i].value > tiles[i - 1].value) {
      out.push({ where: `tile ${tiles[i].channel}`, what: `data-${key} ${tiles[i].value} after tile ${tiles[i - 1].channel}'s ${tiles[i - 1].value}: not descending` });
    }
  }
  return out;
}

/** A problem list as lines, for an assertion's message. */
export function report(problems: Problem[]): string {
  return problems.map((p) => `${p.where}: ${p.what}`).join('\n');
}
