// The experiment spec: which model, which images, which attacks and layers an article's figures come from.
// YAML next to the article, validated once here with zod; paths are relative to the data directory.
import { readFile } from 'node:fs/promises';
import YAML from 'yaml';
import { z } from 'zod';
import { budgetProblems } from '../attacks/attack-params.ts';
import { parseFraction } from '../numbers.ts';
import { ACTIVATIONS, ATLAS, COMPARISON, DEPTH, FEATUREVIS, POLYSEMANTIC, SPEC_ENTRY } from './step-ids.ts';

/** Entry ids an attack's id would collide with. */
const RESERVED_IDS = [ACTIVATIONS, POLYSEMANTIC, FEATUREVIS, ATLAS, COMPARISON, DEPTH, SPEC_ENTRY];

/** A number written as 0.0157 or "4/255". */
const fraction = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = typeof v === 'number' ? v : parseFraction(v);
  if (!Number.isFinite(n)) {
    ctx.addIssue({ code: 'custom', message: `expected a number such as 4/255 or 0.0157, got '${v}'` });
    return z.NEVER;
  }
  return n;
});

const className = z.union([z.string(), z.number().int().nonnegative()]);

const AttackSpec = z.strictObject({
  /** the classes whose images are attacked (index, WordNet id or name), or '*' for any image of the folder */
  from: z.union([className, z.array(className).nonempty()]),
  /** the image folder (default: images.folder); e.g. the CC BY photos an article may show */
  folder: z.string().optional(),
  /** also run the attack at each of these budgets (for success-vs-ε figures); steps `<id>_eps<k>` */
  eps_sweep: z.array(fraction).optional(),
  /** target class for a targeted attack; untargeted when absent */
  target: className.optional(),
  norm: z.enum(['linf', 'l2']).default('linf'),
  eps: fraction.default(4 / 255),
  alpha: fraction.default(1 / 255),
  steps: z.number().int().nonnegative().default(10),
  random_start: z.boolean().default(false),
  /** at most this many images of the source classes (in file-name order) */
  max_images: z.number().int().positive().default(8),
  /** images per run; `auto` (the default) fits the batch to the execution provider's free memory */
  batch: z.union([z.number().int().positive(), z.literal('auto')]).default('auto'),
});

const ModelSource = z.strictObject({
  /** path of the .onnx file in the data directory; its model card sits beside it */
  file: z.string(),
  /** how figures name it (default: its card's id) */
  label: z.string().optional(),
  /** where to download it from when it is missing (checked against sha256); a local file goes in the data directory */
  url: z.url({ protocol: /^https?$/, error: 'use an http(s) URL; a local model goes in the data directory, named by model.file' }).optional(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
});

/**
 * A second model attacked with the same attacks (e.g. an adversarially trained one): its steps are the main model's,
 * ids prefixed `<id>/`, and a `comparison` step sets the two side by side.
 */
const CompareSpec = ModelSource.extend({
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/i, 'use letters, digits, - and _'),
  /** a model card to borrow when the file has none beside it (an int8 copy of a float model) */
  card: z.string().optional(),
  /** the main model's layers (names or `@role`) → this model's, where they differ (identity otherwise) */
  layers: z.record(z.string(), z.string()).default({}),
  /**
   * The main model (its `model.file`) this comparison was written for. With another main model the build runs
   * without the comparison and says so, so that switching `model.file` alone never sets two unrelated models side
   * by side under prose written for this pair.
   */
  for_model: z.string().optional(),
});

