// `atlas analyse --model M --reference DIR --layer L … [--clean DIR --adversarial DIR] --out DIR`: the pipeline's
// polysemanticity and fragility on folders, for readers who want the numbers without a spec. The computation is
// compute/analysis/analyse.ts; this file checks the flags and the folders before the model loads, reports progress
// and writes the two files.
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import {
  analyse, analyseFiles, pairImages, pairSize, readReference, resolveLayers, strongImages, type AnalyseProgress, type ImagePair,
} from '../../compute/analysis/analyse.ts';
import { FRAGILITY_FILE, FragilityFile, POLYSEMANTIC_FILE, PolysemanticFile } from '../../compute/analysis/analyse-output.ts';
import { claimNamedFiles } from '../../compute/io/output-dir.ts';
import { loadModelCard } from '../../compute/model/model-card.ts';
import { progress, type Progress } from '../../compute/progress.ts';
import type { ProviderChoice } from '../../compute/runtime/execution-provider.ts';
import { parseInteger, parseNumber } from '../parse.ts';
import { loadClassifierOn } from '../provider.ts';
import { writeFileAtomic } from '../../compute/io/npy.ts';

export interface AnalyseCliOptions {
  ep?: ProviderChoice;
  model: string;
  reference?: string;
  layer?: string[];
  clean?: string;
  adversarial?: string;
  seed: string;
  fdr: string;
  minEffect: string;
  eps?: string;
  top?: string;
  batch: string;
  out?: string;
}

export async function analyseFolders(o: AnalyseCliOptions): Promise<void> {
  if (!o.reference) throw new Error('atlas analyse --model needs --reference <dir> (images with labels.json)');
  if (!o.layer?.length) throw new Error('atlas analyse --model needs at least one --layer (`atlas inspect <model>` lists them)');
  if (!o.out) throw new Error('atlas analyse --model needs --out <dir>');
  if (!!o.clean !== !!o.adversarial) throw new Error('give --clean and --adversarial together (the attacked images before and after)');
  const seed = parseInteger(o.seed, '--seed');
  const fdr = parseNumber(o.fdr, '--fdr');
  if (!(fdr > 0 && fdr < 1)) throw new Error(`--fdr must lie in (0, 1), got ${o.fdr}`);
  const minEffect = parseNumber(o.minEffect, '--min-effect');
  if (!(minEffect >= 0)) throw new Error(`--min-effect must be ≥ 0, got ${o.minEffect}`);
  let eps: number | undefined;
  if (o.eps !== undefined) {
    if (!o.clean) throw new Error('--eps sets the control of --clean/--adversarial pairs; give those too');
    eps = parseNumber(o.eps, '--eps');
    if (eps < 0 || eps > 1) throw new Error(`--eps must lie in [0,1] (pixel units), got ${o.eps}`);
  }
  // Below two groups of three, no channel could ever have a far-apart pair.
  const top = o.top === undefined ? undefined : parseInteger(o.top, '--top', 6);
  const batch = parseInteger(o.batch, '--batch', 1);
  const out = path.resolve(o.out);
  // fragility.json too: a run without pairs removes an earlier one.
  await claimNamedFiles(out, [POLYSEMANTIC_FILE, FRAGILITY_FILE], { command: 'analyse', ours: analyseWrote });

  // Everything that needs no session first, so a typo costs a second, not a pass over the reference set.
  const { classList } = await loadModelCard(o.model);
  const reference = await readReference(o.reference, classList);
  strongImages(reference.length, top);
  const pairs: ImagePair[] | undefined = o.clean ? await pairImages(o.clean, o.adversarial!) : undefined;
  for (const pair of pairs ?? []) await pairSize(pair);

  const classifier = await loadClassifierOn(o.model, o.ep, (c) => ({ activations: resolveLayers(c, o.layer!, o.model), logits: false }));
  const layers = resolveLayers(classifier, o.layer, o.model);
  process.stderr.write(`analysing ${layers.join(', ')} over ${reference.length} reference image(s)${pairs ? ` and ${pairs.length} pair(s)` : ''}\n`);

  const t0 = performance.now();
  const bars = new Map<string, Progress>();
  const onProgress = (p: AnalyseProgress) => {
    let bar = bars.get(p.stage);
    if (!bar) bars.set(p.stage, (bar = progress(p.total, p.stage)));
    bar.update(p.done, p.label);
    if (p.done === p.total) bar.stop();
  };
  const result = await analyse(classifier, { model: o.model, layers, reference, pairs, seed, fdr, minEffect, eps, top, batch, onProgress });
  for (const bar of bars.values()) bar.stop();
  const files = analyseFiles(result);

  await mkdir(out, { recursive: true });
  for (const [name, bytes] of files) await writeFileAtomic(path.join(out, name), bytes);
  // A fragility.json left from a run with pairs would sit beside a polysemantic.json it no longer belongs to.
  const earlier = files.has(FRAGILITY_FILE) ? undefined : await readFile(path.join(out, FRAGILITY_FILE)).catch(() => undefined);
  if (earlier && analyseWrote(FRAGILITY_FILE, earlier)) {
    await rm(path.join(out, FRAGILITY_FILE));
    process.stderr.write(`removed ${path.join(out, FRAGILITY_FILE)} of an earlier run (no pairs given this time)\n`);
  }
  const seconds = ((performance.now() - t0) / 1000).toFixed(1);
  const poly = Object.entries(result.polysemantic.summary).map(([l, s]) => `${l} ${s.polysemantic}/${s.channels}`).join(', ');
  const frag = result.fragility ? `; fragile: ${Object.entries(result.fragility.summary).map(([l, s]) => `${l} ${s.descriptive ? 'not tested (n < 3)' : `${s.fragile}/${s.channels}`}`).join(', ')}` : '';
  process.stderr.write(`analysed in ${seconds} s — polysemantic: ${poly}${frag}; wrote ${path.join(out, POLYSEMANTIC_FILE)}${result.fragility ? ` and ${FRAGILITY_FILE}` : ''}\n`);
}


/** Whether `bytes` are an earlier run's `name`: they parse as this command's output. */
function analyseWrote(name: string, bytes: Uint8Array): boolean {
  try {
    const json: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return (name === FRAGILITY_FILE ? FragilityFile : PolysemanticFile).safeParse(json).success;
  } catch {
    return false;
  }
}
