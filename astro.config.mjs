// Astro 7 with MDX. Astro 7's default Markdown processor runs no remark/rehype plugins, so the unified processor is
// configured explicitly: remark-math parses $…$ and $$…$$, rehype-katex renders them at build time (no client JS).
import mdx from '@astrojs/mdx';
import { unified } from '@astrojs/markdown-remark';
import { defineConfig } from 'astro/config';
import rehypeKatex from 'rehype-katex';
import remarkMath from 'remark-math';
import { outDir, siteBase } from './src/config.ts';
import { atlasAssets } from './src/content/experiments-loader.ts';

export default defineConfig({
  // Works from any static host; set ATLAS_BASE (or `astro build --base`) when the article is served under a sub-path.
  base: siteBase(),
  // Tests build into a temporary folder (ATLAS_OUT) so they never touch a user's dist/.
  outDir: outDir(),
  // atlasAssets: the loader publishes every cached image; the build ships only those a page names.
  integrations: [mdx(), atlasAssets()],
  // The stylesheets are shared by ~900 atlas pages: one cached file each instead of a copy in every page.
  build: { inlineStylesheets: 'never' },
  markdown: {
    processor: unified({ remarkPlugins: [remarkMath], rehypePlugins: [rehypeKatex] }),
  },
});
