// `atlas analyse --model …`: the neuron analyses of the pipeline on folders a researcher brings, without a spec or a
// cache. The computation is the pipeline's: activations by recordActivations, σ by channelSpread over the reference
// set, the control by controlImage, fragility by layerFragility (as the neurons step) and polysemanticity by
// calibratedPolysemanticity. What is new here is only how the inputs are found and how the outputs are laid out.
//
// Pairs: the clean and adversarial folders may be one folder (what `atlas attack` writes holds both, beside the
// perturbation PNGs), so the clean side ignores `*.adversarial.*` and `*.perturbation.*` files and the adversarial
// side ignores `*.clean.*` and `*.perturbation.*` ones; the rest pair up by stem once `.clean` / `.adversarial` is
// stripped. Images already at the model's input size are the model's crop (as `atlas attack` saves them) and are
// used pixel for pixel: resizing them again would move the perturbation off the grid it was optimised on.
//
// The control's radius: the pair's own L∞ distance rounded to the 8-bit grid, unless one ε is given for all. Rounding
// because the saved images are 8-bit, so an attack at ε = 4/255 measures 4/255 up to float error, and the control is
// then drawn on that grid (controlImage quantizes inside the ball) exactly as the pipeline draws it from the spec's ε.
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { controlImage } from '../attacks/control.ts';
import { stableJson } from '../cache/stable-json.ts';
import { hwcToChw, loadImage } from '../io/image.ts';
import type { Classifier } from '../model/classifier.ts';
import type { ImageNetClass } from '../model/model-card.ts';
import type { Layer } from '../onnx/layers.ts';
import { nearestNames } from '../nearest-names.ts';
import { loadImageSet, type LabelledImage } from '../pipeline/data.ts';
import { check, jsonOutput } from '../pipeline/outputs/json-file.ts';
import { createRng } from '../random.ts';
import {
  FRAGILITY_FILE, FragilityFile, POLYSEMANTIC_FILE, PolysemanticFile,
  type FragilityFile as FragilityJson, type PolysemanticFile as PolysemanticJson,
} from './analyse-output.ts';
import { layerFragility } from './fragility.ts';
import { channelSpread, groupStats } from './neuron-stats.ts';
import { calibratedPolysemanticity, defaultTop } from './polysemantic-calibrated.ts';
import { recordActivations } from './record.ts';

export const LABELS_FILE = 'labels.json';
const IMAGE_EXT = /\.(jpe?g|png|webp|tiff?|gif|avif)$/i;

/** The labelled images of an ImageNet-style folder (labels.json: [{file, index, wnid?, name?}]), checked against the model's classes. */
export async function readReference(dir: string, classes: readonly ImageNetClass[]): Promise<LabelledImage[]> {
  await requireDir(dir, 'reference folder');
  const labels = path.join(dir, LABELS_FILE);
  if (!(await isFile(labels))) {
    throw new Error(`reference folder ${dir} has no ${LABELS_FILE} (a JSON list of {file, index}: each image and its class index in the model's class list)`);
  }
  const images = await loadImageSet('.', LABELS_FILE, dir);
  if (images.length === 0) throw new Error(`${labels} lists no images`);
  for (const im of images) {
    const at = `${labels}: ${im.name}`;
    if (im.label >= classes.length) throw new Error(`${at} has class index ${im.label}, but the model has ${classes.length} classes`);
    const wnid = im.meta.wnid;
    if (typeof wnid === 'string' && wnid !== classes[im.label].wnid) {
      throw new Error(`${at} has index ${im.label} and wnid ${wnid}, but the model's class ${im.label} is ${classes[im.label].wnid} (${classes[im.label].name})`);
    }
    if (!(await isFile(im.path))) throw new Error(`${at}: no such file ${im.path}`);
  }
  return images;
}

/** `top` (strong images per channel) for a reference set, or why the set is too small for it. */
export function strongImages(reference: number, top?: number): number {
  const t = top ?? defaultTop(reference);
  if (reference <= t) {
    throw new Error(`the reference folder has ${reference} image(s); polysemanticity takes each channel's ${t} strongest, so it needs more than ${t}${top === undefined ? ' (use more images, or a smaller --top)' : ''}`);
  }
  return t;
}

export interface ImagePair {
  /** the shared stem */
  name: string;
  clean: string;
  adversarial: string;
}