export const ExperimentSpec = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/i, 'use letters, digits, - and _'),
  /** every random choice of every step derives from this seed */
  seed: z.number().int().default(0),
  model: ModelSource,
  images: z.strictObject({
    /** an ImageNet-style folder in the data directory, with labels.json: [{file, index, wnid, name}] */
    folder: z.string(),
    labels: z.string().default('labels.json'),
  }),
  /**
   * A private article may show any photograph; a public one (the default) shows only photos whose labels.json entry
   * carries a licence (and credits their author), and reports the others as numbers only.
   */
  private: z.boolean().default(false),
  attacks: z.record(z.string().regex(/^[a-z0-9_]+$/, 'attack ids use lowercase letters, digits and _'), AttackSpec).default({}),
  /**
   * Layers whose neurons are analysed: names, globs (`layer*.*.conv3`; `*` within one dot-separated part), `all`
   * (every block output) or `@role`, resolved against the model when the plan is made (resolve-layers.ts)
   */
  layers: z.union([z.string(), z.array(z.string())]).transform((v) => [v].flat()).default([]),
  /**
   * What the article calls each analysed layer (`middle`, `late`, …) → the layer, or a list of layers of which the
   * model's first one is taken (`[features.17.conv.2, layer4.2.conv3]`: MobileNetV2's, else ResNet-50's). Prose and
   * figures name layers by role (`<Layer role="late" />`, `layer="@late"`, `summary[@late]`), so a spec whose roles
   * list each architecture's layer switches models by its `model:` line alone.
   */
  roles: z.record(z.string(), z.union([z.string(), z.array(z.string()).nonempty()])).default({}),
  analysis: z.strictObject({
    /**
     * the clean reference set for distributions, percentiles, natural spread and class statistics: a folder, or
     * several pooled in the order given (default: images.folder)
     */
    reference: z.union([z.string(), z.array(z.string()).nonempty()]).optional(),
    max_reference_images: z.number().int().positive().optional(),
    /** top fraction of neurons per class */
    top_fraction: z.number().positive().max(1).default(0.1),
    /**
     * False-discovery level (Benjamini–Hochberg, across a layer's channels) of fragile neurons: a neuron is fragile
     * when the attack moves it further than the control (random noise of the attack's size) with q ≤ fdr …
     */
    fdr: z.number().positive().max(0.5).default(0.05),
    /** … and by at least this many natural standard deviations more than the control does */
    min_effect: z.number().nonnegative().default(0.5),
    /** percentile of the dataset distribution above which a neuron is strongly active */
    percentile: z.number().positive().max(100).default(99),
    /** WordNet groups for pooling thin classes: name → synset id (e.g. mustelids: n02441326) */
    groups: z.record(z.string(), z.string().regex(/^n\d{8}$/)).default({}),
    /**
     * Neuron labels (the WordNet synset each neuron separates best; analysis/neuron-labels.ts): label-shuffle
     * permutations of the null (the smallest p is 1/(B + 1)) and the photos a synset needs inside and outside it
     */
    label_permutations: z.number().int().positive().default(199),
    label_min_images: z.number().int().min(2).default(5),
    batch: z.number().int().positive().default(16),
  }).prefault({}),
  compare: CompareSpec.optional(),
  /**
   * Fragility through the network (step `depth`): `all` for every block output, or layer names and globs
   * (`features.*.conv.2`, `layer*.*.conv3`), tested as the analysed layers are but summarized per layer
   */
  depth: z.union([z.literal('all'), z.array(z.string()).nonempty()]).optional(),
  /**
   * Activation patching (analysis/patching.ts): per entry, one attack's images and one analysed layer (a name or
   * `@role`); neurons are ranked by the attack's fragility effect, cross-fitted over two folds of its images
   * (analysis/held-out-ranking.ts). Step `patching_<attack>`.
   */
  patching: z.array(z.strictObject({
    attack: z.string(),
    layer: z.string(),
    /** random channel sets per image and k */
    draws: z.number().int().positive().default(5),
  })).default([]),
  /** Lucent-style feature visualizations (defaults are Lucent's) */
  featurevis: z.strictObject({
    /** `<layer>:<channel>` each (the layer may be `@role`); rendered together, `batch` at a time */
    neurons: z.array(z.string().regex(/^.+:\d+$/, 'write a neuron as <layer>:<channel>')).default([]),
    /** neurons the pipeline chooses from the analyses' rankings, after `neurons` (a neuron is rendered once) */
    choose: z.array(z.discriminatedUnion('ranking', [
      /** the `top` most fragile neurons of `layer` under `attack` (its ranking: fragile first, then by effect) */
      z.strictObject({ ranking: z.literal('fragile'), attack: z.string(), layer: z.string(), top: z.number().int().positive() }),
      /** the `top` most polysemantic neurons of `layer` (smallest q first) */
      z.strictObject({ ranking: z.literal('polysemantic'), layer: z.string(), top: z.number().int().positive() }),
    ])).default([]),
    size: z.number().int().min(8).default(128),
    steps: z.number().int().positive().default(512),
    batch: z.number().int().positive().default(8),
    param: z.enum(['fft', 'pixel']).default('fft'),
  }).optional(),
}).superRefine((spec, ctx) => {
  for (const [id, attack] of Object.entries(spec.attacks)) {
    if (RESERVED_IDS.includes(id)) ctx.addIssue({ code: 'custom', path: ['attacks', id], message: `'${id}' names another step or the spec's own entry; choose another attack id` });
    for (const p of budgetProblems(attack)) ctx.addIssue({ code: 'custom', path: ['attacks', id, p.field], message: `attack '${id}': ${p.message}` });
    (attack.eps_sweep ?? []).forEach((eps, k) => {
      for (const p of budgetProblems({ ...attack, eps }).filter((q) => q.field === 'eps')) {
        ctx.addIssue({ code: 'custom', path: ['attacks', id, 'eps_sweep', k], message: `attack '${id}': ${p.message}` });
      }
    });
  }
  for (const role of Object.keys(spec.roles)) {
    if (!/^[a-z][a-z0-9_]*$/.test(role)) ctx.addIssue({ code: 'custom', path: ['roles', role], message: 'role names use lowercase letters, digits and _ (a path spells one as [@role])' });
  }
  const patched = new Set<string>();
  spec.patching.forEach((p, k) => {
    if (!(p.attack in spec.attacks)) ctx.addIssue({ code: 'custom', path: ['patching', k, 'attack'], message: `no attack '${p.attack}' in the spec (${Object.keys(spec.attacks).join(', ') || 'none'})` });
    if (patched.has(p.attack)) ctx.addIssue({ code: 'custom', path: ['patching', k, 'attack'], message: `'${p.attack}' is patched twice; one layer per attack` });
    patched.add(p.attack);
  });
  const folders = [spec.analysis.reference ?? []].flat();
  const repeated = folders.find((f, k) => folders.indexOf(f) !== k);
  if (repeated !== undefined) ctx.addIssue({ code: 'custom', path: ['analysis', 'reference'], message: `'${repeated}' is listed twice` });
  const fv = spec.featurevis;
  if (fv) {
    if (fv.neurons.length === 0 && fv.choose.length === 0) ctx.addIssue({ code: 'custom', path: ['featurevis'], message: 'name neurons or choose them (featurevis.neurons or featurevis.choose)' });
    fv.choose.forEach((c, k) => {
      if (c.ranking === 'fragile' && !(c.attack in spec.attacks)) ctx.addIssue({ code: 'custom', path: ['featurevis', 'choose', k, 'attack'], message: `no attack '${c.attack}' in the spec (${Object.keys(spec.attacks).join(', ') || 'none'})` });
    });
  }
  // Whether layer names refer to analysed layers can be told now only when every layer is already a name; patterns,
  // roles with alternatives and `@role` are resolved against the model (resolve-layers.ts), which checks them then.
  if (isResolved(spec)) for (const issue of layerReferenceIssues(spec)) ctx.addIssue({ code: 'custom', ...issue });
  const compare = spec.compare;
  if (!compare) return;
  // `main` names the spec's own model in comparison.json; a compared model of that id would be indistinguishable.
  if (compare.id === 'main') ctx.addIssue({ code: 'custom', path: ['compare', 'id'], message: "'main' names the spec's own model; choose another id (e.g. int8, robust)" });
  const targets = Object.values(compare.layers);
  const twice = targets.find((t, k) => targets.indexOf(t) !== k);
  if (twice !== undefined) ctx.addIssue({ code: 'custom', path: ['compare', 'layers'], message: `two layers map to '${twice}'` });
  if (compare.label !== undefined && spec.model.label !== undefined && compare.label === spec.model.label) {
    ctx.addIssue({ code: 'custom', path: ['compare', 'label'], message: `'${compare.label}' is also model.label; figures tell the two models apart by label` });
  }
});

