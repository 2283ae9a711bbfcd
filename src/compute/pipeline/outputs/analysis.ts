// The neuron-analysis steps' JSON: activations.json (what the reference set's .npy arrays hold), neurons.json (one
// attack's fragility, heatmaps and statistics per layer) and the polysemantic step's polysemantic.json,
// histograms.json and top_images.json. Layers are keyed by the analysed model's own layer names (a compared
// model's `<id>/…` steps use its names).
import { z } from 'zod';
import { jsonOutput } from './json-file.ts';

const int = () => z.number().int();
const perLayer = <T extends z.ZodType>(value: T) => z.record(z.string(), value);

// ---- activations.json

export const ActivationsLayer = z.strictObject({
  /** stem of `<file>.mean.npy`, `<file>.max.npy` (float32 [N,C]) and `<file>.argmax.npy` (int32 [N,C], y·W + x) */
  file: z.string(),
  channels: int(),
  /** [H,W] of the layer's maps */
  spatial: z.tuple([int(), int()]),
});

/** analysis/layer-alignment.ts's AlignedLayer */
export const AlignedLayer = z.strictObject({
  layer: z.string(),
  to: z.string().nullable(),
  correlation: z.number().nullable(),
  how: z.enum(['name', 'activations', 'none']),
});

export const DepthSpread = z.strictObject({
  /**
   * the `depth:` layers in this model, in the main model's order: `<file>.sigma.npy` (float64 [C]) holds the
   * population σ of each channel's spatial mean over the images
   */
  layers: z.array(z.strictObject({ layer: z.string(), file: z.string(), channels: int() })),
  /** a compared model's: each of the main model's depth layers and its counterpart here (null for the main model) */
  aligned: z.array(AlignedLayer).nullable(),
});
export type DepthSpread = z.infer<typeof DepthSpread>;

export const Activations = z.strictObject({
  layers: perLayer(ActivationsLayer),
  /** null without `depth:` */
  depth: DepthSpread.nullable(),
  /** the reference images, in the row order of the .npy arrays */
  images: z.array(z.strictObject({ name: z.string(), label: int() })),
});
export type Activations = z.infer<typeof Activations>;

export const ACTIVATIONS_JSON = jsonOutput('activations.json', Activations);

// ---- neurons.json

const nullableNumber = z.number().nullable();
const interval = z.tuple([z.number(), z.number()]).nullable();

export const NeuronChange = z.strictObject({
  channel: int(),
  /** mean spatial-mean activation over the attack's images: clean, adversarial, control (random noise of size ε) */
  clean: z.number(),
  adversarial: z.number(),
  control: z.number(),
  /** mean signed (adversarial − clean) / σ' of the reference set: the direction */
  score: z.number(),
  /** mean |z_adv| − |z_ctrl|, its bootstrap interval, sign-flip p, BH q and verdict (null: descriptive, n < 3) */
  effect: z.number(),
  ci: interval,
  p: nullableNumber,
  q: nullableNumber,
  fragile: z.boolean(),
});

/** analysis/fragility.ts's LayerFragility */
export const Fragility = z.strictObject({
  layer: z.string(),
  n: int(),
  channels: int(),
  fdr: z.number(),
  min_effect: z.number(),
  sigma_floor: z.number(),
  ci_level: z.number(),
  descriptive: z.boolean(),
  permutations: int().nullable(),
  exact: z.boolean().nullable(),
  drops: int(),
  spikes: int(),
  fragile_fraction: z.number(),
  mean_effect: z.number(),
  mean_adversarial_change: z.number(),
  mean_control_change: z.number(),
  /** the most fragile neurons: fragile first, then by effect */
  ranking: z.array(NeuronChange),
  topk_retained: z.number(),
  topk_retained_control: z.number(),
  /** null for an untargeted attack */
  topk_target_overlap: nullableNumber,
  topk_target_overlap_control: nullableNumber,
  /** [C] each, channel order */
  scores: z.array(z.number()),
  effect: z.array(z.number()),
  ci_low: z.array(nullableNumber),
  ci_high: z.array(nullableNumber),
  p: z.array(nullableNumber),
  q: z.array(nullableNumber),
  fragile: z.array(z.boolean()),
});
export type Fragility = z.infer<typeof Fragility>;

const point = z.tuple([z.number(), z.number()]).nullable();

