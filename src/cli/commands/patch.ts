// `atlas patch --model M --clean DIR --adversarial DIR --layer L … --out DIR`: activation patching of one layer on
// clean/adversarial pairs (compute/analysis/patching.ts), written to patching.json with a short table on stdout. The
// pairs are found as `atlas analyse` finds them, so an `atlas attack` folder works as both --clean and --adversarial;
// its results.json then also says which class each image was attacked away from (and the target), which nothing in
// the images themselves does.
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { loadPair, pairImages, pairSize, resolveLayers, type ImagePair, type PairPixels } from '../../compute/analysis/analyse.ts';
import { FragilityFile } from '../../compute/analysis/analyse-output.ts';
import { PATCHING_FILE, PatchingFile, type PatchingFile as PatchingJson, type PatchingInterval } from '../../compute/analysis/patching-output.ts';
import { defaultKs, MEAN_ABS_CHANGE, patching, SELECTIONS } from '../../compute/analysis/patching.ts';
import { stableJson } from '../../compute/cache/stable-json.ts';
import type { Classifier } from '../../compute/model/classifier.ts';
import { loadModelCard } from '../../compute/model/model-card.ts';
import { argmax } from '../../compute/model/predictions.ts';
import { check, fieldPath, jsonOutput } from '../../compute/pipeline/outputs/json-file.ts';
import { AttackReportRow } from '../../compute/pipeline/outputs/attack.ts';
import { progress } from '../../compute/progress.ts';
import type { ProviderChoice } from '../../compute/runtime/execution-provider.ts';
import { parseClass, parseInteger, parseNumber } from '../parse.ts';
import { loadClassifierOn } from '../provider.ts';
import { writeFileAtomic } from '../../compute/io/npy.ts';
import { claimNamedFiles } from '../../compute/io/output-dir.ts';

export interface PatchCliOptions {
  ep?: ProviderChoice;
  model: string;
  clean: string;
  adversarial: string;
  layer: string;
  ranking?: string;
  k?: string;
  draws: string;
  seed: string;
  batch: string;
  minGap: string;
  target?: string;
  out: string;
}

const RESULTS = 'results.json';

export async function patch(o: PatchCliOptions): Promise<void> {
  const seed = parseInteger(o.seed, '--seed');
  const draws = parseInteger(o.draws, '--draws', 1);
  const batch = parseInteger(o.batch, '--batch', 1);
  const minGap = parseNumber(o.minGap, '--min-gap');
  if (!(minGap >= 0 && minGap <= 1)) throw new Error(`--min-gap must lie in [0, 1] (a probability), got ${o.minGap}`);
  const ks = o.k === undefined ? undefined : o.k.split(',').map((s) => parseInteger(s.trim(), '--k'));
  const out = path.resolve(o.out);
  await claimNamedFiles(out, [PATCHING_FILE], { command: 'patch', ours: (_, bytes) => patchWrote(bytes) });

  // Everything that needs no session first, so a typo costs a second, not a model load.
  const { classList } = await loadModelCard(o.model);
  const flagTarget = o.target === undefined ? undefined : parseClass(o.target, classList, '--target');
  const pairs = await pairImages(o.clean, o.adversarial);
  for (const pair of pairs) await pairSize(pair);
  const attacked = await attackRows(pairs, o.adversarial, o.clean);
  const ranking = o.ranking === undefined ? undefined : await readRanking(o.ranking, o.layer);

  const classifier = await loadClassifierOn(o.model, o.ep, (c) => ({ activations: [patchableLayer(c, o.layer, o.model)] }));
  const layer = patchableLayer(classifier, o.layer, o.model);
  const channels = classifier.model.layers.find((l) => l.name === layer)!.dims[1];
  for (const k of ks ?? []) if (k > channels) throw new Error(`--k ${k} is out of range: layer ${layer} has ${channels} channels (k from 0 to ${channels})`);
  if (ranking) checkRankingLength(ranking.channels, channels, o.ranking!);

  const loaded: PairPixels[] = [];
  for (const pair of pairs) loaded.push(await loadPair(pair, classifier));
  const per = classifier.inputDims.reduce((a, b) => a * b, 1);
  const clean = new Float32Array(pairs.length * per);
  const adversarial = new Float32Array(pairs.length * per);
  loaded.forEach((x, i) => { clean.set(x.clean, i * per); adversarial.set(x.adversarial, i * per); });
  const { cleanClass, target, from } = await classesOf(classifier, clean, attacked, flagTarget, pairs);

  process.stderr.write(`patching ${layer} (${channels} channels) on ${pairs.length} pair(s)${target ? ' (targeted)' : ''}\n`);
  const t0 = performance.now();
  let bar: ReturnType<typeof progress> | undefined;
  const result = await patching(classifier, {
    layer, clean, adversarial, cleanClass, target, names: pairs.map((p) => p.name), ranking, seed, draws, batch, minGap,
    // C always: the whole layer is the check that patching reproduces the clean and the adversarial run.
    ks: ks ? [...ks, channels] : defaultKs(channels),
    onProgress: (p) => {
      bar ??= progress(p.total, 'patch');
      bar.update(p.done, p.label);
    },
  });
  bar?.stop();
  const file: PatchingJson = {
    ...result, model: o.model, classes_from: from,
    pairs: pairs.map((p, i) => ({ name: p.name, clean: path.basename(p.clean), adversarial: path.basename(p.adversarial), preprocessed: loaded[i].preprocessed })),
  };
  const text = stableJson(file);
  check(jsonOutput(PATCHING_FILE, PatchingFile), JSON.parse(text), (problem) => `${PATCHING_FILE} not written: ${problem}`);
  await mkdir(out, { recursive: true });
  await writeFileAtomic(path.join(out, PATCHING_FILE), new TextEncoder().encode(text));
  process.stdout.write(table(file));
  process.stderr.write(`patched in ${((performance.now() - t0) / 1000).toFixed(1)} s; wrote ${path.join(out, PATCHING_FILE)}\n`);
}

