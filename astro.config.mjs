// Astro 7 with MDX. Astro 7's default Markdown processor runs no remark/rehype plugins, so the unified processor is
// configured explicitly: remark-math parses $…$ and $$…$$, rehype-katex renders them at build time (no client JS).
import mdx from '@astrojs/mdx';
import { unified } from '@astrojs/markdown-remark';
import { defineConfig } from 'astro/config';
import rehypeKatex from 'rehype-katex';
import remarkMath from 'remark-math';

export default defineConfig({
  // Works from any static host; set `base` (or ATLAS_BASE) when the article is served under a sub-path.
  base: process.env.ATLAS_BASE ?? '/',
  // Tests build into a temporary folder (ATLAS_OUT) so they never touch a user's dist/.
  outDir: process.env.ATLAS_OUT ?? './dist',
  integrations: [mdx()],
  markdown: {
    processor: unified({ remarkPlugins: [remarkMath], rehypePlugins: [rehypeKatex] }),
  },
});