/** One neuron's maps on one attack image (analysis/heatmap.ts's MapShift and the maps themselves). */
export const Heatmap = z.strictObject({
  channel: int(),
  /** the attack image's file stem (the attack's row whose file has it) */
  image: z.string(),
  /** the layer's map of this channel, [H·W] row-major (H, W: the heatmaps' `spatial`), clean and adversarial */
  maps: z.strictObject({ clean: z.array(z.number()), adversarial: z.array(z.number()) }),
  /** [row, col] in input pixels of the positive activation's centre of mass; null when nothing is positive */
  com_clean: point,
  com_adversarial: point,
  com_shift: z.number().nullable(),
  inside_clean: z.number().nullable(),
  inside_adversarial: z.number().nullable(),
});
export type Heatmap = z.infer<typeof Heatmap>;

/** Where a layer's cells sit on the input: cell (y, x) is centred at start + (y, x) · jump input pixels. */
export const CellGeometry = z.strictObject({
  spatial: z.tuple([int(), int()]),
  start: z.tuple([z.number(), z.number()]),
  jump: z.tuple([z.number(), z.number()]),
  /** [H, W] of the model's input */
  input: z.tuple([int(), int()]),
});
export type CellGeometry = z.infer<typeof CellGeometry>;

/** Per-channel statistics of a group of images. */
export const GroupStats = z.strictObject({
  /** what the group is, for legends: `source images, clean`, `target: weasel, clean reference images` */
  group: z.string(),
  n: int(),
  /** [C] each */
  mean: z.array(z.number()),
  median: z.array(z.number()),
  max: z.array(z.number()),
});
export type GroupStats = z.infer<typeof GroupStats>;

/**
 * Targeted attacks: the target class's selective neurons (AUROC of its reference images against the rest, permutation
 * or normal p, BH q; analysis/selectivity.ts) and how many of them the attack turns on against the control.
 */
export const TargetSelectivity = z.strictObject({
  /** the target class, or the WordNet group standing in for it when it has fewer than 2 reference images */
  group: z.string(),
  pooled: z.boolean(),
  /** its reference images, and the rest */
  n: int(),
  rest: int(),
  method: z.enum(['permutation', 'normal']),
  fdr: z.number(),
  min_auroc: z.number(),
  /** selective channels (q ≤ fdr and AUROC ≥ min_auroc), most selective first */
  selective: z.array(z.strictObject({ channel: int(), auroc: z.number(), q: z.number() })),
  /** per attacked image, selective channels off on the clean image and at or above the group's median after it */
  turned_on: z.strictObject({
    n: int(),
    adversarial: z.number(),
    control: z.number(),
    /** mean over images of adversarial − control, its sign-flip p (null below 3 images) */
    difference: z.number(),
    p: z.number().nullable(),
    descriptive: z.boolean(),
  }),
});
export type TargetSelectivity = z.infer<typeof TargetSelectivity>;

export const NeuronsLayer = z.strictObject({
  fragility: Fragility,
  target_selectivity: TargetSelectivity.optional(),
  /**
   * the most fragile neurons' maps, every attack image each; `scale` is the layer's 99th-percentile spatial maximum on
   * the reference set, the top of the figures' colour scale
   */
  heatmaps: z.strictObject({ scale: z.number(), geometry: CellGeometry, neurons: z.array(Heatmap) }),
  stats: z.strictObject({
    source_clean: GroupStats,
    source_adversarial: GroupStats,
    /** the same images under the control (random noise of size ε) */
    source_control: GroupStats,
    /** targeted attacks: the reference images of the target class (or its smallest configured WordNet group) */
    target_clean: GroupStats.optional(),
  }),
});
export type NeuronsLayer = z.infer<typeof NeuronsLayer>;

export const NeuronsSummary = Fragility.pick({
  n: true, descriptive: true, fdr: true, min_effect: true, drops: true, spikes: true, fragile_fraction: true, mean_effect: true,
  mean_adversarial_change: true, mean_control_change: true, topk_retained: true, topk_retained_control: true,
  topk_target_overlap: true, topk_target_overlap_control: true,
});
export type NeuronsSummary = z.infer<typeof NeuronsSummary>;

export const Neurons = z.strictObject({
  /** the attack's id in the spec */
  attack: z.string(),
  /** attacked images */
  n: int(),
  summary: perLayer(NeuronsSummary),
  layers: perLayer(NeuronsLayer),
});
export type Neurons = z.infer<typeof Neurons>;

export const NEURONS_JSON = jsonOutput('neurons.json', Neurons);

// ---- polysemantic.json, histograms.json, top_images.json

