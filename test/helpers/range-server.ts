// A file server for the downloader's tests, on 127.0.0.1 only: serves `dir` like a static host that honours
// `Range: bytes=N-`, and can misbehave on purpose — cut a response off after some bytes (the socket closes with the
// Content-Length unmet), ignore Range, or answer a path with other bytes. Every request is recorded.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface ServedRange {
  path: string;
  range?: string;
  status: number;
}

export interface RangeServerOptions {
  /** for the n-th request (0-based) of a path: bytes to send before cutting the connection, or undefined */
  cut?: (urlPath: string, nth: number) => number | undefined;
  /** answer every request with the whole file (200), as a server without Range support does */
  ignoreRange?: boolean;
  /** bodies served instead of files, by URL path */
  override?: Record<string, Uint8Array>;
}

export interface RangeServer {
  /** base URL, ending with / */
  url: string;
  requests: ServedRange[];
  close(): Promise<void>;
}

export async function serveRanges(dir: string, opts: RangeServerOptions = {}): Promise<RangeServer> {
  const root = path.resolve(dir);
  const requests: ServedRange[] = [];
  const seen = new Map<string, number>();
  const server = http.createServer(async (req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
    const nth = seen.get(urlPath) ?? 0;
    seen.set(urlPath, nth + 1);
    const range = req.headers.range;
    const record = (status: number) => requests.push({ path: urlPath, range, status });
    const file = path.join(root, urlPath);
    const body = opts.override?.[urlPath];
    const st = body ? undefined : await stat(file).catch(() => undefined);
    if (!body && (!file.startsWith(root + path.sep) || !st?.isFile())) {
      record(404);
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const size = body ? body.length : st!.size;
    const start = !opts.ignoreRange && range ? Number(/^bytes=(\d+)-$/.exec(range)?.[1] ?? 0) : 0;
    if (start >= size && start > 0) {
      record(416);
      res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
      return;
    }
    const partial = start > 0;
    record(partial ? 206 : 200);
    res.writeHead(partial ? 206 : 200, {
      'content-type': 'application/octet-stream',
      'content-length': size - start,
      ...(partial ? { 'content-range': `bytes ${start}-${size - 1}/${size}` } : {}),
    });
    const limit = opts.cut?.(urlPath, nth);
    if (body) {
      const slice = body.subarray(start, limit === undefined ? size : start + limit);
      if (limit === undefined) res.end(slice);
      else res.write(slice, () => res.socket?.end());
      return;
    }
    const end = limit === undefined ? size - 1 : Math.min(size - 1, start + limit - 1);
    const stream = createReadStream(file, { start, end });
    if (limit === undefined) stream.pipe(res);
    else {
      stream.on('data', (chunk) => res.write(chunk));
      // end, not destroy: the bytes written so far reach the client, then the connection closes short
      stream.on('end', () => res.socket?.end());
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    close: () => new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close((err) => (err ? reject(err) : resolve()));
    }),
  };
}

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
export async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
