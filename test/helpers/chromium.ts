// Headless Chromium for the browser tests and the page-weight benchmark: the system's Chromium (Debian's package, or
// $CHROMIUM) driven by playwright-core, which downloads no browser of its own. Also a recorder that watches one page
// load: console errors, failed requests, requests to another origin, and the gzip size of every response.
import { existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { chromium, type Browser, type Page, type Request, type Response } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium is missing: no executable at ${CHROMIUM_PATH}. Install it with \`apt-get install -y chromium\` ` +
      '(sudo where not root), or point CHROMIUM at a Chromium or Chrome binary.',
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

export type ResourceKind = 'html' | 'js' | 'css' | 'json' | 'image' | 'font' | 'other';

export interface LoadedResource {
  url: string;
  status: number;
  kind: ResourceKind;
  contentType: string;
  bytes: number;
  gzipBytes: number;
}

/** What one page did on the network and in its console, from the moment `recordPage` was called. */
export interface PageRecord {
  /** Console messages of type error, and uncaught exceptions. */
  consoleErrors: string[];
  /** Requests that failed on the network, or got a status >= 400. */
  failedRequests: string[];
  /** Requests to any origin other than the page's (aborted before they leave the machine). */
  otherOriginRequests: string[];
  /** Every request the page made (URLs, in order). */
  requests: string[];
  /** Every response with its body's size, raw and gzip-compressed (node:zlib, level 9). */
  resources: LoadedResource[];
  /** Waits until all response bodies seen so far are measured. */
  settle(): Promise<void>;
}

export function kindOf(url: string, contentType: string): ResourceKind {
  const ct = contentType.split(';')[0].trim().toLowerCase();
  const ext = /\.([a-z0-9]+)(?:[?#]|$)/i.exec(new URL(url).pathname)?.[1]?.toLowerCase() ?? '';
  if (ct === 'text/html' || ext === 'html') return 'html';
  if (ct.includes('javascript') || ext === 'js' || ext === 'mjs') return 'js';
  if (ct === 'text/css' || ext === 'css') return 'css';
  if (ct.includes('json') || ext === 'json') return 'json';
  if (ct.startsWith('image/')) return 'image';
  if (ct.startsWith('font/') || ['woff', 'woff2', 'ttf', 'otf'].includes(ext)) return 'font';
  return 'other';
}

export function gzipSize(body: Buffer | Uint8Array | string): number {
  return gzipSync(body, { level: 9 }).length;
}

/**
 * Starts recording `page`: call before `page.goto`. Requests to another origin than `origin` are aborted (a published
 * page must not need them) and recorded; data: and blob: URLs are local and ignored.
 */
export async function recordPage(page: Page, origin: string): Promise<PageRecord> {
  const record: PageRecord = {
    consoleErrors: [],
    failedRequests: [],
    otherOriginRequests: [],
    requests: [],
    resources: [],
    settle: async () => { await Promise.all(pending); },
  };
  const pending: Promise<void>[] = [];
  const local = (url: string) => url.startsWith('data:') || url.startsWith('blob:');

  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (local(url) || new URL(url).origin === origin) return route.continue();
    return route.abort('blockedbyclient');
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      const loc = msg.location();
      record.consoleErrors.push(`${msg.text()}${loc.url ? ` (${loc.url}:${loc.lineNumber})` : ''}`);
    }
  });
  page.on('pageerror', (err) => record.consoleErrors.push(`uncaught: ${err.stack ?? err.message}`));
  page.on('request', (req: Request) => {
    const url = req.url();
    if (local(url)) return;
    record.requests.push(url);
    if (new URL(url).origin !== origin) record.otherOriginRequests.push(url);
  });
  page.on('requestfailed', (req: Request) => {
    if (local(req.url())) return;
    record.failedRequests.push(`${req.url()}: ${req.failure()?.errorText ?? 'failed'}`);
  });
  page.on('response', (res: Response) => {
    const url = res.url();
    if (local(url)) return;
    if (res.status() >= 400) record.failedRequests.push(`${url}: HTTP ${res.status()}`);
    if (res.status() >= 300 && res.status() < 400) return; // redirects have no body
    pending.push((async () => {
      let contentType: string;
      let body: Buffer;
      try {
        contentType = (await res.headerValue('content-type')) ?? '';
        body = await res.body();
      } catch (err) {
        // A response still arriving when a test closes its page belongs to no test's measurement.
        if (page.isClosed()) return;
        record.failedRequests.push(`${url}: body unreadable (${(err as Error).message})`);
        return;
      }
      record.resources.push({ url, status: res.status(), kind: kindOf(url, contentType), contentType, bytes: body.length, gzipBytes: gzipSize(body) });
    })());
  });
  return record;
}

/** The text of the page's inline classic and module scripts (in the DOM now; JSON data blocks excluded). */
export async function inlineScripts(page: Page): Promise<string[]> {
  return page.evaluate(() => [...document.scripts]
    .filter((s) => !s.src && (!s.type || /^(module|text\/javascript|application\/javascript)$/i.test(s.type.trim())))
    .map((s) => s.text));
}

/** `page.goto` that returns once the load event fired and the network has been idle for 500 ms. */
export async function loadFully(page: Page, url: string): Promise<void> {
  const res = await page.goto(url, { waitUntil: 'load' });
  if (!res || !res.ok()) throw new Error(`${url}: HTTP ${res?.status() ?? 'no response'}`);
  await page.waitForLoadState('networkidle');
}