/** The layer's inventory name, if it has channels to patch; a one-line error otherwise. */
function patchableLayer(classifier: Classifier, name: string, model: string): string {
  const hit = classifier.model.layers.find((l) => l.name === name) ?? classifier.model.layers.find((l) => l.tensor === name);
  if (hit && hit.dims.length !== 4 && hit.dims.length !== 2) {
    throw new Error(`layer '${name}' has output shape [${hit.dims.join(',')}]; patching needs channels: [N,C,H,W] or [N,C]`);
  }
  return resolveLayers(classifier, [name], model)[0];
}

const AttackRows = z.array(AttackReportRow);

/**
 * Per pair its row of an `atlas attack` results.json (looked for beside the adversarial images, then the clean
 * ones), or undefined when neither folder has one.
 */
async function attackRows(pairs: readonly ImagePair[], ...dirs: string[]): Promise<AttackReportRow[] | undefined> {
  for (const dir of [...new Set(dirs)]) {
    const file = path.join(dir, RESULTS);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new Error(`${file}: not JSON (${(err as Error).message}); remove it, or point --clean/--adversarial at an \`atlas attack\` folder`);
    }
    const parsed = AttackRows.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`${file} is not the results.json of \`atlas attack\` (${fieldPath(issue.path)}: ${issue.message})`);
    }
    return pairs.map((p) => {
      const row = parsed.data.find((r) => r.images.adversarial === path.basename(p.adversarial) || r.images.clean === path.basename(p.clean));
      if (!row) throw new Error(`${file} has no row for pair '${p.name}' (${path.basename(p.adversarial)})`);
      return row;
    });
  }
  return undefined;
}

/** Clean class and target per pair: from the attack's rows, else the clean top-1 and --target. */
async function classesOf(classifier: Classifier, clean: Float32Array, rows: AttackReportRow[] | undefined, flagTarget: number | undefined, pairs: readonly ImagePair[]) {
  if (rows) {
    const targets = rows.map((r) => r.target);
    const targeted = targets.filter((t) => t !== undefined).length;
    if (targeted > 0 && targeted < rows.length) throw new Error(`${RESULTS} mixes targeted and untargeted rows; patch them separately`);
    const conflict = flagTarget !== undefined && targeted > 0 ? rows.findIndex((r) => r.target !== flagTarget) : -1;
    if (conflict >= 0) throw new Error(`--target ${flagTarget} disagrees with ${RESULTS}, which gives pair '${pairs[conflict].name}' target ${rows[conflict].target}`);
    const target = targeted ? rows.map((r) => r.target!) : flagTarget === undefined ? undefined : rows.map(() => flagTarget);
    return { cleanClass: rows.map((r) => r.label), target, from: 'attack' as const };
  }
  const logits = (await classifier.model.forward(clean)).logits!;
  const k = classifier.classes.length;
  const cleanClass = pairs.map((_, i) => argmax(logits, i, k));
  return { cleanClass, target: flagTarget === undefined ? undefined : pairs.map(() => flagTarget), from: 'prediction' as const };
}