/** Clean and adversarial images paired by stem (`x.clean.png` ↔ `x.adversarial.png`, or `x.png` ↔ `x.png`). */
export async function pairImages(cleanDir: string, adversarialDir: string): Promise<ImagePair[]> {
  const clean = await stems(cleanDir, 'clean', ['adversarial', 'perturbation']);
  const adversarial = await stems(adversarialDir, 'adversarial', ['clean', 'perturbation']);
  const onlyClean = [...clean.keys()].filter((k) => !adversarial.has(k)).map((k) => path.basename(clean.get(k)!));
  const onlyAdv = [...adversarial.keys()].filter((k) => !clean.has(k)).map((k) => path.basename(adversarial.get(k)!));
  if (onlyClean.length || onlyAdv.length) {
    const list = (names: string[]) => names.slice(0, 5).join(', ') + (names.length > 5 ? ` and ${names.length - 5} more` : '');
    const parts = [
      onlyClean.length ? `only in the clean folder ${cleanDir}: ${list(onlyClean)}` : '',
      onlyAdv.length ? `only in the adversarial folder ${adversarialDir}: ${list(onlyAdv)}` : '',
    ].filter(Boolean);
    throw new Error(`unpaired images (pairs share a name once .clean / .adversarial is stripped) — ${parts.join('; ')}`);
  }
  if (clean.size === 0) throw new Error(`no images to pair in ${cleanDir === adversarialDir ? cleanDir : `${cleanDir} and ${adversarialDir}`}`);
  return [...clean.keys()].sort().map((name) => ({ name, clean: clean.get(name)!, adversarial: adversarial.get(name)! }));
}

async function stems(dir: string, role: 'clean' | 'adversarial', others: readonly string[]): Promise<Map<string, string>> {
  await requireDir(dir, `${role} folder`);
  const out = new Map<string, string>();
  for (const file of (await readdir(dir)).filter((f) => IMAGE_EXT.test(f)).sort()) {
    const stem = file.replace(/\.[^.]+$/, '');
    if (others.some((o) => stem.endsWith(`.${o}`))) continue;
    const key = stem.endsWith(`.${role}`) ? stem.slice(0, -role.length - 1) : stem;
    const before = out.get(key);
    if (before) throw new Error(`${role} folder ${dir}: ${path.basename(before)} and ${file} both stand for image '${key}'`);
    out.set(key, path.join(dir, file));
  }
  return out;
}

/** Layer names as the model's inventory spells them; a one-line error naming some real ones otherwise. */
export function resolveLayers(classifier: Classifier, names: readonly string[], model = classifier.path): string[] {
  const { layers } = classifier.model;
  const out: string[] = [];
  for (const name of names) {
    const hit = layers.find((l) => l.name === name) ?? layers.find((l) => l.tensor === name);
    if (!hit) throw new Error(`no layer named '${name}' in ${model} (${suggestLayers(layers, name)}; \`atlas inspect ${model}\` lists all ${layers.length})`);
    if (hit.dims.length !== 4 && hit.dims.length !== 2) {
      throw new Error(`layer '${name}' has output shape [${hit.dims.join(',')}]; analyse needs channels: [N,C,H,W] or [N,C]`);
    }
    if (!out.includes(hit.name)) out.push(hit.name);
  }
  return out;
}

function suggestLayers(layers: readonly Layer[], name: string): string {
  const near = nearestNames(name, layers.map((l) => l.name), 6);
  if (near.length) return `did you mean: ${near.join(', ')}`;
  const convs = layers.filter((l) => l.op === 'Conv');
  const pool = convs.length >= 6 ? convs : layers;
  const spread = Array.from({ length: Math.min(6, pool.length) }, (_, i) => pool[Math.floor((i * (pool.length - 1)) / Math.max(1, Math.min(6, pool.length) - 1))].name);
  return `layers include ${[...new Set(spread)].join(', ')}`;
}

/** Width × height after EXIF orientation. */
async function imageSize(file: string): Promise<[number, number]> {
  const meta = await sharp(file).metadata().catch(() => {
    throw new Error(`cannot read image ${file}: not a readable image`);
  });
  const w = meta.autoOrient?.width ?? meta.width ?? 0;
  const h = meta.autoOrient?.height ?? meta.height ?? 0;
  if (!(w > 0 && h > 0)) throw new Error(`cannot read image ${file}: no dimensions`);
  return [w, h];
}

export interface PairPixels {
  clean: Float32Array; // [C,H,W]
  adversarial: Float32Array;
  /** whether the files were resized and cropped per the model card (false: at input size, used as they are) */
  preprocessed: boolean;
}

/** Width × height shared by a pair's two files; an error naming the pair when they differ. */
export async function pairSize(pair: ImagePair): Promise<[number, number]> {
  const [wc, hc] = await imageSize(pair.clean);
  const [wa, ha] = await imageSize(pair.adversarial);
  if (wc !== wa || hc !== ha) {
    throw new Error(`pair '${pair.name}': the clean image ${pair.clean} is ${wc}×${hc} but the adversarial ${pair.adversarial} is ${wa}×${ha}`);
  }
  return [wc, hc];
}

