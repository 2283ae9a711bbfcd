// Astro content-layer loader for computed results: runs the experiment spec's pipeline (only uncached steps
// compute) and stores one entry per step, keyed by step id, with the step's cache key as its digest — the same
// contract as Astro's own loaders, so unchanged steps are neither recomputed nor re-rendered. Figure images are
// published under a content hash as WebP (`_atlas/<hash>.webp`, the hash covering the PNG and the encoder settings;
// an attack's adversarial images also as their exact PNG, `_atlas/<sha256>.png`), so a changed figure never hides
// behind a stale cache.
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AstroIntegration } from 'astro';
import type { Loader } from 'astro/loaders';
import sharp, { type WebpOptions } from 'sharp';
import { runPipeline, type StepOutcome } from '../compute/pipeline/run-pipeline.ts';
import { terminalReporter } from '../compute/pipeline/terminal-reporter.ts';
import { SPEC_ENTRY } from '../compute/pipeline/step-ids.ts';
import { withQueue } from '../compute/queue/with-queue.ts';
import { dataDir, mirror, queueUrl } from '../config.ts';
import { fetchForSpec } from '../data-dir/fetch-data.ts';

export const ASSET_DIR = '_atlas';

// Display encodings, chosen by comparing real cache images with their PNGs side by side (crops at 2-4x):
// - photos, adversarial images and thumbnails: lossy quality 82. At 2x the grass and fur of the
//   photos and the patches' edges match the PNG; quality 75 visibly smooths grass and fur and blocks saturated reds,
//   90 looks no better and weighs ~45 % more. A 224 px photo: ~120 KB PNG → ~10 KB WebP.
// - perturbation maps and feature visualizations: lossless. Lossy WebP halves chroma resolution (4:2:0), which
//   turns the perturbation's per-pixel saturated colours into pastel smears at any quality (14.6 dB PSNR even at
//   92) and smooths the featurevis images' one-pixel colour speckle; lossless is still smaller than the PNG
//   (perturbation maps ~28-52 KB vs 34-60 KB, feature visualizations ~38 KB vs ~47 KB).
// - the atlas's patch sprites (4×4 tiles of 64 px, one per neuron page, ~900 of them): lossy quality 75. Their tiles
//   are shown at 1×; at 3× crops q75 and q82 are hard to tell apart and q75 weighs ~20 % less (~9 vs ~11 KB a
//   sprite). AVIF (quality 55, effort 2) is ~40 % smaller but visibly smooths small textures (a butterfly's spots,
//   a thistle) and encodes ~5× slower.
const LOSSY: WebpOptions = { quality: 82, effort: 4 };
const LOSSLESS: WebpOptions = { lossless: true, effort: 4 };
const SPRITE: WebpOptions = { quality: 75, effort: 4 };

/** How a step's PNG is encoded for display. */
export function displayEncoding(kind: string, name: string): WebpOptions {
  if (kind === 'featurevis' || name.endsWith('.perturbation.png')) return LOSSLESS;
  return kind === 'atlas' && name.endsWith('.patches.png') ? SPRITE : LOSSY;
}

/** Whether a step's PNG is also published as itself: an attack's adversarial images, whose exact pixels a reader may need. */
export function publishesExact(kind: string, name: string): boolean {
  return kind === 'attack' && name.endsWith('.adversarial.png');
}

/** The published WebP's name: a hash of the PNG's sha256, the encoder settings and the libwebp that applies them. */
export function displayName(sha: string, options: WebpOptions): string {
  const settings = JSON.stringify(Object.fromEntries(Object.entries(options).sort(([a], [b]) => a.localeCompare(b))));
  return `${createHash('sha256').update(`${sha}\n${settings}\nlibwebp ${sharp.versions.webp}`).digest('hex').slice(0, 20)}.webp`;
}

/** Every display encoding in one tag, part of each entry's digest: a changed encoding re-renders the pages. */
const ENCODINGS = createHash('sha256').update(JSON.stringify([LOSSY, LOSSLESS, SPRITE, sharp.versions.webp])).digest('hex').slice(0, 8);

export interface PublishedImage {
  /** the display file's name in the asset folder */
  display: string;
  /** the exact PNG's name in the asset folder, where one is published */
  exact?: string;
}

let tmpCount = 0;

