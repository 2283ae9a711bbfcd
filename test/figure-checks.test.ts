// The browser test's figure checks (test/helpers/figure-checks.ts) on small hand-written inputs: each catches its
// planted defect (the reported ones: histograms without bars, float-noise tick labels, heatmaps without a colour
// scale, NaN in an SVG, blank or unloaded images) and passes the same input without it.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import {
  BLANK_STD, blankImages, blankTickLabels, facetCount, hasFloatNoise, heatmapsWithoutColorScale, histogramsWithoutBars, imageLoadProblems,
  nonFiniteAttributes, noisyTickLabels, parseHtml, pickQuery, pixelStats, pngStats, significantDigits, sortProblems,
  tileFilterProblems, whereOf,
} from './helpers/figure-checks.ts';

/** A Plot-like SVG: a y-axis with the given tick labels and, when `rects` is given, a rect mark (one facet per list). */
function plotSvg({ ticks = ['0', '10'], facets }: { ticks?: string[]; facets?: string[][] } = {}): string {
  const tickGroup = `<g aria-label="y-axis tick label">${ticks.map((t) => `<text y="0.32em">${t}</text>`).join('')}</g>`;
  if (!facets) return `<svg viewBox="0 0 100 50">${tickGroup}</svg>`;
  const fy = facets.length > 1 ? `<g aria-label="fy-axis tick label">${facets.map((_, k) => `<g><text>${k}</text></g>`).join('')}</g>` : '';
  const rects = facets.length > 1
    ? `<g aria-label="rect">${facets.map((rs) => `<g transform="translate(0,1)">${rs.join('')}</g>`).join('')}</g>`
    : `<g aria-label="rect" fill="grey">${facets[0].join('')}</g>`;
  return `<svg viewBox="0 0 100 50">${fy}${tickGroup}${rects}</svg>`;
}

const bar = (w = 5, h = 20) => `<rect x="1" y="2" width="${w}" height="${h}"></rect>`;
const figure = (id: string, body: string) => parseHtml(`<figure id="fig-${id}" class="atlas-figure">${body}<figcaption>x</figcaption></figure>`);

describe('nonFiniteAttributes (no NaN or Infinity in a figure\'s SVG)', () => {
  it('passes finite attributes', () => {
    expect(nonFiniteAttributes(figure('a', `<svg viewBox="0 0 10 10"><path d="M0,0L5,5" transform="translate(1.5,2)"></path></svg>`))).toEqual([]);
  });
  it('catches NaN in a path, Infinity in a transform, and NaN on the svg itself, naming the figure', () => {
    const problems = nonFiniteAttributes(figure('curve', `<svg viewBox="0 0 NaN 10"><path d="M0,NaNL5,5"></path><g transform="translate(-Infinity,0)"><rect height="Infinity"></rect></g></svg>`));
    expect(problems.map((p) => p.where)).toEqual(['fig-curve', 'fig-curve', 'fig-curve', 'fig-curve']);
    expect(problems.map((p) => p.what).join('\n')).toMatch(/viewBox="0 0 NaN 10"[\s\S]*d="M0,NaNL5,5"[\s\S]*translate\(-Infinity,0\)[\s\S]*height="Infinity"/);
  });
  it('looks only inside figures', () => {
    expect(nonFiniteAttributes(parseHtml('<svg><path d="NaN"></path></svg>'))).toEqual([]);
  });
});

describe('noisyTickLabels (float noise in an axis tick label)', () => {
  it.each(['0.25000001099999997', '62.99999999999999%', '0.30000000000000004', '1.0000001', '0.999999', '1234567', '0.1234567/255'])('flags %s', (t) => {
    expect(hasFloatNoise(t)).toBe(true);
  });
  it.each(['0.25/255', '0.5/255', '8/255', '0%', '80%', '−0.4', '0.0', '100', '1,000', '1000000', '0.000001', '1e-7', '123456', '0.125', '', 'features.17.conv.2'])('passes %s', (t) => {
    expect(hasFloatNoise(t)).toBe(false);
  });
  it('counts significant digits', () => {
    expect(significantDigits('0.0250')).toBe('250');
    expect(significantDigits('1,200')).toBe('12');
    expect(significantDigits('0.25000001099999997')).toHaveLength(17);
  });
  it('catches the ε curve\'s noisy tick and names its axis and figure; passes rounded ticks', () => {
    const noisy = figure('epsilon', `<svg><g aria-label="x-axis tick label"><text>0.25000001099999997</text><text>0.5</text></g></svg>`);
    expect(noisyTickLabels(noisy)).toEqual([{ where: 'fig-epsilon', what: 'x-axis tick label "0.25000001099999997"' }]);
    expect(noisyTickLabels(figure('epsilon', `<svg><g aria-label="x-axis tick label"><text>0.25/255</text><text>0.5/255</text></g></svg>`))).toEqual([]);
  });
  it('reads only tick labels (an axis title or data label may hold any number)', () => {
    expect(noisyTickLabels(figure('a', `<svg><g aria-label="x-axis label"><text>0.25000001099999997</text></g><g aria-label="text"><text>3.14159265</text></g></svg>`))).toEqual([]);
  });
});