/** One of a neuron's strong reference images (its `top` highest spatial means). */
export const StrongImage = z.strictObject({
  /** row in the reference set, and its path in the data directory */
  image: int(),
  file: z.string(),
  class: int(),
  name: z.string(),
  activation: z.number(),
});

/** A WordNet synset (or class) enriched among a neuron's strong images (analysis/polysemantic-calibrated.ts). */
export const PolysemanticGroup = z.strictObject({
  wnid: z.string(),
  name: z.string(),
  /** strong images under it, and how many chance would put there */
  images: int(),
  expected: z.number(),
  /** −log10 of the hypergeometric chance of at least `images` */
  enrichment: z.number(),
  classes: z.array(z.string()),
});

export const PolysemanticNeuron = z.strictObject({
  channel: int(),
  /** the weaker enrichment of the best far-apart pair of groups (0 without one) */
  score: z.number(),
  /** permutation p (labels shuffled, activations kept) and Benjamini–Hochberg q across the layer */
  p: z.number(),
  q: z.number(),
  polysemantic: z.boolean(),
  /** activation of the weakest strong image */
  threshold: z.number(),
  /** largest activation first */
  strong: z.array(StrongImage),
  /** the far-apart pair first; the most enriched group alone when there is none */
  groups: z.array(PolysemanticGroup),
});
export type PolysemanticNeuron = z.infer<typeof PolysemanticNeuron>;

export const Patch = z.strictObject({
  rank: int(),
  /** the reference photo's path in the data directory */
  image: z.string(),
  class: int(),
  name: z.string(),
  /** the neuron's spatial maximum on that photo */
  activation: z.number(),
  /** [y, x] of the maximum in the layer's map */
  cell: z.tuple([int(), int()]),
  /** [top, left, bottom, right] in crop pixels */
  box: z.tuple([int(), int(), int(), int()]),
  /** 64×64 PNG of the entry */
  file: z.string(),
});
export type Patch = z.infer<typeof Patch>;

export const PolysemanticLayer = z.strictObject({
  layer: z.string(),
  n: int(),
  /** strong images per neuron, false-discovery level, label shuffles in the null and the smallest p they allow */
  top: int(),
  fdr: z.number(),
  permutations: int(),
  smallest_p: z.number(),
  /** neurons with a strong set their activations decide (not dead), and the polysemantic ones among them */
  testable: int(),
  count: int(),
  /** smallest q first, then largest score */
  ranking: z.array(PolysemanticNeuron),
  /** [C], channel order; null for an untestable neuron */
  score: z.array(z.number().nullable()),
  p: z.array(z.number().nullable()),
  q: z.array(z.number().nullable()),
  polysemantic: z.array(z.boolean()),
  /** top patches of the first few ranked neurons */
  patches: z.array(z.strictObject({ channel: int(), patches: z.array(Patch) })),
});
export type PolysemanticLayer = z.infer<typeof PolysemanticLayer>;

export const Polysemantic = z.strictObject({
  /** reference images */
  n: int(),
  layers: perLayer(PolysemanticLayer),
});
export type Polysemantic = z.infer<typeof Polysemantic>;

export const POLYSEMANTIC_JSON = jsonOutput('polysemantic.json', Polysemantic);

/** analysis/histogram.ts's NeuronHistogram: a neuron's spatial-mean activation over the reference set. */
export const NeuronHistogram = z.strictObject({
  channel: int(),
  /** [bins + 1] */
  edges: z.array(z.number()),
  /** [bins] */
  counts: z.array(int()),
  /** [bins]: log10(count / (n · width)); null for an empty bin */
  log_density: z.array(z.number().nullable()),
});
export type NeuronHistogram = z.infer<typeof NeuronHistogram>;

/** layer → [C], in channel order */
export const Histograms = perLayer(z.array(NeuronHistogram));
export type Histograms = z.infer<typeof Histograms>;

export const HISTOGRAMS_JSON = jsonOutput('histograms.json', Histograms);

export const TopImage = z.strictObject({
  /** the reference photo's path in the data directory */
  image: z.string(),
  class: int(),
  name: z.string(),
  activation: z.number(),
});

/** layer → [C][k]: per channel the reference photos with the largest spatial-mean activation, largest first */
export const TopImages = perLayer(z.array(z.array(TopImage)));
export type TopImages = z.infer<typeof TopImages>;

export const TOP_IMAGES_JSON = jsonOutput('top_images.json', TopImages);
