// The built article in a real browser (the system's headless Chromium, see test/helpers/chromium.ts). The test builds
// content/article.mdx against a small fixture spec (test/fixtures/article.experiments.yaml: the step ids the article
// reads, at sizes that compute in about a minute; the full article's build is .ci/run's), as a sub-path deployment
// (ATLAS_BASE=/atlas/, into a temporary ATLAS_OUT), and serves it from a local static server that answers 404 outside
// /atlas/, so any link that ignores the base shows up as a failed request. Each test opens the page in a fresh browser
// context (empty cache, light colour scheme, 1280×800 unless it says otherwise).
//
//   npx vitest run test/browser                   builds the site (the fixture's steps are cached in .cache/atlas-fixture)
//   ATLAS_BROWSER_DIST=/tmp/x/dist npx vitest run test/browser
//                                                 tests an existing build instead (of any spec, the real article's
//                                                 too); it must have been built with ATLAS_BASE=/atlas/ (or say
//                                                 ATLAS_BROWSER_BASE=<its base>)
//
// Screenshots go to test-results/first-screen.png (1280×800) and test-results/phone.png (390×844); every figure's,
// light and dark, to test-results/figures/<id>-{light,dark}.png; one neuron page's and its layer page's of the atlas
// of neurons (full page) to test-results/{neuron,layer}-page-{light,dark}.png.
//
// Besides "does it load": what each figure draws (test/helpers/figure-checks.ts, unit-tested in
// test/figure-checks.test.ts): no NaN/Infinity in a figure's SVG, no float noise in a tick label, bars in every
// histogram's facet, a colour scale with every heatmap, every figure image loaded and not blank, no figure blank in
// either theme; and the atlas of neurons' pages: found from the article's neuron links, searchable and sortable, and
// readable without JavaScript.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, BrowserContextOptions, Locator, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_CACHE, FIXTURE_SPEC } from '../helpers/article-fixture.ts';
import { buildArticle } from '../helpers/article-build.ts';
import { gzipSize, inlineScripts, launchChromium, loadFully, recordPage, type PageRecord } from '../helpers/chromium.ts';
import {
  BLANK_STD, blankImages, heatmapsWithoutColorScale, histogramsWithoutBars, imageLoadProblems, nonFiniteAttributes,
  blankTickLabels, noisyTickLabels, parseHtml, pickQuery, pngStats, report, sortProblems, tileFilterProblems, type ImageRecord, type Problem,
} from '../helpers/figure-checks.ts';
import { serveStatic, type StaticServer } from '../helpers/static-server.ts';

const REPO = path.resolve(import.meta.dirname, '..', '..');
const RESULTS = path.join(REPO, 'test-results');
const FIGURE_SHOTS = path.join(RESULTS, 'figures');
const BASE = process.env.ATLAS_BROWSER_BASE ?? '/atlas/';
const JS_BUDGET_GZIP = 300 * 1024; // bytes of JavaScript, gzip-compressed, on first load
const CLS_BUDGET = 0.05;


let tmp: string | undefined;
let server: StaticServer;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  let dist = process.env.ATLAS_BROWSER_DIST;
  if (!dist) {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'atlas-browser-'));
    dist = await buildArticle(tmp, { spec: FIXTURE_SPEC, cache: FIXTURE_CACHE, base: BASE });
  }
  if (!existsSync(path.join(dist, 'index.html'))) {
    throw new Error(`${dist}/index.html is missing after the build: does astro.config.mjs write to ATLAS_OUT?`);
  }
  server = await serveStatic(dist, BASE);
  browser = await launchChromium();
}, 10 * 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

afterEach(async () => {
  for (const c of contexts.splice(0)) await c.close();
});

interface Opened {
  page: Page;
  rec: PageRecord;
  /** Index into server.served where this page's requests begin. */
  servedFrom: number;
}

/** Opens `url` (the article unless said otherwise) in a fresh context, recording it. */
async function openUrl(url: string, options: BrowserContextOptions = {}, init?: () => void): Promise<Opened> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light', ...options });
  contexts.push(context);
  const page = await context.newPage();
  if (init) await page.addInitScript(init);
  const rec = await recordPage(page, server.origin);
  const servedFrom = server.served.length;
  await loadFully(page, url);
  return { page, rec, servedFrom };
}