describe('blankTickLabels (a tick drawn without its label)', () => {
  it("catches the ε curve's last tick left blank by a log scale's format, naming the axis and figure", () => {
    const svg = figure('epsilon', `<svg><g aria-label="x-axis tick label"><text>4/255</text><text> </text></g><g aria-label="y-axis tick label"><text>0%</text></g></svg>`);
    expect(blankTickLabels(svg)).toEqual([{ where: 'fig-epsilon', what: 'x-axis tick label: 1 of 2 tick(s) without a label' }]);
  });
  it('passes axes whose ticks all have labels, and figures without axes', () => {
    expect(blankTickLabels(figure('epsilon', `<svg><g aria-label="x-axis tick label"><text>4/255</text><text>8/255</text></g></svg>`))).toEqual([]);
    expect(blankTickLabels(figure('photo', `<img src="x.webp">`))).toEqual([]);
  });
});

describe('histogramsWithoutBars (every histogram draws its bars, in every facet)', () => {
  const hist = (svg: string) => figure('distributions', `<div data-histogram>${svg}</div>`);
  it('passes an unfaceted and a faceted histogram with bars', () => {
    expect(histogramsWithoutBars(hist(plotSvg({ facets: [[bar(), bar(0, 0)]] })))).toEqual([]);
    expect(histogramsWithoutBars(hist(plotSvg({ facets: [[bar()], [bar()], [bar(3, 1)]] })))).toEqual([]);
  });
  it('catches the log-scale defect: no rect mark at all (Plot dropped every bar from y1 = 0)', () => {
    const problems = histogramsWithoutBars(hist(plotSvg({})));
    expect(problems).toHaveLength(1);
    expect(problems[0].where).toBe('fig-distributions');
    expect(problems[0].what).toMatch(/without a rect mark/);
  });
  it('catches an empty rect group, and rects of zero or NaN size', () => {
    expect(histogramsWithoutBars(hist(plotSvg({ facets: [[]] })))[0].what).toMatch(/bars in 0 of 1 facet/);
    expect(histogramsWithoutBars(hist(plotSvg({ facets: [[bar(0, 20), bar(5, 0)]] })))[0].what).toMatch(/bars in 0 of 1 facet/);
    expect(histogramsWithoutBars(hist(plotSvg({ facets: [[`<rect width="NaN" height="3"></rect>`]] })))).toHaveLength(1);
  });
  it('catches one facet (neuron) of three without bars', () => {
    const svg = plotSvg({ facets: [[bar()], [], [bar()]] });
    expect(facetCount(parseHtml(svg).querySelector('svg')!)).toBe(3);
    expect(histogramsWithoutBars(hist(svg))[0].what).toMatch(/bars in 2 of 3 facet/);
  });
  it('catches a [data-histogram] with no SVG, and ignores rects that are not in a histogram', () => {
    expect(histogramsWithoutBars(hist(''))[0].what).toMatch(/without an SVG/);
    expect(histogramsWithoutBars(figure('other', plotSvg({})))).toEqual([]);
  });
});

describe('heatmapsWithoutColorScale (heatmaps carry a colour scale)', () => {
  const scale = (ticks: string[]) => `<svg data-color-scale><rect width="100" height="10"></rect><g aria-label="color-scale tick label">${ticks.map((t) => `<text>${t}</text>`).join('')}</g></svg>`;
  const pair = `<div data-heatmap><figure class="panel"><svg><image href="a.png"></image></svg></figure><figure class="panel"><svg><image href="b.png"></image></svg></figure></div>`;
  it('passes heatmaps whose figure has a colour scale with ticks (the panels being figures of their own)', () => {
    expect(heatmapsWithoutColorScale(figure('heatmaps', scale(['0.0', '0.5', '1.0']) + pair + pair))).toEqual([]);
  });
  it('catches heatmaps without any colour scale, once per figure', () => {
    expect(heatmapsWithoutColorScale(figure('heatmaps', pair + pair))).toEqual([{ where: 'fig-heatmaps', what: '2 heatmap(s) and no svg[data-color-scale]' }]);
  });
  it('catches a colour scale with fewer than two tick labels', () => {
    expect(heatmapsWithoutColorScale(figure('heatmaps', scale(['1.0']) + pair))[0].what).toMatch(/colour scale with 1 tick label/);
    expect(heatmapsWithoutColorScale(figure('heatmaps', scale(['', '']) + pair))).toHaveLength(1);
  });
  it('does not take a colour scale of another figure', () => {
    const doc = parseHtml(`<figure id="fig-a">${scale(['0', '1'])}</figure><figure id="fig-heatmaps">${pair}</figure>`);
    expect(heatmapsWithoutColorScale(doc).map((p) => p.where)).toEqual(['fig-heatmaps']);
  });
});

