// The data downloader (src/data-dir/), its manifest and `atlas fetch`, with ../shared standing in for the internet: a
// local HTTP server on 127.0.0.1 serves it as ATLAS_MIRROR (test/helpers/range-server.ts), or the folder itself is
// the mirror. Nothing here reaches another host. Covers a good download, a wrong checksum, a transfer cut off and
// resumed with Range, a .part left by an earlier run, a server without Range support, an unreachable host, a folder
// mirror, a derived model, mirror-only files without a mirror, and the command end to end.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, symlink, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadSpec } from '../src/compute/pipeline/spec.ts';
import { loadManifest, parseManifest, selectFiles, type DataManifest } from '../src/data-dir/data-manifest.ts';
import { fetchData, fetchForSpec } from '../src/data-dir/fetch-data.ts';
import { FetchError, fetchFile, sha256File } from '../src/data-dir/fetch-file.ts';
import { mirrorLocation } from '../src/data-dir/mirror.ts';
import { specDataPaths } from '../src/data-dir/spec-data.ts';
import { closedPort, serveRanges, type RangeServer } from './helpers/range-server.ts';
import { testProject } from './helpers/project.ts';
import { SHARED, shared } from './helpers/shared.ts';

const REPO = path.resolve(import.meta.dirname, '..');
const CLI = path.join(REPO, 'src/cli/atlas.ts');
const exec = promisify(execFile);

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const CARD = 'models/mobilenetv2.json';
const INT8 = 'models/mobilenetv2-12-int8.onnx';
const bytesOf = (file: string) => readFileSync(shared(...file.split('/')));

const temps: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'atlas-fetch-'));
  temps.push(d);
  return d;
}
afterAll(async () => {
  for (const d of temps) await rm(d, { recursive: true, force: true });
});

/** What a fetch left in a folder besides the files: .part and .lock files must not stay. */
async function leftovers(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).filter((f) => /\.(part|lock)(-\d+)?$/.test(f));
}

/** The error a promise rejects with (the test fails if it resolves). */
async function rejection<E extends Error>(p: Promise<unknown>): Promise<E> {
  try {
    await p;
  } catch (err) {
    return err as E;
  }
  throw new Error('expected a rejection');
}

let manifest: DataManifest;
beforeAll(async () => {
  manifest = await loadManifest();
});

