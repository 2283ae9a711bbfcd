// `astro build` of a tiny site that uses the real integration (content loader, AttackFigure, ModelComparison) against the test
// project's data: the page gets its attack figure with content-hashed WebP images (an adversarial image's exact PNG
// beside it), and a prose-only edit rebuilds the page without recomputing anything.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
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
  await writeFile(path.join(root, 'astro.config.mjs'), `import mdx from '@astrojs/mdx';\nimport { atlasAssets } from './src/atlas/content/experiments-loader.ts';\n` +
    `export default { integrations: [mdx(), atlasAssets()], vite: { resolve: { preserveSymlinks: true } } };\n`);
  await writeFile(path.join(root, 'src', 'content.config.ts'),
    `import { defineCollection } from 'astro:content';\nimport { ExperimentEntry } from './atlas/content/experiment-entry.ts';\n` +
    `import { experimentsLoader } from './atlas/content/experiments-loader.ts';\n` +
    `export const collections = { experiments: defineCollection({ loader: experimentsLoader({ spec: 'experiments.yaml' }), schema: ExperimentEntry }) };\n`);
  // The entries' data as the loader stored it, for the test to read; its image paths spelt `@atlas/…`, so that this
  // page names no image and the build keeps only those the article shows.
  await writeFile(path.join(root, 'src', 'pages', 'entries.json.ts'),
    `import { getCollection } from 'astro:content';\n` +
    `export async function GET() { return new Response(JSON.stringify((await getCollection('experiments')).map((e) => e.data)).replaceAll('_atlas/', '@atlas/')); }\n`);
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
    expect(html).toMatch(/data-notice="model-comparison"[^>]*>\s*\(No model comparison: the spec has no compare: block\.\)/);
    const images = [...html.matchAll(/src="\/(_atlas\/[0-9a-f]{20}\.webp)"/g)].map((m) => m[1]);
    expect(images).toHaveLength(3);
    for (const img of images) {
      // WebP by its bytes (sharp reads the format from them, not from the name), and it decodes at the attack's size.
      expect((await sharp(path.join(p.root, 'dist', img)).metadata()).format).toBe('webp');
      const { info } = await sharp(path.join(p.root, 'dist', img)).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height]).toEqual([224, 224]);
    }

    // Each attack's adversarial image is also published as the exact PNG the attack saved in its cache entry,
    // byte for byte, and the entry's `exact` maps the display image to it; no other image has one.
    type Data = { kind: string; key: string; rows?: { images: Record<string, string> }[]; exact: Record<string, string> };
    const entries = JSON.parse((await readFile(path.join(p.root, 'dist', 'entries.json'), 'utf8')).replaceAll('@atlas/', '_atlas/')) as Data[];
    const attacks = entries.filter((e) => e.kind === 'attack');
    expect(attacks).toHaveLength(2);
    const published = path.join(p.root, 'public');
    for (const a of attacks) {
      const cached = (await readdir(path.join(p.cache, 'attack', a.key))).filter((f) => f.endsWith('.adversarial.png'));
      expect(cached).toHaveLength(a.rows!.length);
      expect(Object.keys(a.exact).sort()).toEqual(a.rows!.map((r) => r.images.adversarial).sort());
      for (const r of a.rows!) {
        const png = a.exact[r.images.adversarial];
        expect(png).toMatch(/^_atlas\/[0-9a-f]{20}\.png$/);
        const bytes = await readFile(path.join(published, png));
        const same = await Promise.all(cached.map(async (f) => bytes.equals(await readFile(path.join(p.cache, 'attack', a.key, f)))));
        expect(same.filter(Boolean)).toHaveLength(1);
      }
    }
    expect(attacks.find((a) => a.rows!.some((r) => images.includes(r.images.adversarial)))).toBeDefined();
    expect(entries.filter((e) => e.kind !== 'attack').every((e) => Object.keys(e.exact).length === 0)).toBe(true);
    // The loader publishes every image (both attacks', the exact PNGs); the build ships only those a page names.
    const all = attacks.flatMap((a) => [...a.rows!.flatMap((r) => Object.values(r.images)), ...Object.values(a.exact)]);
    expect((await readdir(path.join(published, '_atlas'))).map((f) => `_atlas/${f}`).sort()).toEqual([...new Set(all)].sort());
    expect((await readdir(path.join(p.root, 'dist', '_atlas'))).map((f) => `_atlas/${f}`).sort()).toEqual([...images].sort());
    expect(log1).toContain(`${new Set(all).size - images.length} image(s) no page names left out of _atlas/`);

    // Files no entry publishes (an earlier spec's) are pruned, whatever their extension.
    const stale = ['0123456789abcdef0123.webp', '0123456789abcdef0123.png'];
    for (const f of stale) await writeFile(path.join(published, '_atlas', f), 'stale');

    await writeSite(p.root, 'Second draft: only the prose changed.');
    const log2 = await build(p.root, env);
    expect(log2).toMatch(/0 step\(s\) run, 2 cached/);
    const html2 = await readFile(path.join(p.root, 'dist', 'index.html'), 'utf8');
    expect(html2).toContain('Second draft: only the prose changed.');
    expect([...html2.matchAll(/src="\/(_atlas\/[0-9a-f]{20}\.webp)"/g)].map((m) => m[1])).toEqual(images);
    for (const f of stale) {
      expect(existsSync(path.join(published, '_atlas', f))).toBe(false);
    }
  });
});
