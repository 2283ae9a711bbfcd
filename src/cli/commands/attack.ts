import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { attackImages, type AttackInput, type AttackOptions } from '../../compute/attacks/attack-images.ts';
import { loadImage, perturbationPng, toPng } from '../../compute/io/image.ts';
import { readNpy, toFloat32 } from '../../compute/io/npy.ts';
import { loadClassifier } from '../../compute/model/classifier.ts';
import { labelFromFilename } from '../../compute/model/classes.ts';
import type { SessionOptions } from '../../compute/runtime/session.ts';
import { parseClass, parseClassList } from '../parse.ts';
import { progress } from '../progress.ts';

export interface AttackCliOptions extends SessionOptions {
  model: string;
  images?: string[];
  input?: string;
  labels?: string;
  target?: string;
  attack: Omit<AttackOptions, 'target'>;
  out: string;
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
  const classifier = await loadClassifier(opts.model, opts);
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
  const bar = progress(Math.ceil(inputs.length / (opts.attack.batch ?? 8)) * steps, 'attack');
  const results = await attackImages(classifier, inputs, { ...opts.attack, target }, (p) => {
    bar.update((p.batch - 1) * steps + p.step, `batch ${p.batch}/${p.batches}, step ${p.step}/${p.steps}`);
  });
  bar.stop();

  // Write into a temporary sibling and rename at the end: an interrupted or failed run leaves no half-written DIR.
  const out = path.resolve(opts.out);
  const tmp = `${out}.partial-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    const [, h, w] = classifier.inputDims;
    const stems = uniqueStems(results.map((r) => r.name));
    const json = [];
    for (let i = 0; i < results.length; i++) {
      const r = results[i];
      const stem = stems[i];
      const delta = r.adversarial.map((v, k) => v - r.clean[k]);
      await writeFile(path.join(tmp, `${stem}.clean.png`), await toPng(r.clean, h, w));
      await writeFile(path.join(tmp, `${stem}.adversarial.png`), await toPng(r.adversarial, h, w));
      await writeFile(path.join(tmp, `${stem}.perturbation.png`), await perturbationPng(delta, h, w, opts.attack.eps || 1 / 255));
      json.push({
        file: r.name,
        label: r.label,
        label_name: classes[r.label].name,
        label_source: r.labelSource,
        ...(r.target === undefined ? {} : { target: r.target, target_name: classes[r.target].name }),
        top5_before: r.top5Before,
        top5_after: r.top5After,
        success: r.success,
        linf: r.linf,
        l2: r.l2,
        steps: r.steps,
        loss_before: r.lossBefore,
        loss_after: r.lossAfter,
        images: { clean: `${stem}.clean.png`, adversarial: `${stem}.adversarial.png`, perturbation: `${stem}.perturbation.png` },
      });
    }
    const settings = { model: opts.model, ...opts.attack, target: target ?? null };
    await writeFile(path.join(tmp, 'results.json'), JSON.stringify(json, null, 2) + '\n');
    await writeFile(path.join(tmp, 'attack.json'), JSON.stringify(settings, null, 2) + '\n');
    await rm(out, { recursive: true, force: true });
    await rename(tmp, out);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  const ok = results.filter((r) => r.success).length;
  process.stderr.write(`${ok}/${results.length} images ${target === undefined ? 'misclassified' : `classified as ${classes[target].name}`} after the attack; wrote ${opts.out}\n`);
}

function uniqueStems(names: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((n) => {
    const stem = path.basename(n).replace(/\.[^.]+$/, '');
    const k = seen.get(stem) ?? 0;
    seen.set(stem, k + 1);
    return k === 0 ? stem : `${stem}-${k}`;
  });
}
