// `astro build` of a tiny site that uses the real integration (content loader, AttackFigure, ModelComparison) against the test
// project's data: the page gets its attack figure with content-hashed images, and a prose-only edit rebuilds the
// page without recomputing anything.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { SPEC, testProject } from './helpers/project.ts';

const exec = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, '..');
const ASTRO = path.join(REPO, 'node_modules', 'astro', 'bin', 'astro.mjs');

async function writeSite(root: string, prose: string): Promise<void> {
  // The project's src/ appears inside the site as src/atlas (a symlink Vite keeps as is): Astro compiles components'
  // styles only for files under the site root.
  await mkdir(path.join(root, 'src', 'pages'), { recursive: true });
  if (!existsSync(path.join(root, 'src', 'atlas'))) await symlink(path.join(REPO, 'src'), path.join(root, 'src', 'atlas'));
  await mkdir(path.join(root, 'content'), { recursive: true });
  if (!existsSync(path.join(root, 'node_modules'))) await symlink(path.join(REPO, 'node_modules'), path.join(root, 'node_modules'));
  await writeFile(path.join(root, 'astro.config.mjs'), `import mdx from '@astrojs/mdx';\nexport default { integrations: [mdx()], vite: { resolve: { preserveSymlinks: true } } };\n`);
  await writeFile(path.join(root, 'src', 'content.config.ts'),
    `import { defineCollection } from 'astro:content';\nimport { ExperimentEntry } from './atlas/content/experiment-entry.ts';\n` +
    `import { experimentsLoader } from './atlas/content/experiments-loader.ts';\n` +
    `export const collections = { experiments: defineCollection({ loader: experimentsLoader({ spec: 'experiments.yaml' }), schema: ExperimentEntry }) };\n`);
  await writeFile(path.join(root, 'src', 'pages', 'index.astro'),
    `---\nimport { Content } from '../../content/article.mdx';\n---\n<html><body><Content /></body></html>\n`);
  await writeFile(path.join(root, 'content', 'article.mdx'),
    `import AttackFigure from '../src/atlas/components/figures/AttackFigure.astro';\nimport ModelComparison from '../src/atlas/components/figures/ModelComparison.astro';\n\n` +
    `${prose}\n\n<AttackFigure experiment="weasel_to_truck" />\n\n<ModelComparison />\n`);
}

async function build(root: string, env: Record<string, string>): Promise<string> {
  const { stdout, stderr } = await exec(process.execPath, [ASTRO, 'build', '--root', root], { env: { ...process.env, ...env }, maxBuffer: 1 << 24 });
  return stdout + stderr;
}

describe('site build', () => {
  it('builds the page with its computed attack figure, and rebuilds prose edits from the cache', async () => {
    // A private article: its photographs (from imagenet-samples, no licence to publish) may be shown.
    const p = await testProject(`${SPEC}private: true\n`);
    const env = { ATLAS_DATA: p.data, ATLAS_CACHE: p.cache };
    await writeSite(p.root, 'First draft of the prose.');
    const log1 = await build(p.root, env);
    expect(log1).toMatch(/2 step\(s\) run, 0 cached/);
    const html = await readFile(path.join(p.root, 'dist', 'index.html'), 'utf8');
    expect(html).toContain('First draft of the prose.');
    expect(html).toMatch(/weasel → trailer truck/);
    // The spec has no compare: block, so the comparison figure is a notice (and the build does not fail).
    expect(html).toMatch(/data-notice="model-comparison"[^>]*>\s*\(No model comparison: the experiment spec has no <code[^>]*>compare:<\/code> block/);
    const images = [...html.matchAll(/src="\/(_atlas\/[0-9a-f]{20}\.webp)"/g)].map((m) => m[1]);
    expect(images).toHaveLength(3);
    for (const img of images) expect(existsSync(path.join(p.root, 'dist', img))).toBe(true);
    // Display images are WebP (sharp reads the format from the bytes, not the name).
    for (const img of images) expect((await sharp(path.join(p.root, 'dist', img)).metadata()).format).toBe('webp');

    await writeSite(p.root, 'Second draft: only the prose changed.');
    const log2 = await build(p.root, env);
    expect(log2).toMatch(/0 step\(s\) run, 2 cached/);
    const html2 = await readFile(path.join(p.root, 'dist', 'index.html'), 'utf8');
    expect(html2).toContain('Second draft: only the prose changed.');
    expect([...html2.matchAll(/src="\/(_atlas\/[0-9a-f]{20}\.webp)"/g)].map((m) => m[1])).toEqual(images);
  });
});