export interface RankingFile {
  from: string;
  channels: number[];
}

const ChannelList = z.array(z.number().int().nonnegative());
const RankingJson = z.union([ChannelList, z.looseObject({ channels: ChannelList })]);

/**
 * A channel order: `{"channels": [...]}` or a bare list, most important first; or the fragility.json of
 * `atlas analyse`, ordered by its fragility effect (largest first).
 */
export async function readRanking(file: string, layer: string): Promise<RankingFile> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(`--ranking ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.code ? `cannot read it (${e.code})` : `not JSON (${e.message})`}`);
  }
  if (raw && typeof raw === 'object' && 'layers' in raw) {
    const parsed = FragilityFile.safeParse(raw);
    if (!parsed.success) throw new Error(`--ranking ${file}: has 'layers' but is not the fragility.json of \`atlas analyse\` (${fieldPath(parsed.error.issues[0].path)}: ${parsed.error.issues[0].message})`);
    const rows = parsed.data.layers[layer];
    if (!rows) throw new Error(`--ranking ${file} has no layer '${layer}' (it has ${Object.keys(parsed.data.layers).join(', ')})`);
    const channels = [...rows].sort((a, b) => b.effect - a.effect || a.channel - b.channel).map((r) => r.channel);
    return { from: `fragility effect (${path.basename(file)})`, channels };
  }
  const parsed = RankingJson.safeParse(raw);
  if (!parsed.success) throw new Error(`--ranking ${file}: expected {"channels": [c, …]} (most important first), a list of channels, or the fragility.json of \`atlas analyse\``);
  const channels = Array.isArray(parsed.data) ? parsed.data : parsed.data.channels;
  return { from: `given (${path.basename(file)})`, channels };
}

function checkRankingLength(channels: readonly number[], count: number, file: string): void {
  const seen = new Set<number>();
  for (const c of channels) {
    if (c >= count) throw new Error(`--ranking ${file}: channel ${c} does not exist (the layer has channels 0..${count - 1})`);
    if (seen.has(c)) throw new Error(`--ranking ${file}: channel ${c} is listed twice`);
    seen.add(c);
  }
  if (seen.size !== count) throw new Error(`--ranking ${file} orders ${seen.size} channels; the layer has ${count}, and the ranking must order all of them`);
}

/** Recovery and drop per k and selection: the file's headline, small enough to read in a terminal. */
function table(f: PatchingJson): string {
  const v = (x: PatchingInterval) => (x.mean === null ? '—' : x.mean.toFixed(3)).padStart(7);
  const head = ['ranked', 'random', 'active'].map((s) => s.padStart(7)).join('');
  const lines = [
    `${f.layer}: ${f.channels} channels, ${f.n} pair(s), ${f.targeted ? 'targeted' : 'untargeted'}; ranking: ${f.ranking.from === MEAN_ABS_CHANGE ? 'mean |Δ| on these images' : f.ranking.from}`,
    `${'k'.padStart(5)}   restore: recovery       inject: drop`,
    `${''.padStart(5)}  ${head}  ${head}`,
    ...f.ks.map((k, ki) => `${String(k).padStart(5)}  ${SELECTIONS.map((s) => v(f.restore[s][ki].recovery)).join('')}  ${SELECTIONS.map((s) => v(f.inject[s][ki].drop)).join('')}`),
  ];
  if (!f.cut) lines.push(`note: a skip connection bypasses ${f.layer}, so even k = ${f.channels} undoes only the part of the attack that passes through it`);
  return lines.join('\n') + '\n';
}


/** Whether `bytes` are an earlier run's patching.json: they parse as this command's output. */
function patchWrote(bytes: Uint8Array): boolean {
  try {
    return PatchingFile.safeParse(JSON.parse(new TextDecoder().decode(bytes))).success;
  } catch {
    return false;
  }
}
