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
  return svg.outerHTML;
}

export { Plot };