async function openArticle(options: BrowserContextOptions = {}, init?: () => void): Promise<Opened> {
  return openUrl(server.url, options, init);
}

/** Scrolls to the bottom a step at a time (`step` screens, `pause` ms each: lazy images and scripts load), then back
 * to the top. */
async function scrollThrough(page: Page, { step = 0.75, pause = 80 } = {}): Promise<void> {
  await page.evaluate(async ({ step, pause }) => {
    const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    for (let y = 0; y < document.documentElement.scrollHeight; y += Math.round(innerHeight * step)) {
      scrollTo(0, y);
      await frame();
      await new Promise((r) => setTimeout(r, pause));
    }
    scrollTo(0, document.documentElement.scrollHeight);
    await frame();
  }, { step, pause });
  await page.waitForLoadState('networkidle');
  await page.evaluate(() => scrollTo(0, 0));
}

/** Opens `url` in the given colour scheme and makes sure the page took it (the theme follows prefers-color-scheme
 * when nothing is saved; else the switch is clicked). */
async function openInTheme(url: string, theme: 'light' | 'dark'): Promise<Opened> {
  const opened = await openUrl(url, { colorScheme: theme });
  const current = () => opened.page.evaluate(() => document.documentElement.dataset.theme);
  if ((await current()) !== theme) await opened.page.locator('button.theme-toggle').first().click();
  await expect.poll(current, { message: `the page is in the ${theme} theme` }).toBe(theme);
  await opened.page.waitForTimeout(400); // colour transitions settle
  return opened;
}

/** The page's live DOM (after scrolling through it), parsed in Node for the figure checks. */
async function domOf(page: Page): Promise<Document> {
  return parseHtml(await page.content());
}

let articleDomMemo: Promise<Document> | undefined;
/** The article's DOM after a slow scroll through it, loaded once for the DOM-only figure checks. */
function articleDom(): Promise<Document> {
  articleDomMemo ??= (async () => {
    const { page } = await openArticle();
    await scrollThrough(page);
    return domOf(page);
  })();
  return articleDomMemo;
}

function expectNoProblems(problems: Problem[], what: string): void {
  expect(problems, `${what}:\n${report(problems)}`).toEqual([]);
}

/** Screenshots `locator`'s element (into `file` when given) and returns its pixel statistics. */
async function shotStats(locator: Locator, file?: string) {
  const png = await locator.screenshot({ path: file, animations: 'disabled', timeout: 15_000 });
  return pngStats(png);
}

const NEURON_PATH = /neurons\/[^/]+\/\d+\/$/;

interface AtlasPages { neuron: string; layer: string; layerName: string; channel: number }
let atlasMemo: Promise<AtlasPages> | undefined;
/** A neuron page of the atlas (the article's first link to one) and its layer page (the neuron page's link to it). */
function atlasPages(): Promise<AtlasPages> {
  atlasMemo ??= (async () => {
    const { page } = await openArticle();
    const hrefs = await page.evaluate(() => [...document.querySelectorAll<HTMLAnchorElement>('a[href]')].map((a) => a.href));
    const neuron = hrefs.find((h) => NEURON_PATH.test(new URL(h).pathname));
    if (!neuron) throw new Error(`no link in the article to a neuron page (an href matching ${NEURON_PATH}) among ${hrefs.length} links`);
    const [, layerSegment, channel] = /neurons\/([^/]+)\/(\d+)\/$/.exec(new URL(neuron).pathname)!;
    const layerPathname = new URL(neuron).pathname.replace(/\d+\/$/, '');
    const opened = await openUrl(neuron);
    const links = await opened.page.evaluate(() => [...document.querySelectorAll<HTMLAnchorElement>('a[href]')].map((a) => a.href));
    const layer = links.find((h) => new URL(h).origin === server.origin && new URL(h).pathname === layerPathname);
    if (!layer) throw new Error(`the neuron page ${neuron} has no link to its layer's page (${layerPathname})`);
    return { neuron, layer, layerName: decodeURIComponent(layerSegment), channel: Number(channel) };
  })();
  return atlasMemo;
}