/** A pair's pixels as the model sees them; both files must have the same size. */
export async function loadPair(pair: ImagePair, classifier: Pick<Classifier, 'inputDims' | 'preprocess'>): Promise<PairPixels> {
  const [wc, hc] = await pairSize(pair);
  const [, h, w] = classifier.inputDims;
  if (wc === w && hc === h) {
    const raw = async (file: string) => hwcToChw(await sharp(file).autoOrient().removeAlpha().toColourspace('srgb').raw().toBuffer(), h, w);
    return { clean: await raw(pair.clean), adversarial: await raw(pair.adversarial), preprocessed: false };
  }
  return { clean: await loadImage(pair.clean, classifier.preprocess), adversarial: await loadImage(pair.adversarial, classifier.preprocess), preprocessed: true };
}

/** Largest |a − b| over the values. */
export function linfDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let k = 0; k < a.length; k++) m = Math.max(m, Math.abs(a[k] - b[k]));
  return m;
}

/** The nearest 8-bit level. */
export const toByteGrid = (v: number) => Math.round(v * 255) / 255;

export interface AnalyseProgress {
  stage: 'activations' | 'polysemantic' | 'fragility';
  done: number;
  total: number;
  label: string;
}

export interface AnalyseOptions {
  /** the model as the outputs name it */
  model: string;
  /** resolved layer names (resolveLayers) */
  layers: readonly string[];
  reference: readonly LabelledImage[];
  pairs?: readonly ImagePair[];
  seed: number;
  fdr?: number;
  minEffect?: number;
  /** one L∞ radius for every control; default each pair's own L∞ on the 8-bit grid */
  eps?: number;
  top?: number;
  /** label shuffles of the polysemanticity null */
  permutations?: number;
  batch?: number;
  onProgress?: (p: AnalyseProgress) => void;
}

export interface AnalyseResult {
  polysemantic: PolysemanticJson;
  /** present when pairs were given */
  fragility?: FragilityJson;
}