/**
 * Publishes one image of a step (`file`, the cache's copy; `sha`, its sha256) into `assetDir`: a PNG as WebP (an
 * attack's adversarial PNG also byte for byte), any other image as is. A file already there is kept (its name fixes
 * its content); a new one is written under a temporary name and renamed, so an interrupted build leaves no half file.
 */
export async function publishImage(kind: string, name: string, file: string, sha: string, assetDir: string): Promise<PublishedImage> {
  const put = async (target: string, write: (tmp: string) => Promise<unknown>) => {
    const dest = path.join(assetDir, target);
    if (existsSync(dest)) return;
    const tmp = path.join(assetDir, `.${target}.${process.pid}.${tmpCount++}.tmp`);
    try {
      await write(tmp);
      await rename(tmp, dest);
    } finally {
      await rm(tmp, { force: true });
    }
  };
  if (!name.endsWith('.png')) {
    const display = `${sha.slice(0, 20)}${path.extname(name)}`;
    await put(display, (tmp) => copyFile(file, tmp));
    return { display };
  }
  const options = displayEncoding(kind, name);
  const display = displayName(sha, options);
  // sharp writes no metadata by default, so the bytes depend only on the pixels, the settings and libwebp.
  await put(display, async (tmp) => writeFile(tmp, await sharp(file).webp(options).toBuffer()));
  if (!publishesExact(kind, name)) return { display };
  const exact = `${sha.slice(0, 20)}.png`;
  await put(exact, (tmp) => copyFile(file, tmp));
  return { display, exact };
}

/** Text files of a built site that may name an image: pages, scripts, styles, data. */
const TEXT = /\.(html?|m?js|css|json|svg|xml|txt)$/;

/**
 * Deletes from a built site's `_atlas/` every file that none of its pages, scripts, styles or data files names: the
 * loader publishes every image of every step (eps-sweep runs, unshown photos, every exact PNG), a page shows a
 * fraction. The loader's own folder (public/_atlas) is left whole, so later builds still re-use its encodings.
 */
export async function pruneUnreferencedAssets(outDir: string): Promise<{ files: number; bytes: number }> {
  const assets = path.join(outDir, ASSET_DIR);
  if (!existsSync(assets)) return { files: 0, bytes: 0 };
  const named = new Set<string>();
  for (const f of await readdir(outDir, { recursive: true, withFileTypes: true })) {
    if (!f.isFile() || !TEXT.test(f.name)) continue;
    // `_atlas/<name>` as pages write it, or `_atlas\/<name>` as an escaping serializer may.
    for (const m of (await readFile(path.join(f.parentPath, f.name), 'utf8')).matchAll(/_atlas\\?\/([0-9a-f]{20}\.[a-z]+)/g)) named.add(m[1]);
  }
  let files = 0;
  let bytes = 0;
  for (const f of await readdir(assets, { withFileTypes: true })) {
    if (!f.isFile() || named.has(f.name)) continue;
    const file = path.join(assets, f.name);
    bytes += (await stat(file)).size;
    files++;
    await rm(file);
  }
  return { files, bytes };
}

/** The integration that leaves unreferenced images out of a build (`integrations: [atlasAssets()]`). */
export function atlasAssets(): AstroIntegration {
  return {
    name: 'atlas-assets',
    hooks: {
      'astro:build:done': async ({ dir, logger }) => {
        const { files, bytes } = await pruneUnreferencedAssets(fileURLToPath(dir));
        logger.info(`${files} image(s) no page names left out of ${ASSET_DIR}/ (${(bytes / 1e6).toFixed(1)} MB)`);
      },
    },
  };
}

export interface ExperimentsLoaderOptions {
  /** the experiment spec, relative to the project root */
  spec: string;
}

