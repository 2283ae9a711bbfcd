// Collections of the site. `experiments` holds the computed results of the experiment spec (ATLAS_SPEC, else
// content/article.experiments.yaml), one entry per step id (`weasel_to_truck`, …); MDX components read them with
// getEntry('experiments', id).
import { defineCollection } from 'astro:content';
import { specPath } from './config.ts';
import { ExperimentEntry } from './content/experiment-entry.ts';
import { experimentsLoader } from './content/experiments-loader.ts';

export const collections = {
  experiments: defineCollection({
    loader: experimentsLoader({ spec: specPath() }),
    // discriminated by the step's kind; figures narrow to the kind they read (components/experiment-data.ts)
    schema: ExperimentEntry,
  }),
};
