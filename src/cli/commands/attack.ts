import { loadClassifierOn } from '../provider.ts';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { attackImages, type AttackInput, type AttackOptions } from '../../compute/attacks/attack-images.ts';
import { attackReport } from '../../compute/attacks/attack-report.ts';
import { loadImage } from '../../compute/io/image.ts';
import { OutputDir } from '../../compute/io/output-dir.ts';
import { cardPathFor } from '../../compute/model/model-card.ts';
import { readNpy, toFloat32 } from '../../compute/io/npy.ts';
import { labelFromFilename } from '../../compute/model/classes.ts';
import type { ProviderChoice } from '../../compute/runtime/execution-provider.ts';
import { parseClass, parseClassList } from '../parse.ts';
import { progress } from '../../compute/progress.ts';

export interface AttackCliOptions {
  /** execution provider (cpu, webgpu, cuda) or auto */
  ep?: ProviderChoice;
  model: string;
  images?: string[];
  input?: string;
  labels?: string;
  target?: string;
  attack: Omit<AttackOptions, 'target'>;
  out: string;
  /** replace an earlier output of `atlas attack` at `out` */
  force?: boolean;
}

const IMAGE_EXT = /\.(jpe?g|png|webp|tiff?|gif|avif)$/i;

async function listImages(args: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const a of args) {
    let s;
    try {
      s = await stat(a);
    } catch {
      throw new Error(`cannot read image: ${a} (no such file or directory)`);
    }
    if (s.isDirectory()) {
      const names = (await readdir(a)).filter((f) => IMAGE_EXT.test(f)).sort();
      if (names.length === 0) throw new Error(`no images (jpg, png, webp, …) in directory ${a}`);
      files.push(...names.map((f) => path.join(a, f)));
    } else files.push(a);
  }
  return files;
}

export async function attack(opts: AttackCliOptions): Promise<void> {
  if ((opts.images?.length ?? 0) > 0 === !!opts.input) throw new Error('give either --images <dir|files…> or --input X.npy');
  const read = [opts.model, cardPathFor(opts.model), ...(opts.images ?? []), ...(opts.input ? [opts.input] : [])];
  const output = await OutputDir.claim(opts.out, { command: 'attack', inputs: read, force: opts.force });
  try {
    await attackInto(output, opts);
  } catch (err) {
    await output.abandon();
    throw err;
  }
}

async function attackInto(output: OutputDir, opts: AttackCliOptions): Promise<void> {
  const classifier = await loadClassifierOn(opts.model, opts.ep);
  const { classes } = classifier;
  const target = opts.target === undefined ? undefined : parseClass(opts.target, classes, '--target');
  const given = opts.labels === undefined ? undefined : parseClassList(opts.labels, classes, '--labels');
  const per = classifier.inputDims.reduce((a, b) => a * b, 1);

  const inputs: AttackInput[] = [];
  if (opts.input) {
    const a = await readNpy(opts.input);
    const [, c, h, w] = a.shape;
    if (a.shape.length !== 4 || c !== classifier.inputDims[0] || h !== classifier.inputDims[1] || w !== classifier.inputDims[2]) {
      throw new Error(`${opts.input}: expected shape [N,${classifier.inputDims.join(',')}], got [${a.shape.join(',')}]`);
    }
    const x = toFloat32(a);
    const n = a.shape[0];
    if (given && given.length !== n && given.length !== 1) throw new Error(`--labels has ${given.length} classes for ${n} images`);
    const stem = path.basename(opts.input, '.npy');
    for (let i = 0; i < n; i++) {
      const pixels = x.slice(i * per, (i + 1) * per);
      if (pixels.some((v) => !(v >= 0 && v <= 1))) throw new Error(`${opts.input}: pixels of image ${i} are outside [0,1]`);
      inputs.push({ name: `${stem}-${i}`, pixels, label: given ? given[given.length === 1 ? 0 : i] : undefined });
    }
  } else {
    const files = await listImages(opts.images!);
    if (given && given.length !== files.length && given.length !== 1) throw new Error(`--labels has ${given.length} classes for ${files.length} images`);
    // Read every image before any compute, so a bad file fails fast and nothing is written.
    for (let i = 0; i < files.length; i++) {
      const label = given ? given[given.length === 1 ? 0 : i] : labelFromFilename(files[i], classes);
      inputs.push({ name: files[i], pixels: await loadImage(files[i], classifier.preprocess), label });
    }
  }
  const unlabelled = inputs.filter((i) => i.label === undefined).length;
  if (unlabelled > 0) process.stderr.write(`${unlabelled} image(s) without a label (no WordNet id in the name, no --labels): attacking their clean top-1 class\n`);

  const steps = Math.max(1, opts.attack.steps);
  let bar: ReturnType<typeof progress> | undefined;
  const results = await attackImages(classifier, inputs, { ...opts.attack, target, onBatch: (why) => process.stderr.write(`atlas: ${why}\n`) }, (p) => {
    bar ??= progress(p.batches * steps, 'attack');
    bar.update((p.batch - 1) * steps + p.step, `batch ${p.batch}/${p.batches}, step ${p.step}/${p.steps}`);
  });
  bar?.stop();

  const report = await attackReport(results, classifier, opts.attack.eps);
  const settings = { model: opts.model, ...opts.attack, target: target ?? null };
  report.files.set('results.json', new TextEncoder().encode(JSON.stringify(report.rows, null, 2) + '\n'));
  report.files.set('attack.json', new TextEncoder().encode(JSON.stringify(settings, null, 2) + '\n'));
  await output.commit(report.files);
  const ok = results.filter((r) => r.success).length;
  process.stderr.write(`${ok}/${results.length} images ${target === undefined ? 'misclassified' : `classified as ${classes[target].name}`} after the attack; wrote ${opts.out}\n`);
}