export function experimentsLoader({ spec }: ExperimentsLoaderOptions): Loader {
  return {
    name: 'atlas-experiments',
    async load({ store, logger, config, watcher, parseData }) {
      const root = fileURLToPath(config.root);
      const specPath = path.resolve(root, spec);
      const assetDir = path.join(fileURLToPath(config.publicDir), ASSET_DIR);
      await mkdir(assetDir, { recursive: true });
      const sync = async () => {
        // A new user's first build fetches what the spec reads and the data directory lacks (atlas fetch); with every
        // file there it only checks their sizes.
        await fetchForSpec(specPath, { dataDir: dataDir(root), mirror: mirror(), log: (line) => logger.info(line), progress: true });
        const result = await withQueue(queueUrl(), (line) => logger.info(line), (shardRunner) =>
          runPipeline({ specPath, projectRoot: root, reporter: terminalReporter((line) => logger.info(line)), shardRunner }));
        store.clear();
        const published = new Set<string>();
        for (const step of result.steps) {
          const raw = { ...(await entryData(step, result.spec.id, result.spec.model.file, assetDir, published)), private: result.spec.private };
          // Checked against the collection's schema (experiment-entry.ts in this project's content.config.ts), so a
          // figure reads the shape its types promise.
          store.set({ id: step.id, data: await parseData({ id: step.id, data: raw }), digest: `${step.key}:${result.spec.private}:${ENCODINGS}` });
        }
        const { spec: s, model, compareSkipped } = result;
        const specData = {
          kind: 'spec', spec: s.id, model: s.model.file, private: s.private, exact: {},
          model_label: model.label, model_task: model.task, layers: s.layers, roles: s.roles,
          compare_label: s.compare ? s.compare.label ?? s.compare.id : null,
          // Why no second model is attacked, for the article's notice.
          compare_absent: s.compare ? null : compareSkipped ?? "the spec has no compare: block",
        };
        const specKey = createHash('sha256').update(JSON.stringify(specData)).digest('hex');
        store.set({ id: SPEC_ENTRY, data: await parseData({ id: SPEC_ENTRY, data: { ...specData, key: specKey } }), digest: specKey });
        // Images of earlier specs would otherwise ship with every later build.
        for (const f of await readdir(assetDir)) if (!published.has(f)) await rm(path.join(assetDir, f), { force: true });
      };
      await sync();
      if (watcher) {
        // In `astro dev`, a saved spec recomputes only the steps whose inputs changed, then the page reloads.
        let running = Promise.resolve();
        watcher.add(specPath);
        watcher.on('change', (changed) => {
          if (path.resolve(changed) !== specPath) return;
          running = running.then(sync).catch((err) => logger.error(`experiments: ${(err as Error).message}`));
        });
      }
    },
  };
}

/**
 * The step's JSON outputs (`results.json` → `results`, …), with every reference to one of its images replaced by the
 * image's published, content-hashed path. Binary arrays stay in the cache.
 */
async function entryData(step: StepOutcome, specId: string, model: string, assetDir: string, publishedFiles: Set<string>): Promise<Record<string, unknown>> {
  const entry = step.entry;
  if (!entry) throw new Error(`internal: step ${step.id} has no cache entry`);
  const published = new Map<string, string>();
  const exact: Record<string, string> = {};
  const images = Object.entries(entry.manifest.files).filter(([name]) => /\.(png|webp|jpe?g|svg)$/.test(name));
  // Encoding is the slow part of a first build: a few images at once, on libuv's threads.
  const results = new Array<PublishedImage>(images.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(images.length, os.availableParallelism()) }, async () => {
    for (let i = next++; i < images.length; i = next++) results[i] = await publishImage(step.kind, images[i][0], entry.file(images[i][0]), images[i][1], assetDir);
  }));
  images.forEach(([name], i) => {
    const { display, exact: png } = results[i];
    published.set(name, `${ASSET_DIR}/${display}`);
    publishedFiles.add(display);
    // A reader who needs an adversarial image's real pixels downloads the exact 8-bit PNG the attack saved.
    if (png) {
      exact[`${ASSET_DIR}/${display}`] = `${ASSET_DIR}/${png}`;
      publishedFiles.add(png);
    }
  });
  const rewrite = (v: unknown): unknown => {
    if (typeof v === 'string') return published.get(v) ?? v;
    if (Array.isArray(v)) return v.map(rewrite);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rewrite(x)]));
    return v;
  };
  const data: Record<string, unknown> = {};
  for (const name of Object.keys(entry.manifest.files).filter((f) => f.endsWith('.json'))) {
    data[name.replace(/\.json$/, '')] = rewrite(JSON.parse(await readFile(entry.file(name), 'utf8')));
  }
  // An attack's results are what its figure reads, so they sit at the top level.
  const main = (data.results ?? {}) as Record<string, unknown>;
  return { ...data, ...main, kind: step.kind, key: step.key, spec: specId, model, exact };
}