describe('images: loaded and not blank', () => {
  it('imageLoadProblems catches an unfinished and a broken image, and passes a loaded one', () => {
    const problems = imageLoadProblems([
      { where: 'fig-a', src: 'ok.png', complete: true, naturalWidth: 224 },
      { where: 'fig-a', src: 'lazy.png', complete: false, naturalWidth: 0 },
      { where: 'fig-b', src: 'broken.png', complete: true, naturalWidth: 0 },
    ]);
    expect(problems.map((p) => p.what)).toEqual([expect.stringMatching(/lazy\.png did not finish loading/), expect.stringMatching(/broken\.png .*broken/)]);
  });
  it('pixelStats: a flat image has std 0, a checkerboard 127.5', () => {
    expect(pixelStats(new Uint8Array(4 * 4 * 3).fill(200), 4, 4, 3)).toMatchObject({ mean: 200, std: 0 });
    const board = new Uint8Array(4 * 4).map((_, p) => ((p + Math.floor(p / 4)) % 2 ? 255 : 0));
    expect(pixelStats(board, 4, 4, 1).std).toBeCloseTo(127.5, 5);
  });
  it('pngStats decodes a PNG; blankImages flags a flat one and passes a photo-like one', async () => {
    const flat = await sharp({ create: { width: 32, height: 32, channels: 4, background: { r: 250, g: 250, b: 250, alpha: 1 } } }).png().toBuffer();
    const noise = Buffer.from(Array.from({ length: 32 * 32 * 3 }, (_, k) => (k * 7919) % 256));
    const busy = await sharp(noise, { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer();
    const shots = [{ where: 'fig-flat', stats: await pngStats(flat) }, { where: 'fig-busy', stats: await pngStats(busy) }];
    expect(shots[0].stats).toMatchObject({ width: 32, height: 32, std: 0 });
    expect(shots[1].stats.std).toBeGreaterThan(BLANK_STD);
    expect(blankImages(shots).map((p) => p.where)).toEqual(['fig-flat']);
  });
});

describe('the layer page\'s search and sort', () => {
  const tiles = [
    { channel: '0', classes: 'weasel|mink|mustelid', visible: true },
    { channel: '1', classes: 'trailer truck|truck', visible: true },
    { channel: '2', classes: 'giant panda|weasel', visible: true },
  ];
  it('pickQuery picks a whole class name that leaves some tile out', () => {
    expect(pickQuery(tiles)).toBe('weasel');
    expect(pickQuery([{ classes: 'cat' }, { classes: 'cat' }])).toBeUndefined();
  });
  it('passes a search that shows exactly the matching tiles', () => {
    expect(tileFilterProblems(tiles.map((t) => ({ ...t, visible: t.classes.includes('weasel') })), 'weasel')).toEqual([]);
  });
  it('catches a search that hides nothing, one that hides a match, and one that hides everything', () => {
    expect(tileFilterProblems(tiles, 'weasel').map((p) => p.where)).toEqual(['tile 1']);
    expect(tileFilterProblems(tiles.map((t) => ({ ...t, visible: t.channel === '0' })), 'weasel').map((p) => p.where)).toEqual(['tile 2']);
    expect(tileFilterProblems(tiles.map((t) => ({ ...t, visible: false })), 'weasel').map((p) => p.where)).toContain('layer grid');
  });
  it('sortProblems passes descending values (ties allowed) and catches an ascent or a missing value', () => {
    expect(sortProblems([{ channel: '3', value: 2.5 }, { channel: '1', value: 2.5 }, { channel: '0', value: -1e9 }], 'fragility')).toEqual([]);
    expect(sortProblems([{ channel: '0', value: 0.1 }, { channel: '1', value: 0.9 }], 'fragility')).toHaveLength(1);
    expect(sortProblems([{ channel: '0', value: Number.NaN }], 'fragility')[0].what).toMatch(/without a numeric data-fragility/);
  });
});

describe('whereOf', () => {
  it('names the enclosing fig-… figure, else an id or data-figure', () => {
    const doc = parseHtml('<figure id="fig-x"><figure class="panel"><svg><rect></rect></svg></figure></figure><div id="card"><svg><g></g></svg></div><figure data-figure="unnumbered"><i></i></figure>');
    expect(whereOf(doc.querySelector('rect')!)).toBe('fig-x');
    expect(whereOf(doc.querySelector('g')!)).toBe('card');
    expect(whereOf(doc.querySelector('i')!)).toBe('figure unnumbered');
  });
});