describe('fetchFile', () => {
  let server: RangeServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('downloads, checks the sha256 and moves the file into place, leaving no temporary file', async () => {
    server = await serveRanges(SHARED);
    const data = await tempDir();
    const want = bytesOf(CARD);
    let received = 0;
    const dest = await fetchFile({ file: CARD, dataDir: data, from: mirrorLocation(server.url, CARD), sha256: sha256(want), size: want.length, onBytes: (n) => { received += n; } });
    expect(dest).toBe(path.join(data, 'models', 'mobilenetv2.json'));
    expect(sha256(await readFile(dest))).toBe(sha256(want));
    expect(received).toBe(want.length);
    expect(await leftovers(data)).toEqual([]);
    expect(server.requests).toEqual([{ path: '/models/mobilenetv2.json', range: undefined, status: 200 }]);
  });

  it('refuses a wrong checksum: an error naming both digests, and nothing moved into place', async () => {
    server = await serveRanges(SHARED);
    const data = await tempDir();
    const wrong = '0'.repeat(64);
    const err = await rejection<Error>(fetchFile({ file: CARD, dataDir: data, from: mirrorLocation(server.url, CARD), sha256: wrong }));
    expect(err).toBeInstanceOf(FetchError);
    expect((err as FetchError).failure).toBe('checksum');
    expect((err as Error).message).toMatch(new RegExp(`^cannot fetch models/mobilenetv2.json from ${server.url}models/mobilenetv2.json: its sha256 is ${sha256(bytesOf(CARD))}, the manifest expects 0{64}; nothing was moved into place \\(ATLAS_DATA=${data}\\)$`));
    expect(existsSync(path.join(data, CARD))).toBe(false);
    expect(await leftovers(data)).toEqual([]);
  });

  it('refuses a host that serves a file of another size without downloading it (a Git LFS pointer)', async () => {
    const pointer = new TextEncoder().encode('version https://git-lfs.github.com/spec/v1\noid sha256:cc02\nsize 3655033\n');
    server = await serveRanges(SHARED, { override: { '/models/mobilenetv2-12-int8.onnx': pointer } });
    const data = await tempDir();
    const f = manifest.byPath.get(INT8)!;
    const err = await rejection<Error>(fetchFile({ file: INT8, dataDir: data, from: mirrorLocation(server.url, INT8), sha256: f.sha256, size: f.size }));
    expect(err.message).toContain(`it serves ${pointer.length} bytes, the manifest expects ${f.size}; nothing was moved into place`);
    expect(existsSync(path.join(data, INT8))).toBe(false);
  });

  it('resumes a transfer that breaks off: the second request carries Range and completes the file', async () => {
    const cutAt = 1_000_000;
    server = await serveRanges(SHARED, { cut: (p, nth) => (nth === 0 ? cutAt : undefined) });
    const data = await tempDir();
    const want = bytesOf(INT8);
    let received = 0;
    await fetchFile({ file: INT8, dataDir: data, from: mirrorLocation(server.url, INT8), sha256: sha256(want), size: want.length, retryDelayMs: 10, onBytes: (n) => { received += n; } });
    expect(sha256(await readFile(path.join(data, INT8)))).toBe(sha256(want));
    expect(server.requests.map((r) => r.status)).toEqual([200, 206]);
    expect(server.requests[0].range).toBeUndefined();
    const resumedFrom = Number(/^bytes=(\d+)-$/.exec(server.requests[1].range ?? '')?.[1]);
    expect(resumedFrom).toBeGreaterThan(0);
    expect(resumedFrom).toBeLessThanOrEqual(cutAt);
    expect(received).toBe(want.length); // no byte twice
    expect(await leftovers(data)).toEqual([]);
  });

  it('after the retries, says how far it got; the next run resumes from the .part', async () => {
    server = await serveRanges(SHARED, { cut: () => 100_000 });
    const data = await tempDir();
    const want = bytesOf(INT8);
    const opts = { file: INT8, dataDir: data, sha256: sha256(want), size: want.length, retryDelayMs: 1 };
    const err = await rejection<FetchError>(fetchFile({ ...opts, from: mirrorLocation(server.url, INT8), attempts: 2 }));
    expect(err.failure).toBe('interrupted');
    expect(err.message).toMatch(/the transfer broke off 2 times \(last at 0\.\d+ MB of 3\.7 MB: .+\); run again to resume from mobilenetv2-12-int8\.onnx\.part \(ATLAS_DATA=/);
    const part = (await stat(path.join(data, `${INT8}.part`))).size;
    expect(part).toBeGreaterThan(0);
    await server.close();
    server = await serveRanges(SHARED);
    await fetchFile({ ...opts, from: mirrorLocation(server.url, INT8) });
    expect(server.requests).toEqual([{ path: `/${INT8}`, range: `bytes=${part}-`, status: 206 }]);
    expect(sha256(await readFile(path.join(data, INT8)))).toBe(sha256(want));
    expect(await leftovers(data)).toEqual([]);
  });

  it('two fetches of the same file take turns: one download, both find the file', async () => {
    server = await serveRanges(SHARED);
    const data = await tempDir();
    const want = bytesOf(INT8);
    const opts = { file: INT8, dataDir: data, from: mirrorLocation(server.url, INT8), sha256: sha256(want), size: want.length };
    const [a, b] = await Promise.all([fetchFile(opts), fetchFile(opts)]);
    expect(a).toBe(b);
    expect(server.requests).toHaveLength(1);
    expect(sha256(await readFile(a))).toBe(sha256(want));
    expect(await leftovers(data)).toEqual([]);
  });

  it('starts over when the server ignores Range', async () => {
    server = await serveRanges(SHARED, { ignoreRange: true });
    const data = await tempDir();
    const want = bytesOf(CARD);
    await mkdir(path.join(data, 'models'), { recursive: true });
    await writeFile(path.join(data, `${CARD}.part`), want.subarray(0, 100));
    let received = 0;
    await fetchFile({ file: CARD, dataDir: data, from: mirrorLocation(server.url, CARD), sha256: sha256(want), size: want.length, onBytes: (n) => { received += n; } });
    expect(await readFile(path.join(data, CARD))).toEqual(want);
    expect(server.requests).toEqual([{ path: `/${CARD}`, range: 'bytes=100-', status: 200 }]);
    expect(received).toBe(want.length - 100); // the 100 bytes of the .part were taken back
  });

  it('reports an unreachable host in one line naming the file, the URL and ATLAS_DATA', async () => {
    const port = await closedPort();
    const data = await tempDir();
    const url = `http://127.0.0.1:${port}/${CARD}`;
    const err = await rejection<FetchError>(fetchFile({ file: CARD, dataDir: data, from: url, sha256: sha256(bytesOf(CARD)) }));
    expect(err.failure).toBe('unreachable');
    expect(err.message.split('\n')).toHaveLength(1);
    expect(err.message).toBe(`cannot fetch ${CARD} from ${url}: connect ECONNREFUSED 127.0.0.1:${port}; offline or no such host? Set ATLAS_MIRROR to a mirror, or put the file in the data directory yourself (ATLAS_DATA=${data})`);
    expect(existsSync(path.join(data, CARD))).toBe(false);
  });

  it('a 404 from the mirror says it does not have the file', async () => {
    server = await serveRanges(SHARED);
    const data = await tempDir();
    const err = await rejection<FetchError>(fetchFile({ file: 'models/nothing.onnx', dataDir: data, from: mirrorLocation(server.url, 'models/nothing.onnx') }));
    expect(err.failure).toBe('missing');
    expect(err.message).toContain('HTTP 404 Not Found; the mirror or host does not have it');
  });

  it('copies from a mirror that is a local folder, checked the same way', async () => {
    const data = await tempDir();
    const want = bytesOf(INT8);
    expect(mirrorLocation(SHARED, INT8)).toBe(path.join(SHARED, 'models', 'mobilenetv2-12-int8.onnx'));
    expect(mirrorLocation(`file://${SHARED}`, INT8)).toBe(path.join(SHARED, 'models', 'mobilenetv2-12-int8.onnx'));
    await fetchFile({ file: INT8, dataDir: data, from: mirrorLocation(SHARED, INT8), sha256: sha256(want), size: want.length });
    expect(sha256(await readFile(path.join(data, INT8)))).toBe(sha256(want));
    const err = await rejection<FetchError>(fetchFile({ file: 'models/nothing.onnx', dataDir: data, from: mirrorLocation(SHARED, 'models/nothing.onnx') }));
    expect(err.message).toMatch(/^cannot fetch models\/nothing\.onnx from .*nothing\.onnx: no such file .*; the mirror or host does not have it \(ATLAS_DATA=/);
  });

  it('encodes paths into the mirror URL', () => {
    expect(mirrorLocation('http://h/shared', 'images/a b/c#1.jpg')).toBe('http://h/shared/images/a%20b/c%231.jpg');
    expect(mirrorLocation('http://h/shared/', 'models/x.onnx')).toBe('http://h/shared/models/x.onnx');
  });
});

describe('data manifest', () => {
  it("lists every file of ../shared the default article reads, with ../shared's sha256 and size", async () => {
    expect(manifest.files.length).toBeGreaterThan(3000);
    const wrong: string[] = [];
    for (const f of manifest.files) {
      const file = path.join(SHARED, ...f.path.split('/'));
      const st = await stat(file).catch(() => undefined);
      if (!st || st.size !== f.size || (await sha256File(file)) !== f.sha256) wrong.push(f.path);
    }
    expect(wrong).toEqual([]);
    const spec = await loadSpec(path.join(REPO, 'content/article.experiments.yaml'));
    const { files, unknown } = selectFiles(manifest, specDataPaths(spec));
    expect(unknown).toEqual([]);
    const paths = files.map((f) => f.path);
    for (const p of ['models/mobilenetv2.onnx', CARD, 'models/imagenet-classes.json', INT8, 'images/nips17-dev/labels.json', 'images/imagenet-val-1300/labels.json']) expect(paths).toContain(p);
    expect(files).toHaveLength(manifest.files.length);
  });

  it('says how each file is obtained: https URL, derivation, or mirror only, honestly', () => {
    for (const f of manifest.files) {
      expect([!!f.url, !!f.derive, f.mirrorOnly].filter(Boolean), f.path).toHaveLength(1);
      if (f.url) expect(f.url, f.path).toMatch(/^https:\/\//);
    }
    const int8 = manifest.byPath.get(INT8)!;
    expect(int8.url).toBe('https://github.com/onnx/models/raw/b1eeaa1ac722dcc1cd1a8284bde34393dab61c3d/validated/vision/classification/mobilenet/model/mobilenetv2-12-int8.onnx');
    expect(manifest.byPath.get('models/mobilenetv2.onnx')).toMatchObject({ derivedFrom: INT8, derive: 'mobilenetv2-int8-to-torchvision' });
    const nips = manifest.files.filter((f) => f.path.startsWith('images/nips17-dev/') && f.path.endsWith('.jpg'));
    expect(nips).toHaveLength(800);
    for (const f of nips) {
      expect(f.licence).toMatch(/^CC BY 2\.0/);
      expect(f.source, f.path).toMatch(/^https?:\/\/(www\.)?flickr\.com\//);
      expect(f.author, f.path).toBeTruthy();
    }
  });

  it("the model zoo's published file (sha256 url_sha256) is ../shared's int8 model without its 15 value_info entries", () => {
    const int8 = manifest.byPath.get(INT8)!;
    const zoo = withoutGraphField(bytesOf(INT8), 13);
    expect(zoo.length).toBe(int8.urlSize);
    expect(sha256(zoo)).toBe(int8.urlSha256);
  });

  it('refuses a manifest that would write outside the data directory, or a file with no way to get it', () => {
    const file = { path: 'models/x.onnx', sha256: 'a'.repeat(64), size: 1, licence: 'l', source: 's' };
    const parse = (files: object[]) => () => parseManifest({ version: 1, groups: {}, files }, 'm.json');
    expect(parse([{ ...file, url: 'https://example.org/x' }])).not.toThrow();
    expect(parse([{ ...file, path: '../x.onnx', url: 'https://example.org/x' }])).toThrow(/^m\.json: files\.0\.path: a path relative to the data directory/);
    expect(parse([file])).toThrow('models/x.onnx: a file without a url or a derivation must be mirror_only');
    expect(parse([{ ...file, mirror_only: true, url: 'https://example.org/x' }])).toThrow('a mirror_only file has no url');
    expect(parse([{ ...file, derive: 'mobilenetv2-int8-to-torchvision', derived_from: 'models/y.onnx' }])).toThrow("'models/y.onnx' is not in the manifest");
  });
});

/** A manifest of only these files of the real one (groups kept). */
function subset(paths: string[], edit: (f: Record<string, unknown>) => Record<string, unknown> = (f) => f): Record<string, unknown> {
  const raw = JSON.parse(readFileSync(path.join(REPO, 'src/data-dir/data-manifest.json'), 'utf8')) as { files: { path: string }[] };
  return { ...raw, files: raw.files.filter((f) => paths.includes(f.path)).map((f) => edit(f)) };
}

describe('fetchData', () => {
  let server: RangeServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });
  const PHOTOS = ['images/nips17-dev/000b7d55b6184b08.jpg', 'images/nips17-dev/001b5e6f1b89fd3b.jpg', 'images/nips17-dev/00312c7e7196baf4.jpg'];

  it('fetches what is missing from an HTTP mirror, keeps what is there, and pulls in what a file needs', async () => {
    server = await serveRanges(SHARED);
    const data = await tempDir();
    const m = parseManifest(subset([CARD, 'models/imagenet-classes.json', ...PHOTOS]), 'subset');
    await mkdir(path.join(data, 'images/nips17-dev'), { recursive: true });
    await symlink(shared('images', 'nips17-dev', '000b7d55b6184b08.jpg'), path.join(data, PHOTOS[0]));
    const lines: string[] = [];
    const report = await fetchData({ dataDir: data, manifest: m, paths: [CARD, 'images/nips17-dev'], mirror: server.url, jobs: 2, log: (l) => lines.push(l) });
    expect(report.fetched.sort()).toEqual([CARD, 'models/imagenet-classes.json', PHOTOS[1], PHOTOS[2]].sort());
    expect(report.present).toBe(1);
    const mb = (m.files.reduce((n, f) => n + (f.path === PHOTOS[0] ? 0 : f.size), 0) / 1e6).toFixed(1);
    expect(lines[0]).toBe(`fetch: 5 files selected, 1 present; 4 files to download (${mb} MB) from ${server.url}; into ${data}`);
    expect(server.requests.map((r) => r.path).sort()).toEqual([CARD, 'models/imagenet-classes.json', PHOTOS[1], PHOTOS[2]].map((p) => `/${p}`).sort());
    for (const f of m.files) expect(sha256(await readFile(path.join(data, f.path))), f.path).toBe(f.sha256);
    const again = await fetchData({ dataDir: data, manifest: m, mirror: server.url, verify: true });
    expect(again.fetched).toEqual([]);
    expect(server.requests).toHaveLength(4);
  });

  it('makes the torchvision-named float model from the int8 one when the mirror does not have it', async () => {
    const mirror = await tempDir();
    await mkdir(path.join(mirror, 'models'));
    await symlink(shared('models', 'mobilenetv2-12-int8.onnx'), path.join(mirror, INT8));
    const data = await tempDir();
    const lines: string[] = [];
    const report = await fetchData({ dataDir: data, manifest, paths: ['models/mobilenetv2.onnx'], mirror, log: (l) => lines.push(l) });
    expect(report.fetched).toEqual([INT8]);
    expect(report.derived).toEqual(['models/mobilenetv2.onnx']);
    expect(lines).toContain('fetch: making models/mobilenetv2.onnx from models/mobilenetv2-12-int8.onnx (mobilenetv2-int8-to-torchvision)');
    expect(await sha256File(path.join(data, 'models/mobilenetv2.onnx'))).toBe(await sha256File(shared('models', 'mobilenetv2.onnx')));
    expect(await leftovers(data)).toEqual([]);
  });

  it('without a mirror, names the files only a mirror has in one message and still makes what it can', async () => {
    const data = await tempDir();
    await mkdir(path.join(data, 'models'));
    await symlink(shared('models', 'mobilenetv2-12-int8.onnx'), path.join(data, INT8));
    const err = await rejection<Error>(fetchData({ dataDir: data, manifest, paths: ['models'] }));
    expect(err.message).toBe(`2 files have no public URL and come only from a mirror — models/mobilenetv2.json, models/imagenet-classes.json: set ATLAS_MIRROR (or --mirror) to a base URL or a folder laid out like the data directory, or copy them into ATLAS_DATA=${data}`);
    expect(existsSync(path.join(data, 'models/mobilenetv2.onnx'))).toBe(true);
    const lines: string[] = [];
    const images = await fetchData({ dataDir: data, manifest, paths: ['images'], dryRun: true, log: (l) => lines.push(l) });
    expect(images.fetched).toEqual([]);
    expect(lines).toEqual([`fetch: ${images.selected} files selected, 0 present; ${images.selected} only a mirror has; into ${data}`]);
  });

  it('reports a file of the wrong size rather than overwriting it, and a path nobody can provide', async () => {
    server = await serveRanges(SHARED);
    const data = await tempDir();
    await mkdir(path.join(data, 'models'));
    await writeFile(path.join(data, CARD), '{}');
    const m = parseManifest(subset([CARD, 'models/imagenet-classes.json']), 'subset');
    const err = await rejection<Error>(fetchData({ dataDir: data, manifest: m, paths: [CARD, 'models/mine.onnx'], mirror: server.url }));
    expect(err.message).toContain(`1 file in the data directory differs from the manifest (models/mobilenetv2.json has 2 bytes, the manifest says ${bytesOf(CARD).length}): delete it to fetch again`);
    expect(err.message).toContain(`not in the data manifest and not in the data directory: models/mine.onnx — put it there yourself (ATLAS_DATA=${data})`);
    expect(await readFile(path.join(data, CARD), 'utf8')).toBe('{}');
    expect(existsSync(path.join(data, 'models/imagenet-classes.json'))).toBe(true); // what it needs was still fetched
  });

  it("for a build: a spec whose files are all there fetches nothing and says nothing (a derived model's source is not needed)", async () => {
    const p = await testProject();
    const lines: string[] = [];
    const report = await fetchForSpec(p.spec, { dataDir: p.data, log: (l) => lines.push(l) });
    expect(report).toMatchObject({ fetched: [], derived: [], present: 3 });
    expect(lines).toEqual([]);
    const started = performance.now();
    const all = await fetchForSpec(path.join(REPO, 'content/article.experiments.yaml'), { dataDir: SHARED, log: (l) => lines.push(l) });
    expect(all.present).toBe(manifest.files.length);
    expect(lines).toEqual([]);
    console.log(`checked the default article's ${all.present} files by size in ${(performance.now() - started).toFixed(0)} ms`);
  });

  it('stops at the first unreachable host with one message, without trying every other file', async () => {
    const port = await closedPort();
    const data = await tempDir();
    const m = parseManifest(subset(PHOTOS), 'subset');
    const err = await rejection<Error>(fetchData({ dataDir: data, manifest: m, mirror: `http://127.0.0.1:${port}/`, jobs: 1 }));
    expect(err.message).toBe(`cannot fetch ${PHOTOS[0]} from http://127.0.0.1:${port}/${PHOTOS[0]}: connect ECONNREFUSED 127.0.0.1:${port}; offline or no such host? Check the mirror (ATLAS_MIRROR or --mirror: http://127.0.0.1:${port}/), or put the file in the data directory yourself (ATLAS_DATA=${data})`);
  });
});

describe('atlas fetch', () => {
  let server: RangeServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  const atlas = async (args: string[], env: Record<string, string> = {}) => {
    try {
      const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { cwd: REPO, env: { ...process.env, ...env } });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  it('fills an empty data directory from ATLAS_MIRROR, finds everything there on the next run, and verifies', async () => {
    server = await serveRanges(SHARED);
    const data = await tempDir();
    const manifestFile = path.join(await tempDir(), 'manifest.json');
    const files = [INT8, 'models/mobilenetv2.onnx', CARD, 'models/imagenet-classes.json', 'images/nips17-dev/000b7d55b6184b08.jpg'];
    await writeFile(manifestFile, JSON.stringify(subset(files)));
    const first = await atlas(['fetch', '--manifest', manifestFile, '--data', data, '--jobs', '2'], { ATLAS_MIRROR: server.url });
    expect(first.stderr).toContain(`fetch: 5 files selected, 0 present; 5 files to download (17.7 MB) from ${server.url}; into ${data}`);
    expect(first.stderr).toMatch(/fetch: 5 files downloaded \(17\.7 MB\) in \d+\.\d s/);
    expect(first.code).toBe(0);
    for (const f of files) expect(await sha256File(path.join(data, f)), f).toBe(await sha256File(shared(...f.split('/'))));
    const second = await atlas(['fetch', '--manifest', manifestFile, '--data', data, '--verify'], { ATLAS_MIRROR: server.url });
    expect(second).toMatchObject({ code: 0, stderr: `fetch: all 5 file(s) present in ${data}, sha256 verified\n` });
    expect(server.requests).toHaveLength(5);
  });

  it('two concurrent runs on one data directory download each file once (concurrent builds)', async () => {
    server = await serveRanges(SHARED);
    const data = await tempDir();
    const manifestFile = path.join(await tempDir(), 'manifest.json');
    const files = [INT8, 'models/mobilenetv2.onnx', CARD, 'models/imagenet-classes.json'];
    await writeFile(manifestFile, JSON.stringify(subset(files)));
    const run = () => atlas(['fetch', '--manifest', manifestFile, '--data', data], { ATLAS_MIRROR: server!.url });
    const [a, b] = await Promise.all([run(), run()]);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(server.requests.map((r) => r.path).sort()).toEqual(files.map((f) => `/${f}`).sort());
    for (const f of files) expect(await sha256File(path.join(data, f)), f).toBe(await sha256File(shared(...f.split('/'))));
    expect(await leftovers(data)).toEqual([]);
  });

  it('offline: exit code 1 and one line naming the file, the URL and ATLAS_DATA', async () => {
    const port = await closedPort();
    const data = await tempDir();
    const r = await atlas(['fetch', CARD, '--data', data], { ATLAS_MIRROR: `http://127.0.0.1:${port}` });
    expect(r.code).toBe(1);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('atlas: error:'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(new RegExp(`^atlas: error: cannot fetch models/(mobilenetv2|imagenet-classes)\\.json from http://127\\.0\\.0\\.1:${port}/models/\\S+: connect ECONNREFUSED .*\\(ATLAS_DATA=${data}\\)$`));
  });

  it('--spec fetches what the spec reads; --mirror and --dry-run', async () => {
    const data = await tempDir();
    const r = await atlas(['fetch', '--spec', 'content/article.experiments.yaml', '--data', data, '--mirror', SHARED, '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`fetch: ${manifest.files.length} files selected, 0 present; ${manifest.files.length} files to download`);
    expect(r.stderr).toContain('  would fetch models/mobilenetv2.onnx (14.0 MB)');
    expect(await readdir(data)).toEqual([]);
    const bad = await atlas(['fetch', '--jobs', '99', '--data', data]);
    expect(bad).toMatchObject({ code: 1, stderr: 'atlas: error: --jobs must be at most 16 (be polite to the host), got 99\n' });
  });
});

describe('the atlas command', () => {
  it('--version prints package.json\'s version, and package.json\'s bin runs src/cli/atlas.ts, which has a shebang', async () => {
    const pkg = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
    const { stdout } = await exec(process.execPath, [CLI, '--version']);
    expect(stdout.trim()).toBe(pkg.version);
    expect(pkg.bin).toEqual({ atlas: 'src/cli/atlas.ts' });
    const bin = await readFile(path.join(REPO, pkg.bin.atlas), 'utf8');
    expect(bin.startsWith('#!/usr/bin/env node\n')).toBe(true);
    const help = await exec(process.execPath, [path.join(REPO, pkg.bin.atlas), '--help']);
    expect(help.stdout).toMatch(/^\s+fetch \[options\] \[paths\.\.\.\]/m);
  });
});

/** An encoded ModelProto without one field of its graph (13: value_info), every other byte kept. */
function withoutGraphField(model: Uint8Array, field: number): Uint8Array {
  const varint = (b: Uint8Array, p: number): [number, number] => {
    let v = 0;
    for (let s = 1; ; s *= 128) {
      const x = b[p++];
      v += (x & 127) * s;
      if (x < 128) return [v, p];
    }
  };
  const encode = (v: number) => {
    const o: number[] = [];
    for (; v >= 128; v = Math.floor(v / 128)) o.push((v % 128) | 128);
    o.push(v);
    return o;
  };
  const fields = (b: Uint8Array) => {
    const out: { field: number; start: number; end: number; body: number }[] = [];
    for (let p = 0; p < b.length;) {
      const start = p;
      const [key, q] = varint(b, p);
      p = q;
      let body = p;
      if (key % 8 === 0) p = varint(b, p)[1];
      else if (key % 8 === 1) p += 8;
      else if (key % 8 === 5) p += 4;
      else {
        const [len, r] = varint(b, p);
        body = r;
        p = r + len;
      }
      out.push({ field: Math.floor(key / 8), start, end: p, body });
    }
    return out;
  };
  const parts: Uint8Array[] = [];
  for (const f of fields(model)) {
    if (f.field !== 7) {
      parts.push(model.subarray(f.start, f.end));
      continue;
    }
    const graph = model.subarray(f.body, f.end);
    const kept = Buffer.concat(fields(graph).filter((g) => g.field !== field).map((g) => graph.subarray(g.start, g.end)));
    parts.push(Uint8Array.from([...encode(7 * 8 + 2), ...encode(kept.length)]), kept);
  }
  return Buffer.concat(parts);
}
