// Astro content-layer loader for computed results: runs the experiment spec's pipeline (only uncached steps
// compute) and stores one entry per step, keyed by step id, with the step's cache key as its digest — the same
// contract as Astro's own loaders, so unchanged steps are neither recomputed nor re-rendered. Figure images are
// published under their content hash as WebP (`_atlas/<hash>.webp`; adversarial images also as their exact PNG), so a
// changed figure never hides behind a stale cache.
import { copyFile, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Loader } from 'astro/loaders';
import sharp from 'sharp';
import { runPipeline, type StepOutcome } from '../compute/pipeline/run-pipeline.ts';
import { terminalReporter } from '../compute/pipeline/terminal-reporter.ts';

export const ASSET_DIR = '_atlas';

/**
 * Display images are WebP: at quality 82 the photos, perturbation maps and patch sprites look like their PNGs at
 * their shown size and weigh a fraction (the exact adversarial PNG stays published beside its WebP). The settings are
 * part of a display file's name, so changing them republishes every image.
 */
const DISPLAY_WEBP_OPTIONS = { quality: 82, effort: 4 } as const;
const DISPLAY_WEBP = JSON.stringify(DISPLAY_WEBP_OPTIONS);

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
        const result = await runPipeline({ specPath, projectRoot: root, reporter: terminalReporter((line) => logger.info(line)) });
        store.clear();
        const published = new Set<string>();
        for (const step of result.steps) {
          const raw = { ...(await entryData(step, result.spec.id, result.spec.model.file, assetDir, published)), private: result.spec.private };
          // Checked against the collection's schema (experiment-entry.ts in this project's content.config.ts), so a
          // figure reads the shape its types promise.
          store.set({ id: step.id, data: await parseData({ id: step.id, data: raw }), digest: `${step.key}:${result.spec.private}` });
        }
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
  for (const [name, sha] of Object.entries(entry.manifest.files)) {
    if (!/\.(png|webp|jpe?g|svg)$/.test(name)) continue;
    const display = name.endsWith('.png') ? `${createHash('sha256').update(`${sha}:${DISPLAY_WEBP}`).digest('hex').slice(0, 20)}.webp` : `${sha.slice(0, 20)}${path.extname(name)}`;
    const target = path.join(assetDir, display);
    if (!existsSync(target)) {
      if (name.endsWith('.png')) await sharp(entry.file(name)).webp(DISPLAY_WEBP_OPTIONS).toFile(target);
      else await copyFile(entry.file(name), target);
    }
    published.set(name, `${ASSET_DIR}/${display}`);
    publishedFiles.add(display);
    // A reader who needs an adversarial image's real pixels downloads the exact 8-bit PNG the attack saved.
    if (name.endsWith('.adversarial.png')) {
      const png = `${sha.slice(0, 20)}.png`;
      if (!existsSync(path.join(assetDir, png))) await copyFile(entry.file(name), path.join(assetDir, png));
      exact[`${ASSET_DIR}/${display}`] = `${ASSET_DIR}/${png}`;
      publishedFiles.add(png);
    }
  }
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
