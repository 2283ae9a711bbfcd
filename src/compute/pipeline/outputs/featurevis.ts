// The featurevis step's featurevis.json (each rendered neuron with the two checks that it worked) and curves.json
// (the objective at every optimisation step).
import { z } from 'zod';
import { jsonOutput } from './json-file.ts';

const int = () => z.number().int();

export const RenderedNeuron = z.strictObject({
  layer: z.string(),
  channel: int(),
  /** why it was rendered: named in the spec, or its rank in a ranking with that ranking's verdict */
  chosen_by: z.string(),
  /** PNG of the entry (size × size) */
  image: z.string(),
  /** the objective at the last step */
  objective: z.number(),
  /** the neuron's spatial-mean activation on the rendered image, as the model sees it */
  activation: z.number(),
  /** the largest spatial-mean activation of any reference photo */
  photo_max: z.number(),
  /** that photo's path in the data directory */
  photo_max_image: z.string().nullable(),
  /** activation / photo_max */
  ratio: z.number(),
  high_frequency: z.number(),
  /** high_frequency / the photos' median */
  high_frequency_ratio: z.number(),
});
export type RenderedNeuron = z.infer<typeof RenderedNeuron>;

export const Featurevis = z.strictObject({
  size: int(),
  steps: int(),
  batch: int(),
  param: z.enum(['fft', 'pixel']),
  photos: z.strictObject({ n: int(), high_frequency_median: z.number() }),
  /** in the spec's order */
  neurons: z.array(RenderedNeuron),
  /** over the rendered neurons, for the prose: how many beat every reference photo (ratio > 1), and the extremes */
  summary: z.strictObject({
    n: int(),
    beat_photos: int(),
    min_ratio: z.number(),
    max_ratio: z.number(),
    max_high_frequency_ratio: z.number(),
  }),
});
export type Featurevis = z.infer<typeof Featurevis>;

export const FEATUREVIS_JSON = jsonOutput('featurevis.json', Featurevis);

/** `<layer>:<channel>` → [steps] objective values */
export const Curves = z.record(z.string(), z.array(z.number()));
export type Curves = z.infer<typeof Curves>;

export const CURVES_JSON = jsonOutput('curves.json', Curves);