/** The locator's first visible match is on screen and opaque (fade-ins get a moment). */
async function expectShown(page: Page, locator: Locator, what: string): Promise<void> {
  const shown = locator.filter({ visible: true }).first();
  await shown.waitFor({ state: 'visible', timeout: 5_000 }).catch(() => {
    throw new Error(`${what} did not become visible (${locator})`);
  });
  await expect.poll(() => shown.evaluate((el) => {
    let opacity = 1;
    for (let e: Element | null = el; e; e = e.parentElement) opacity *= Number(getComputedStyle(e).opacity);
    const r = el.getBoundingClientRect();
    const onScreen = r.right > 0 && r.bottom > 0 && r.left < innerWidth && r.top < innerHeight;
    return onScreen && opacity >= 0.9 ? 'shown' : `opacity ${opacity.toFixed(2)}, box ${[r.left, r.top, r.width, r.height].map(Math.round)}`;
  }), { message: `${what} is on screen and opaque`, timeout: 3_000 }).toBe('shown');
}

/** Where the record's error lists stand now: the interaction tests check only what happened after this point (the
 * first test checks the page load itself). */
function marks(rec: PageRecord): { console: number; failed: number; otherOrigin: number } {
  return { console: rec.consoleErrors.length, failed: rec.failedRequests.length, otherOrigin: rec.otherOriginRequests.length };
}

async function expectNoNewErrors(rec: PageRecord, mark: ReturnType<typeof marks>): Promise<void> {
  await rec.settle();
  expect(rec.consoleErrors.slice(mark.console), 'console errors during the interaction').toEqual([]);
  expect(rec.failedRequests.slice(mark.failed), 'failed requests during the interaction').toEqual([]);
  expect(rec.otherOriginRequests.slice(mark.otherOrigin), 'requests to another origin during the interaction').toEqual([]);
}