/** The polysemanticity of every channel of the layers over the reference set, and their fragility under the pairs. */
export async function analyse(classifier: Classifier, opts: AnalyseOptions): Promise<AnalyseResult> {
  const fdr = opts.fdr ?? 0.05;
  const minEffect = opts.minEffect ?? 0.5;
  const batch = opts.batch ?? 16;
  const pairs = opts.pairs ?? [];
  const { reference, layers } = opts;
  if (layers.length === 0) throw new Error('analyse: no layers given');
  const top = strongImages(reference.length, opts.top);
  const report = opts.onProgress ?? (() => {});
  const rng = createRng(opts.seed).fork('analyse');

  // Pairs first: a bad pair should fail before the long pass over the reference set.
  const loaded: PairPixels[] = [];
  for (const pair of pairs) loaded.push(await loadPair(pair, classifier));
  const total = reference.length + 3 * pairs.length;
  const images = (offset: number, what: string) => (done: number) => report({ stage: 'activations', done: offset + done, total, label: what });
  const ref = await recordActivations(classifier, reference.length, (i) => loadImage(reference[i].path, classifier.preprocess), layers, batch, images(0, 'reference images'));

  const labels = reference.map((im) => im.label);
  const polyLayers: PolysemanticJson['layers'] = {};
  const polySummary: PolysemanticJson['summary'] = {};
  let poly: ReturnType<typeof calibratedPolysemanticity> | undefined;
  for (const [li, layer] of layers.entries()) {
    report({ stage: 'polysemantic', done: li, total: layers.length, label: layer });
    const r = ref.get(layer)!;
    poly = calibratedPolysemanticity({
      channels: r.channels, values: r.mean, labels, classes: classifier.classes, top, fdr, permutations: opts.permutations,
      // Drawn as the pipeline's polysemantic step draws it: the same reference set and seed give the same numbers.
      seed: createRng(opts.seed).fork(`polysemantic/${layer}`).uniformInt(0, 2 ** 31 - 1),
    });
    polyLayers[layer] = poly.neurons.map((x) => ({
      channel: x.channel, score: x.score, p: x.p, q: x.q, polysemantic: x.polysemantic, threshold: x.threshold,
      strong: x.strong.map((i) => reference[i].name), groups: x.groups,
    }));
    polySummary[layer] = { channels: poly.channels, testable: poly.testable, polysemantic: poly.count };
  }
  report({ stage: 'polysemantic', done: layers.length, total: layers.length, label: 'done' });
  const polysemantic: PolysemanticJson = {
    model: opts.model, fdr, seed: opts.seed, n: reference.length, top, permutations: poly!.permutations, smallest_p: poly!.smallest_p,
    far_depth: poly!.far_depth, min_group: poly!.min_group, layers: polyLayers, summary: polySummary,
  };
  if (pairs.length === 0) return { polysemantic };

  const linf = loaded.map((x) => linfDistance(x.adversarial, x.clean));
  const eps = linf.map((d) => opts.eps ?? toByteGrid(d));
  const controls = loaded.map((x, i) => controlImage(x.clean, 'linf', eps[i], rng.fork(`control/${pairs[i].name}`)));
  let offset = reference.length;
  const record = async (pixels: Float32Array[], what: string) => {
    const r = await recordActivations(classifier, pixels.length, async (i) => pixels[i], layers, batch, images(offset, what));
    offset += pixels.length;
    return r;
  };
  const clean = await record(loaded.map((x) => x.clean), 'clean images');
  const adversarial = await record(loaded.map((x) => x.adversarial), 'adversarial images');
  const control = await record(controls, 'controls');

  const fragLayers: FragilityJson['layers'] = {};
  const fragSummary: FragilityJson['summary'] = {};
  const rows = [...pairs.keys()];
  for (const [li, layer] of layers.entries()) {
    report({ stage: 'fragility', done: li, total: layers.length, label: layer });
    const r = ref.get(layer)!;
    const c = clean.get(layer)!;
    const x = adversarial.get(layer)!;
    const k = control.get(layer)!;
    const f = layerFragility({
      layer, channels: r.channels, clean: c.mean, adversarial: x.mean, control: k.mean, sigma: channelSpread(r.mean, r.channels).std,
      seed: rng.fork(`fragility/${layer}`).uniformInt(0, 2 ** 31 - 1), fdr, minEffect,
    });
    const means = [c, x, k].map((a) => groupStats(a.mean, a.channels, rows).mean);
    fragLayers[layer] = f.effect.map((effect, ch) => ({
      channel: ch, effect,
      ci: f.ci_low[ch] === null || f.ci_high[ch] === null ? null : [f.ci_low[ch]!, f.ci_high[ch]!],
      p: f.p[ch], q: f.q[ch], fragile: f.fragile[ch], signed_change: f.scores[ch],
      clean: means[0][ch], adversarial: means[1][ch], control: means[2][ch],
    }));
    fragSummary[layer] = {
      channels: f.channels, descriptive: f.descriptive, sigma_floor: f.sigma_floor, ci_level: f.ci_level, permutations: f.permutations,
      exact: f.exact, fragile: f.drops + f.spikes, drops: f.drops, spikes: f.spikes, mean_effect: f.mean_effect,
      mean_adversarial_change: f.mean_adversarial_change, mean_control_change: f.mean_control_change,
      topk_retained: f.topk_retained, topk_retained_control: f.topk_retained_control,
    };
  }
  report({ stage: 'fragility', done: layers.length, total: layers.length, label: 'done' });
  const fragility: FragilityJson = {
    model: opts.model, n: pairs.length, fdr, min_effect: minEffect, seed: opts.seed, norm: 'linf', eps: opts.eps ?? null,
    reference: reference.length,
    pairs: pairs.map((p, i) => ({ name: p.name, clean: path.basename(p.clean), adversarial: path.basename(p.adversarial), eps: eps[i], linf: linf[i], preprocessed: loaded[i].preprocessed })),
    layers: fragLayers, summary: fragSummary,
  };
  return { polysemantic, fragility };
}

/** The files of a result, serialized as the cache serializes (sorted keys, 7 significant digits) and checked against their schemas. */
export function analyseFiles(result: AnalyseResult): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const put = (file: string, schema: typeof FragilityFile | typeof PolysemanticFile, value: unknown) => {
    const text = stableJson(value);
    check(jsonOutput(file, schema), JSON.parse(text), (problem) => `${file} not written: ${problem}`);
    files.set(file, new TextEncoder().encode(text));
  };
  put(POLYSEMANTIC_FILE, PolysemanticFile, result.polysemantic);
  if (result.fragility) put(FRAGILITY_FILE, FragilityFile, result.fragility);
  return files;
}

async function requireDir(dir: string, what: string): Promise<void> {
  const s = await stat(dir).catch(() => undefined);
  if (!s) throw new Error(`${what} ${dir}: no such directory`);
  if (!s.isDirectory()) throw new Error(`${what} ${dir} is not a directory`);
}

async function isFile(file: string): Promise<boolean> {
  return (await stat(file).catch(() => undefined))?.isFile() ?? false;
}
