// Page weight of the built article's first load, measured in headless Chromium (the system's, see
// test/helpers/chromium.ts): the article is served from `distDir` under `base` by a local static server, opened in a
// fresh browser context (empty cache) at 1280×800, and every response up to the load event plus 500 ms of network
// quiet is counted; sizes are the bodies gzip-compressed with node:zlib at level 9. jsGzipBytes is script files plus
// inline scripts (Astro inlines small scripts into the HTML, so those bytes are also in htmlGzipBytes).
//   node bench/page-weight.ts [distDir] [--base /atlas/] [--max-bytes N]   (distDir defaults to dist; base to '/')
// --max-bytes: exit 1 when the first load's bodies, uncompressed, exceed N bytes (a static host may serve images,
// most of the weight, as they are); .ci/run holds the default article to its 1.5 MB budget this way.
// `base` must be the one the site was built with (ATLAS_BASE), or the page's own links miss.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSize, inlineScripts, launchChromium, loadFully, recordPage, type LoadedResource, type ResourceKind } from '../test/helpers/chromium.ts';
import { serveStatic } from '../test/helpers/static-server.ts';

export interface PageWeight {
  jsGzipBytes: number;
  cssGzipBytes: number;
  htmlGzipBytes: number;
  requests: number;
}

export interface PageWeightDetail extends PageWeight {
  resources: LoadedResource[];
  /** Inline scripts: how many, and their gzip bytes (part of jsGzipBytes, and also inside the HTML's bytes). */
  inlineScripts: number;
  inlineJsGzipBytes: number;
}

export async function pageWeightDetail(distDir: string, base = '/'): Promise<PageWeightDetail> {
  const server = await serveStatic(distDir, base);
  const browser = await launchChromium();
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const rec = await recordPage(page, server.origin);
    await loadFully(page, server.url);
    await rec.settle();
    const inline = (await inlineScripts(page)).filter((t) => t.trim());
    const inlineJsGzipBytes = inline.reduce((n, t) => n + gzipSize(t), 0);
    await context.close();
    if (rec.failedRequests.length) process.stderr.write(`page-weight: failed requests:\n  ${rec.failedRequests.join('\n  ')}\n`);
    const sum = (kind: ResourceKind) => rec.resources.filter((r) => r.kind === kind).reduce((s, r) => s + r.gzipBytes, 0);
    return {
      jsGzipBytes: sum('js') + inlineJsGzipBytes,
      cssGzipBytes: sum('css'),
      htmlGzipBytes: sum('html'),
      requests: rec.requests.length,
      resources: rec.resources,
      inlineScripts: inline.length,
      inlineJsGzipBytes,
    };
  } finally {
    await browser.close();
    await server.close();
  }
}

export async function pageWeight(distDir: string, base = '/'): Promise<PageWeight> {
  const { jsGzipBytes, cssGzipBytes, htmlGzipBytes, requests } = await pageWeightDetail(distDir, base);
  return { jsGzipBytes, cssGzipBytes, htmlGzipBytes, requests };
}

function kb(bytes: number): string {
  return (bytes / 1024).toFixed(1);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { base: { type: 'string', default: '/' }, 'max-bytes': { type: 'string' } } });
  const distDir = path.resolve(positionals[0] ?? path.resolve(import.meta.dirname, '..', 'dist'));
  const detail = await pageWeightDetail(distDir, values.base);
  const kinds: ResourceKind[] = ['html', 'js', 'css', 'json', 'image', 'font', 'other'];
  const rows = kinds
    .map((k) => {
      const rs = detail.resources.filter((r) => r.kind === k);
      return { k, n: rs.length, raw: rs.reduce((s, r) => s + r.bytes, 0), gz: rs.reduce((s, r) => s + r.gzipBytes, 0) };
    })
    .filter((r) => r.n > 0);
  const total = rows.reduce((t, r) => ({ n: t.n + r.n, raw: t.raw + r.raw, gz: t.gz + r.gz }), { n: 0, raw: 0, gz: 0 });
  const table = [
    ['resource', 'requests', 'raw KiB', 'gzip KiB'],
    ...rows.map((r) => [r.k, String(r.n), kb(r.raw), kb(r.gz)]),
    ['total', String(total.n), kb(total.raw), kb(total.gz)],
    ['inline js (in html)', `(${detail.inlineScripts})`, '', kb(detail.inlineJsGzipBytes)],
    ['js counted', '', '', kb(detail.jsGzipBytes)],
  ];
  const widths = table[0].map((_, c) => Math.max(...table.map((r) => r[c].length)));
  const line = (r: string[]) => `| ${r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(' | ')} |`;
  console.log(`\nFirst load of ${distDir} served at ${values.base} (Chromium, 1280×800, empty cache; gzip level 9)\n`);
  console.log([line(table[0]), line(widths.map((w) => '-'.repeat(w))), ...table.slice(1).map(line)].join('\n'));
  console.log(`\n${detail.requests} request(s) in all${detail.requests !== total.n ? ` (${detail.requests - total.n} without a body)` : ''}`);
  if (values['max-bytes'] !== undefined) {
    const budget = Number(values['max-bytes']);
    if (!Number.isInteger(budget) || budget <= 0) throw new Error(`--max-bytes: expected a positive whole number of bytes, got '${values['max-bytes']}'`);
    const verdict = total.raw <= budget ? 'within' : 'OVER';
    console.log(`first load: ${total.raw} bytes uncompressed, ${verdict} its budget of ${budget}`);
    if (total.raw > budget) process.exitCode = 1;
  }
}