describe('the built article in Chromium', () => {
  it('loads under the sub-path with no console error, failed request or request to another origin', async () => {
    const { page, rec } = await openArticle();
    expect(page.url()).toBe(server.url);
    await scrollThrough(page);
    await rec.settle();
    expect(rec.consoleErrors, 'console errors').toEqual([]);
    expect(rec.failedRequests, 'failed requests').toEqual([]);
    expect(rec.otherOriginRequests, 'requests to another origin').toEqual([]);
    // Sanity: the recorder saw the page's own requests, all under the base.
    expect(rec.requests.length).toBeGreaterThan(1);
    expect(rec.requests.filter((u) => !u.startsWith(server.url)), 'requests outside the base').toEqual([]);
  });

  it('renders every figure (an SVG plot, a loaded image, or a visible table/ranking of rows), and there is at least one', async () => {
    const { page } = await openArticle();
    const figures = await page.evaluate(async () => {
      const out: { id: string | undefined; svg: boolean; img: boolean; visibleImgs: number; rows: number }[] = [];
      for (const f of document.querySelectorAll<HTMLElement>('figure.atlas-figure')) {
        f.scrollIntoView({ block: 'center' });
        // Only images that are laid out count: a lazy image inside a hidden popup never loads, and draws nothing.
        const shown = (el: Element) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
        const imgs = [...f.querySelectorAll('img')].filter(shown);
        const loaded = Promise.all(imgs.map((img) => (img.complete ? undefined : new Promise((r) => {
          img.addEventListener('load', r, { once: true });
          img.addEventListener('error', r, { once: true });
        }))));
        await Promise.race([loaded, new Promise((r) => setTimeout(r, 10_000))]);
        const svg = [...f.querySelectorAll('svg')].some((s) => shown(s) && s.childElementCount > 0);
        const img = imgs.some((i) => i.complete && i.naturalWidth > 0);
        // Tables and rankings are HTML (rows carry hover cards): they count when rows are laid out and show text.
        const rows = [...f.querySelectorAll<HTMLElement>('tbody tr, [data-neuron]')].filter((r) => shown(r) && (r.textContent ?? '').trim() !== '').length;
        out.push({ id: f.dataset.figure, svg, img, visibleImgs: imgs.length, rows });
      }
      return out;
    });
    expect(figures.length, 'figure.atlas-figure elements').toBeGreaterThan(0);
    expect(figures.filter((f) => !f.id), 'figures without a data-figure id').toEqual([]);
    const ids = figures.map((f) => f.id);
    expect(ids.filter((id, k) => ids.indexOf(id) !== k), 'duplicate data-figure ids').toEqual([]);
    expect(figures.filter((f) => !f.svg && !f.img && f.rows === 0), 'figures with neither a visible, non-empty SVG, a visible loaded image nor laid-out rows').toEqual([]);
  });

  it('draws no NaN or Infinity into any attribute of a figure\'s SVG', async () => {
    const doc = await articleDom();
    expect(doc.querySelectorAll('figure svg').length, 'SVGs in figures').toBeGreaterThan(0);
    expectNoProblems(nonFiniteAttributes(doc), 'SVG attributes holding NaN or Infinity');
  });

  it('shows no float noise in any axis tick label (> 6 significant digits, or a run of 00000 or 99999)', async () => {
    const doc = await articleDom();
    const ticks = doc.querySelectorAll('g[aria-label$="tick label"] text').length;
    expect(ticks, 'tick labels (g[aria-label$="tick label"] text)').toBeGreaterThan(0);
    expectNoProblems(noisyTickLabels(doc), `tick labels with float noise (of ${ticks})`);
    expectNoProblems(blankTickLabels(doc), 'ticks without a label');
  });

  it('draws the bars of every histogram ([data-histogram]), in every facet', async () => {
    const doc = await articleDom();
    expect(doc.querySelectorAll('[data-histogram]').length, 'histograms ([data-histogram]) in the article').toBeGreaterThan(0);
    expectNoProblems(histogramsWithoutBars(doc), 'histograms without bars (a rect of positive size in g[aria-label="rect"]) in some facet');
  });

  it('gives every heatmap ([data-heatmap]) a colour scale (svg[data-color-scale]) with at least two tick labels in its figure', async () => {
    const doc = await articleDom();
    // The heatmap figure shows photographs; it may withhold them all (no licence to publish), and then has no pair.
    const withheld = doc.querySelectorAll('figure .withheld').length;
    if (withheld === 0) expect(doc.querySelectorAll('[data-heatmap]').length, 'heatmap pairs ([data-heatmap]) in the article').toBeGreaterThan(0);
    expectNoProblems(heatmapsWithoutColorScale(doc), 'heatmaps without a colour scale');
  });

  it(`loads every figure image after a slow scroll, and none is blank (screenshot luminance std > ${BLANK_STD})`, async () => {
    const { page } = await openArticle();
    await scrollThrough(page, { step: 0.5, pause: 200 });
    // Laid-out images only (a lazy image in a closed hover card never loads); SVGs that hold photographs (<image>)
    // are screenshotted too. Each gets a data-check-shot number to screenshot it by.
    const found = await page.evaluate(async () => {
      const shown = (el: Element) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
      const where = (el: Element) => el.closest('figure[id^="fig-"]')?.id ?? (el.closest('[data-figure]') as HTMLElement | null)?.dataset.figure ?? 'figure';
      const all = document.querySelectorAll('figure img').length;
      const imgs = [...document.querySelectorAll<HTMLImageElement>('figure img')].filter(shown);
      await Promise.race([Promise.all(imgs.map((img) => (img.complete ? undefined : new Promise((r) => {
        img.addEventListener('load', r, { once: true });
        img.addEventListener('error', r, { once: true });
      })))), new Promise((r) => setTimeout(r, 10_000))]);
      const svgs = [...document.querySelectorAll<SVGSVGElement>('figure svg')].filter((s) => shown(s) && s.querySelector('image'));
      let k = 0;
      const mark = (el: Element) => { el.setAttribute('data-check-shot', String(k)); return k++; };
      return {
        all,
        imgs: imgs.map((img) => ({ shot: mark(img), where: where(img), src: img.currentSrc || img.src, complete: img.complete, naturalWidth: img.naturalWidth })),
        svgs: svgs.map((svg) => ({ shot: mark(svg), where: where(svg), src: `svg with ${svg.querySelectorAll('image').length} <image>` })),
      };
    });
    console.info(`figure images: ${found.imgs.length} laid out (of ${found.all}), ${found.svgs.length} SVG(s) with <image>`);
    expect(found.imgs.length + found.svgs.length, 'laid-out figure images').toBeGreaterThan(0);
    const unloaded = imageLoadProblems(found.imgs as ImageRecord[]);
    const loaded = found.imgs.filter((i) => i.complete && i.naturalWidth > 0);
    const shots = [];
    for (const i of [...loaded, ...found.svgs]) {
      shots.push({ where: `${i.where} ${i.src.replace(server.origin, '')}`, stats: await shotStats(page.locator(`[data-check-shot="${i.shot}"]`)) });
    }
    expectNoProblems([...unloaded, ...blankImages(shots)], 'figure images that did not load or are blank');
  });

  it(`screenshots every figure (figure[id^=fig-]) light and dark into test-results/figures, none blank (luminance std > ${BLANK_STD})`, async () => {
    await mkdir(FIGURE_SHOTS, { recursive: true });
    const problems: Problem[] = [];
    for (const theme of ['light', 'dark'] as const) {
      const { page } = await openInTheme(server.url, theme);
      await scrollThrough(page);
      const ids = await page.evaluate(() => [...document.querySelectorAll('figure[id^="fig-"]')].map((f) => f.id));
      expect(ids.length, 'figure[id^=fig-] elements').toBeGreaterThan(0);
      const shots = [];
      for (const id of ids) {
        const file = path.join(FIGURE_SHOTS, `${id}-${theme}.png`);
        shots.push({ where: `${id} (${theme})`, stats: await shotStats(page.locator(`figure[id="${id}"]`), file) });
      }
      problems.push(...blankImages(shots));
      for (const id of ids) expect((await stat(path.join(FIGURE_SHOTS, `${id}-${theme}.png`))).size, `${id}-${theme}.png`).toBeGreaterThan(1_000);
    }
    expectNoProblems(problems, 'blank figure screenshots');
  });

  it('sets the two models of the spec\'s compare: block side by side, one bar per model and attack in each panel', async () => {
    const { page } = await openArticle();
    const figure = page.locator('figure[data-figure="comparison"]');
    expect(await figure.count(), 'the comparison figure (the spec has a compare: block)').toBe(1);
    await figure.scrollIntoViewIfNeeded();
    const shape = await figure.evaluate((f) => ({
      legend: [...f.querySelectorAll('.legend span')].map((s) => (s.textContent ?? '').trim()),
      panels: [...f.querySelectorAll('.comparison-panel svg')].map((svg) => svg.querySelectorAll('g[aria-label="bar"] rect').length),
      caption: f.querySelector('figcaption')?.textContent ?? '',
    }));
    expect(shape.legend, 'one legend entry per model').toHaveLength(2);
    // success, confidence drop, perturbation and one panel per analysed layer
    expect(shape.panels.length).toBeGreaterThanOrEqual(4);
    for (const bars of shape.panels) {
      expect(bars, 'bars in a panel').toBeGreaterThan(0);
      expect(bars % 2, 'bars come in pairs, one per model').toBe(0);
    }
    expect(shape.caption).toMatch(/n, the same for both models\): .*\d/);
  });

  it('shows a fragile neuron\'s card on hover, and the next one\'s when the pointer moves on', async () => {
    const { page, rec } = await openArticle();
    const mark = marks(rec);
    const neurons = page.locator('.fragile-ranking [data-neuron]');
    const n = await neurons.count();
    expect(n, '.fragile-ranking [data-neuron] elements').toBeGreaterThan(0);
    for (const k of n > 1 ? [0, 1] : [0]) {
      const el = neurons.nth(k);
      const id = await el.getAttribute('data-neuron');
      expect(id, 'data-neuron is "<layer>:<channel>"').toMatch(/^[^:\s]+:\d+$/);
      await el.scrollIntoViewIfNeeded();
      await el.hover();
      await expectShown(page, page.locator(`.neuron-card[data-card-neuron="${id}"]`), `the card of ${id} after hovering it`);
    }
    await expectNoNewErrors(rec, mark);
  });

  it('shows a fragile neuron\'s card when it gets keyboard focus', async () => {
    const { page, rec } = await openArticle();
    const mark = marks(rec);
    const first = page.locator('.fragile-ranking [data-neuron]').first();
    await first.waitFor({ state: 'attached', timeout: 2_000 });
    const id = await first.getAttribute('data-neuron');
    // The neuron's element itself or the first focusable thing inside it (a button, a link).
    const focused = await first.evaluate((el) => {
      const focusable = 'a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"])';
      const target = (el.matches(focusable) ? el : el.querySelector(focusable)) as HTMLElement | null;
      target?.focus();
      return !!target && document.activeElement === target;
    });
    expect(focused, `the neuron ${id} (or a control inside it) can take keyboard focus`).toBe(true);
    await expectShown(page, page.locator(`.neuron-card[data-card-neuron="${id}"]`), `the card of ${id} after focusing it`);
    await expectNoNewErrors(rec, mark);
  });

  it('switches between light and dark theme, with a different page background', async () => {
    const { page, rec } = await openArticle();
    const mark = marks(rec);
    const state = () => page.evaluate(() => ({
      theme: document.documentElement.dataset.theme,
      background: getComputedStyle(document.body).backgroundColor,
    }));
    const before = await state();
    expect(['light', 'dark']).toContain(before.theme);
    const other = before.theme === 'light' ? 'dark' : 'light';
    const toggle = page.locator('button.theme-toggle');
    await toggle.click();
    // Polled: a background transition may take a moment.
    await expect.poll(async () => (await state()).theme).toBe(other);
    await expect.poll(async () => (await state()).background, { timeout: 3_000, message: 'the background changes' }).not.toBe(before.background);
    await page.waitForTimeout(600); // let any transition finish before reading the settled colour
    const after = await state();
    expect(after.background).not.toBe(before.background);
    await toggle.click();
    await expect.poll(async () => (await state()).theme).toBe(before.theme);
    await expect.poll(async () => (await state()).background, { timeout: 3_000 }).toBe(before.background);
    await expectNoNewErrors(rec, mark);
  });

  it(`does not shift its layout as figures load (sum of layout shifts < ${CLS_BUDGET} after scrolling through)`, async () => {
    // Recorded from the document's start. The sum of every layout-shift entry not caused by input: an upper bound
    // on web-vitals CLS, which counts only the worst 5-second session window.
    const { page } = await openArticle({}, () => {
      const w = window as unknown as { __shifts: { value: number; at: number; sources: string[] }[] };
      w.__shifts = [];
      const describe = (node: Node | null): string => {
        const el = node instanceof Element ? node : node?.parentElement;
        if (!el) return '?';
        const fig = el.closest('[data-figure]') as HTMLElement | null;
        const name = `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.classList.length ? `.${[...el.classList].join('.')}` : ''}`;
        return fig ? `${name} in figure ${fig.dataset.figure}` : name;
      };
      new PerformanceObserver((list) => {
        for (const e of list.getEntries() as unknown as { value: number; startTime: number; hadRecentInput: boolean; sources?: { node: Node | null }[] }[]) {
          if (!e.hadRecentInput) w.__shifts.push({ value: e.value, at: Math.round(e.startTime), sources: (e.sources ?? []).map((s) => describe(s.node)) });
        }
      }).observe({ type: 'layout-shift', buffered: true });
    });
    await scrollThrough(page);
    await page.waitForTimeout(500);
    const shifts = await page.evaluate(() => (window as unknown as { __shifts: { value: number; at: number; sources: string[] }[] }).__shifts);
    const cls = shifts.reduce((s, e) => s + e.value, 0);
    console.info(`layout shift: ${cls.toFixed(4)} in ${shifts.length} shift(s)`);
    const report = shifts.map((e) => `${e.value.toFixed(4)} at ${e.at} ms: ${e.sources.join(', ')}`).join('\n');
    expect(cls, `layout shifts:\n${report}`).toBeLessThan(CLS_BUDGET);
  });

  it('loads at most 300 KiB of JavaScript (gzip) on first load', async () => {
    // Script files up to load + network idle, plus the inline scripts (Astro inlines small ones into the HTML).
    const { page, rec, servedFrom } = await openArticle();
    await rec.settle();
    const js = rec.resources.filter((r) => r.kind === 'js');
    const inline = (await inlineScripts(page)).filter((t) => t.trim());
    const inlineGzip = inline.reduce((s, t) => s + gzipSize(t), 0);
    const gzip = js.reduce((s, r) => s + r.gzipBytes, 0) + inlineGzip;
    // The recorder measured every script the server sent for this page (none slipped past it).
    const servedJs = server.served.slice(servedFrom).filter((r) => r.status === 200 && /\.m?js(\?|$)/.test(r.path));
    expect(js.length, 'scripts measured vs scripts served').toBe(servedJs.length);
    console.info(`first load: ${js.length} script file(s) and ${inline.length} inline script(s), ${(gzip / 1024).toFixed(1)} KiB gzip (budget ${JS_BUDGET_GZIP / 1024} KiB)`);
    const list = [...js.map((r) => `${(r.gzipBytes / 1024).toFixed(1)} KiB  ${r.url}`), `${(inlineGzip / 1024).toFixed(1)} KiB  inline`].join('\n');
    expect(gzip, `JavaScript, gzip bytes:\n${list}`).toBeLessThanOrEqual(JS_BUDGET_GZIP);
    expect(page.url()).toBe(server.url);
  });

  it('screenshots the first screen (1280×800) and a phone (390×844), which needs no sideways scrolling', async () => {
    await mkdir(RESULTS, { recursive: true });
    const desktop = await openArticle();
    await desktop.page.screenshot({ path: path.join(RESULTS, 'first-screen.png') });
    const phone = await openArticle({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    await phone.page.screenshot({ path: path.join(RESULTS, 'phone.png') });
    for (const f of ['first-screen.png', 'phone.png']) expect((await stat(path.join(RESULTS, f))).size).toBeGreaterThan(5_000);
    const overflow = await phone.page.evaluate(() => {
      const width = 390;
      const wide = [...document.querySelectorAll('body *')].filter((el) => {
        const r = el.getBoundingClientRect();
        const parent = el.parentElement?.getBoundingClientRect();
        return r.width > 0 && r.right > width + 1 && (!parent || parent.right <= width + 1);
      });
      return {
        scrollWidth: document.documentElement.scrollWidth,
        culprits: wide.slice(0, 8).map((el) => `${el.tagName.toLowerCase()}${el.className && typeof el.className === 'string' ? `.${el.className.trim().split(/\s+/).join('.')}` : ''} right=${Math.round(el.getBoundingClientRect().right)}`),
      };
    });
    expect(overflow.scrollWidth, `page wider than the phone:\n${overflow.culprits.join('\n')}`).toBeLessThanOrEqual(390);
  });
});

// The atlas of neurons: a page per neuron (<base>neurons/<layer>/<channel>/) and per layer (<base>neurons/<layer>/),
// found from the article's links (it replaces the neuron explorer).
describe('the atlas of neurons in Chromium', () => {
  it('screenshots a neuron page and its layer page, light and dark; they load cleanly and pass the figure checks', async () => {
    const { neuron, layer } = await atlasPages();
    await mkdir(RESULTS, { recursive: true });
    for (const [name, url] of [['neuron-page', neuron], ['layer-page', layer]] as const) {
      for (const theme of ['light', 'dark'] as const) {
        const { page, rec } = await openInTheme(url, theme);
        await scrollThrough(page);
        const file = path.join(RESULTS, `${name}-${theme}.png`);
        const stats = await pngStats(await page.screenshot({ path: file, fullPage: true, animations: 'disabled' }));
        expectNoProblems(blankImages([{ where: `${name} (${theme})`, stats }]), `blank ${name} screenshot`);
        await rec.settle();
        expect(rec.consoleErrors, `${url}: console errors`).toEqual([]);
        expect(rec.failedRequests, `${url}: failed requests`).toEqual([]);
        expect(rec.otherOriginRequests, `${url}: requests to another origin`).toEqual([]);
        const doc = await domOf(page);
        expectNoProblems([...nonFiniteAttributes(doc), ...noisyTickLabels(doc), ...blankTickLabels(doc), ...histogramsWithoutBars(doc), ...heatmapsWithoutColorScale(doc)],
          `${url}: figure checks`);
      }
    }
  });

  it('the layer page finds tiles by class (input[type=search][name=q]) and sorts them by fragility (select[name=sort])', async () => {
    const { layer } = await atlasPages();
    const { page, rec } = await openUrl(layer);
    const mark = marks(rec);
    const readTiles = () => page.locator('a.neuron-tile').evaluateAll((as) => (as as HTMLAnchorElement[]).map((a) => ({
      channel: a.dataset.channel ?? '?',
      classes: a.dataset.classes ?? '',
      fragility: Number(a.dataset.fragility),
      // hidden (on the tile or its list item) or display: none leaves no box
      visible: a.getClientRects().length > 0 && getComputedStyle(a).visibility !== 'hidden',
    })));
    const all = await readTiles();
    expect(all.length, 'a.neuron-tile elements on the layer page').toBeGreaterThan(1);
    expect(all.filter((t) => !t.visible).map((t) => t.channel), 'tiles hidden before any search').toEqual([]);
    const query = pickQuery(all);
    expect(query, 'a class name (from data-classes) that some tile does not have').toBeDefined();
    const search = page.locator('input[type="search"][name="q"]');
    expect(await search.count(), 'the search box').toBe(1);
    await search.fill(query!);
    await expect.poll(async () => report(tileFilterProblems(await readTiles(), query!)), { timeout: 5_000, message: `tiles after searching "${query}"` }).toBe('');
    const kept = (await readTiles()).filter((t) => t.visible).length;
    console.info(`layer page: searching "${query}" keeps ${kept} of ${all.length} tiles`);

    await search.fill('');
    await expect.poll(async () => (await readTiles()).filter((t) => t.visible).length, { message: 'every tile shown again after clearing the search' }).toBe(all.length);
    await page.locator('select[name="sort"]').selectOption('fragility');
    const byFragility = async () => (await readTiles()).map((t) => ({ channel: t.channel, value: t.fragility }));
    await expect.poll(async () => report(sortProblems(await byFragility(), 'fragility')), { timeout: 5_000, message: 'tiles in descending data-fragility after sorting by fragility' }).toBe('');
    expect((await readTiles()).map((t) => t.channel).sort(), 'the same tiles after sorting').toEqual(all.map((t) => t.channel).sort());
    await expectNoNewErrors(rec, mark);
  });

  it('the neuron page reads without JavaScript: an h1 naming the neuron and its grid of top patches', async () => {
    const { neuron, layerName, channel } = await atlasPages();
    const { page } = await openUrl(neuron, { javaScriptEnabled: false });
    const h1 = (await page.locator('h1').allTextContents()).join(' ').replace(/\s+/g, ' ');
    expect(h1, 'the h1 names the layer').toContain(layerName);
    expect(h1.replace(layerName, ' '), `the h1 names channel ${channel}`).toMatch(new RegExp(`(^|\\D)${channel}(\\D|$)`));
    const patches = await page.locator('[data-patches] [role=img], [data-patches] img').count();
    // Without a photo licensed to publish (the fixture's), the page says so in a marked statement instead.
    const statement = await page.locator('[data-no-patches]').count();
    if (patches === 0) console.info(`${neuron}: no patches, ${statement ? 'the no-patches statement' : 'and no statement either'}`);
    expect(patches >= 1 || statement === 1, 'patches in the grid ([data-patches] [role=img], [data-patches] img), or the [data-no-patches] statement').toBe(true);
  });
});
