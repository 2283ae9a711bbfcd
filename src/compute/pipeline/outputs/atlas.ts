// atlas.json of the `atlas` step: per analysed neuron, what its page in the atlas of neurons shows besides the other
// steps' numbers — the reference photos it fires most for over the whole reference set, its top activating patches
// among the photos the article may show (as one sprite sheet and a thumbnail), and how it ranks the classes.
import { z } from 'zod';
import { jsonOutput } from './json-file.ts';

const int = () => z.number().int();

export const AtlasTopImage = z.strictObject({
  /** the reference photo's path in the data directory */
  image: z.string(),
  class: int(),
  name: z.string(),
  /** spatial-mean activation */
  activation: z.number(),
  /** carries a licence to publish (or the spec is private) */
  publishable: z.boolean(),
});

export const AtlasPatch = z.strictObject({
  /** 0-based; the tile at (rank mod 4, ⌊rank / 4⌋) of the sprite */
  rank: int(),
  image: z.string(),
  class: int(),
  name: z.string(),
  /** the neuron's spatial maximum on that photo */
  activation: z.number(),
  /** [top, left, bottom, right] of the cell's receptive field, in crop pixels */
  box: z.tuple([int(), int(), int(), int()]),
});

export const AtlasClass = z.strictObject({
  class: int(),
  name: z.string(),
  /** its reference photos */
  n: int(),
  /** mean spatial-mean activation over them */
  mean: z.number(),
  /** AUROC of its photos against the rest of the reference set (descriptive: no test, n is small) */
  auroc: z.number(),
});

/** What the neuron detects: the WordNet synset it separates best, tested against shuffled labels (neuron-labels.ts). */
export const AtlasLabel = z.strictObject({
  /** null for a constant channel */
  wnid: z.string().nullable(),
  name: z.string().nullable(),
  /** the synset's reference photos */
  n: int(),
  auroc: z.number(),
  z: z.number(),
  p: z.number(),
  q: z.number(),
  /** q ≤ the layer's `labels.fdr` */
  labelled: z.boolean(),
});
export type AtlasLabel = z.infer<typeof AtlasLabel>;

export const AtlasNeuron = z.strictObject({
  channel: int(),
  label: AtlasLabel,
  /** the whole reference set's top photos by spatial mean, largest first */
  top_images: z.array(AtlasTopImage),
  /** top patches by spatial maximum over the publishable photos, largest first; empty when there are none */
  patches: z.array(AtlasPatch),
  /** PNG of the entry: the patches as a grid of SPRITE_COLUMNS columns of `patch_size` px; null without patches */
  sprite: z.string().nullable(),
  /** PNG of the entry: the first patch alone; null without patches */
  thumb: z.string().nullable(),
  /** classes with at least 2 reference photos, by AUROC against the rest, highest first */
  classes: z.array(AtlasClass),
});
export type AtlasNeuron = z.infer<typeof AtlasNeuron>;

export const AtlasLayer = z.strictObject({
  layer: z.string(),
  channels: int(),
  /** reference photos, and the publishable ones the patches come from */
  n: int(),
  publishable: int(),
  patch_size: int(),
  columns: int(),
  /** how the labels were tested: candidate synsets, shuffles, photos a synset needs inside and outside, FDR level */
  labels: z.strictObject({ concepts: int(), permutations: int(), min_images: int(), fdr: z.number() }),
  /** [C], channel order */
  neurons: z.array(AtlasNeuron),
});
export type AtlasLayer = z.infer<typeof AtlasLayer>;

export const Atlas = z.strictObject({ layers: z.record(z.string(), AtlasLayer) });
export type Atlas = z.infer<typeof Atlas>;

export const ATLAS_JSON = jsonOutput('atlas.json', Atlas);
