// Collections of the site. `experiments` holds the computed results of content/article.experiments.yaml, one entry
// per step id (`weasel_to_truck`, …); MDX components read them with getEntry('experiments', id).
import { defineCollection } from 'astro:content';
import { experimentsLoader } from './content/experiments-loader.ts';

export const collections = {
  experiments: defineCollection({
    loader: experimentsLoader({ spec: process.env.ATLAS_SPEC ?? 'content/article.experiments.yaml' }),
  }),
};
