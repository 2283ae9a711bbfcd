// Astro content-layer loader for computed results: runs the experiment spec's pipeline (only uncached steps
// compute) and stores one entry per step, keyed by step id, with the step's cache key as its digest — the same
// contract as Astro's own loaders, so unchanged steps are neither recomputed nor re-rendered. Figure images are
// published under their content hash (`_atlas/<sha256>.png`), so a changed figure never hides behind a stale cache.
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Loader } from 'astro/loaders';
import { runPipeline, type StepOutcome } from '../compute/pipeline/run-pipeline.ts';
import { terminalReporter } from '../compute/pipeline/terminal-reporter.ts';

export const ASSET_DIR = '_atlas';

export interface ExperimentsLoaderOptions {
  /** the experiment spec, relative to the project root */
  spec: string;
}

export function experimentsLoader({ spec }: ExperimentsLoaderOptions): Loader {
  return {
    name: 'atlas-experiments',
    async load({ store, logger, config, watcher }) {
      const root = fileURLToPath(config.root);
      const specPath = path.resolve(root, spec);
      const assetDir = path.join(fileURLToPath(config.publicDir), ASSET_DIR);
      const sync = async () => {
        const result = await runPipeline({ specPath, projectRoot: root, reporter: terminalReporter((line) => logger.info(line)) });
        store.clear();
        for (const step of result.steps) {
          store.set({ id: step.id, data: await entryData(step, result.spec.id, result.spec.model.file, assetDir), digest: step.key });
        }
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

/** The step's results.json, with each image file replaced by its published, content-hashed path. */
async function entryData(step: StepOutcome, specId: string, model: string, assetDir: string): Promise<Record<string, unknown>> {
  const entry = step.entry;
  if (!entry) throw new Error(`internal: step ${step.id} has no cache entry`);
  const results = JSON.parse(await readFile(entry.file('results.json'), 'utf8'));
  const published = new Map<string, string>();
  await mkdir(assetDir, { recursive: true });
  for (const [name, sha] of Object.entries(entry.manifest.files)) {
    if (name.endsWith('.json')) continue;
    const hashed = `${sha.slice(0, 20)}${path.extname(name)}`;
    const target = path.join(assetDir, hashed);
    if (!existsSync(target)) await copyFile(entry.file(name), target);
    published.set(name, `${ASSET_DIR}/${hashed}`);
  }
  const rows = (results.rows ?? []).map((row: { images?: Record<string, string> }) => ({
    ...row,
    images: Object.fromEntries(Object.entries(row.images ?? {}).map(([k, v]) => [k, published.get(v) ?? v])),
  }));
  return { ...results, rows, kind: step.kind, key: step.key, spec: specId, model };
}