/** The spec as written: its layers may still be patterns, `@role`s and per-architecture alternatives. */
export type DeclaredSpec = z.infer<typeof ExperimentSpec>;

/**
 * The spec every step reads: each layer a name of the model (resolve-layers.ts), each role one layer, compare:
 * present only when it was written for this model.
 */
export type ExperimentSpec = Omit<DeclaredSpec, 'roles'> & { roles: Record<string, string> };

/** Whether every layer the spec names is a plain name (nothing left for resolve-layers.ts to decide). */
export function isResolved(spec: DeclaredSpec): spec is ExperimentSpec {
  const symbolic = (name: string) => name.startsWith('@') || name.includes('*') || name === 'all';
  return Object.values(spec.roles).every((r) => typeof r === 'string' && !symbolic(r))
    && spec.layers.every((l) => !symbolic(l))
    && Object.keys(spec.compare?.layers ?? {}).every((l) => !symbolic(l))
    && spec.patching.every((p) => !symbolic(p.layer))
    && (spec.featurevis?.choose ?? []).every((c) => !symbolic(c.layer))
    && (spec.featurevis?.neurons ?? []).every((n) => !n.startsWith('@'));
}

/** Every place a resolved spec names a layer that is not analysed, as zod issues (path into the spec, message). */
export function layerReferenceIssues(spec: ExperimentSpec): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  const analysed = `(${spec.layers.join(', ') || 'none'})`;
  for (const [role, layer] of Object.entries(spec.roles)) {
    if (!spec.layers.includes(layer)) issues.push({ path: ['roles', role], message: `'${layer}' is not among the analysed layers ${analysed}` });
  }
  spec.patching.forEach((p, k) => {
    if (!spec.layers.includes(p.layer)) issues.push({ path: ['patching', k, 'layer'], message: `'${p.layer}' is not among the analysed layers ${analysed}` });
  });
  spec.featurevis?.choose.forEach((c, k) => {
    if (!spec.layers.includes(c.layer)) issues.push({ path: ['featurevis', 'choose', k, 'layer'], message: `'${c.layer}' is not among the analysed layers ${analysed}` });
  });
  for (const layer of Object.keys(spec.compare?.layers ?? {})) {
    if (!spec.layers.includes(layer)) {
      issues.push({ path: ['compare', 'layers'], message: `'${layer}' not in the spec's layers ${analysed}: map the main model's layer names to the compared model's` });
    }
  }
  return issues;
}

export type AttackSpec = z.infer<typeof AttackSpec>;
export type CompareSpec = z.infer<typeof CompareSpec>;

export async function loadSpec(specPath: string): Promise<DeclaredSpec> {
  let text: string;
  try {
    text = await readFile(specPath, 'utf8');
  } catch {
    throw new Error(`experiment spec not found: ${specPath}`);
  }
  let raw: unknown;
  try {
    raw = YAML.parse(text);
  } catch (err) {
    throw new Error(`${specPath}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const parsed = ExperimentSpec.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${specPath}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}
