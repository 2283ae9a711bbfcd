// A tiny static file server for tests and benchmarks: serves `dir` under the path prefix `base` (files of dist/ at
// /atlas/... when base is '/atlas/'), as a static host would. GET and HEAD only; a directory answers with its
// index.html; `/atlas` redirects to `/atlas/`; anything outside base, missing, or outside dir is a 404. Listens on
// 127.0.0.1 on a free port.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.ttf': 'font/ttf',
  '.txt': 'text/plain; charset=utf-8',
  '.xml': 'application/xml',
  '.map': 'application/json',
  '.bib': 'text/plain; charset=utf-8',
};

export interface ServedRequest {
  method: string;
  /** The request's path, as the browser sent it. */
  path: string;
  status: number;
}

export interface StaticServer {
  /** Origin plus base, e.g. http://127.0.0.1:41234/atlas/ */
  url: string;
  origin: string;
  /** Every request answered so far, in order. */
  served: ServedRequest[];
  close(): Promise<void>;
}

export async function serveStatic(dir: string, base = '/'): Promise<StaticServer> {
  const root = path.resolve(dir);
  const prefix = `/${base.replace(/^\/+|\/+$/g, '')}/`.replace(/^\/\/$/, '/');
  const served: ServedRequest[] = [];

  const server = http.createServer(async (req, res) => {
    const done = (status: number, headers: http.OutgoingHttpHeaders = {}, body = '') => {
      served.push({ method: req.method ?? '', path: req.url ?? '', status });
      res.writeHead(status, headers).end(req.method === 'HEAD' ? undefined : body);
    };
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') return done(405, { allow: 'GET, HEAD' });
      const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
      if (prefix !== '/' && pathname === prefix.slice(0, -1)) return done(301, { location: prefix });
      if (!pathname.startsWith(prefix)) return done(404, { 'content-type': 'text/plain' }, 'not found');
      let rel: string;
      try {
        rel = decodeURIComponent(pathname.slice(prefix.length));
      } catch {
        return done(400, { 'content-type': 'text/plain' }, 'bad path');
      }
      let file = path.resolve(root, '.' + path.posix.normalize('/' + rel));
      if (file !== root && !file.startsWith(root + path.sep)) return done(404, { 'content-type': 'text/plain' }, 'not found');
      let st = await stat(file).catch(() => undefined);
      if (st?.isDirectory()) {
        if (!pathname.endsWith('/')) return done(301, { location: pathname + '/' });
        file = path.join(file, 'index.html');
        st = await stat(file).catch(() => undefined);
      }
      if (!st?.isFile()) return done(404, { 'content-type': 'text/plain' }, 'not found');
      const type = CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
      served.push({ method: req.method, path: req.url ?? '', status: 200 });
      res.writeHead(200, { 'content-type': type, 'content-length': st.size, 'cache-control': 'no-cache' });
      if (req.method === 'HEAD') return res.end();
      createReadStream(file).on('error', () => res.destroy()).pipe(res);
    } catch (err) {
      if (!res.headersSent) done(500, { 'content-type': 'text/plain' }, String(err));
      else res.destroy();
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    url: origin + prefix,
    origin,
    served,
    close: () => new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close((err) => (err ? reject(err) : resolve()));
    }),
  };
}
