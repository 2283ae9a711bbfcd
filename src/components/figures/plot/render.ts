// Observable Plot renders to SVG at build time: Plot needs a DOM, and jsdom is the one its documentation names for
// server-side rendering. The page then ships the SVG, not Plot (its JavaScript would cost ~100 KB gzip per reader).
import * as Plot from '@observablehq/plot';
import { JSDOM } from 'jsdom';

const { document } = new JSDOM('').window;

/** An SVG string for `options`, sized by its viewBox so it scales with its column (no layout shift). */
export function renderPlot(options: Plot.PlotOptions, label: string): string {
  const svg = Plot.plot({
    ...options,
    document: document as unknown as Document,
    style: { background: 'transparent', color: 'currentColor', fontSize: '11px', overflow: 'visible' },
  }) as unknown as SVGSVGElement;
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  svg.removeAttribute('height');
  svg.setAttribute('width', '100%');
  compact(svg);
  return svg.outerHTML;
}

/** Attributes that hold coordinates in the viewBox's units. */
const GEOMETRY = ['d', 'transform', 'x', 'y', 'x1', 'x2', 'y1', 'y2', 'width', 'height', 'cx', 'cy', 'r', 'points'];

/**
 * Every figure is inlined in its page and the atlas has ~900 pages, so bytes per figure count. Plot writes
 * coordinates to full double precision (`127.54516311994917`); a tenth of a viewBox unit is below a pixel at any
 * size a figure is shown, so three or more decimals are rounded to one (a NaN stays as it is, for the figure checks
 * to find). Plot's `<style>` block, the same in every figure, is declared once in article.css instead.
 */
function compact(svg: SVGSVGElement): void {
  for (const style of [...svg.querySelectorAll(':scope > style')]) if (style.textContent?.includes(':where(.plot-')) style.remove();
  for (const el of [svg, ...svg.querySelectorAll('*')]) {
    for (const name of GEOMETRY) {
      const v = el.getAttribute(name);
      if (v && /\.\d{3}/.test(v)) el.setAttribute(name, v.replace(/-?\d*\.\d{3,}/g, (x) => String(Math.round(Number(x) * 10) / 10)));
    }
  }
}

export { Plot };
