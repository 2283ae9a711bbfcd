import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { loadClassifierOn } from '../provider.ts';
import { readNpy, toFloat32, writeNpy } from '../../compute/io/npy.ts';
import { loadImage } from '../../compute/io/image.ts';
import { claimOutputFile } from '../../compute/io/output-dir.ts';
import { cardPathFor } from '../../compute/model/model-card.ts';
import { usesLabels } from '../../compute/autodiff/objectives.ts';
import { labelFromFilename } from '../../compute/model/classes.ts';
import type { ProviderChoice } from '../../compute/runtime/execution-provider.ts';
import { parseObjective } from '../parse.ts';

export interface GradOptions {
  /** execution provider (cpu, webgpu, cuda) or auto */
  ep?: ProviderChoice;
  model: string;
  input: string[];
  objective: string;
  out: string;
  /** overwrite an existing --out file */
  force?: boolean;
}

/** Load pixels [N,C,H,W] in [0,1] from one .npy or from image files (preprocessed as the model card says). */
export async function loadPixels(files: readonly string[], dims: readonly [number, number, number], preprocess: { resize: number; crop: number }): Promise<Float32Array> {
  const per = dims[0] * dims[1] * dims[2];
  if (files.length === 1 && files[0].endsWith('.npy')) {
    const a = await readNpy(files[0]);
    const [, c, h, w] = a.shape;
    if (a.shape.length !== 4 || c !== dims[0] || h !== dims[1] || w !== dims[2]) {
      throw new Error(`${files[0]}: expected an array of shape [N,${dims.join(',')}], got [${a.shape.join(',')}]`);
    }
    const x = toFloat32(a);
    for (const v of x) if (!(v >= 0 && v <= 1)) throw new Error(`${files[0]}: pixels must lie in [0,1] (found ${v})`);
    return x;
  }
  if (files.some((f) => f.endsWith('.npy'))) throw new Error('--input takes one .npy file or any number of image files, not both');
  const x = new Float32Array(files.length * per);
  for (let i = 0; i < files.length; i++) x.set(await loadImage(files[i], preprocess), i * per);
  return x;
}

export async function grad(opts: GradOptions): Promise<void> {
  if (!opts.out.endsWith('.npy')) throw new Error(`--out must name a .npy file, got '${opts.out}'`);
  await claimOutputFile(opts.out, { inputs: [opts.model, cardPathFor(opts.model), ...opts.input], force: opts.force });
  const classifier = await loadClassifierOn(opts.model, opts.ep);
  const { objective, labels: inline } = parseObjective(opts.objective, classifier.classes);
  const x = await loadPixels(opts.input, classifier.inputDims, classifier.preprocess);
  const per = classifier.inputDims.reduce((a, b) => a * b, 1);
  const n = x.length / per;
  let labels: number[] | undefined;
  if (usesLabels(objective)) {
    labels = inline ?? opts.input.map((f) => labelFromFilename(f, classifier.classes) ?? -1);
    if (labels.length === 1 && n > 1) labels = new Array(n).fill(labels[0]);
    if (labels.length !== n || labels.some((l) => l < 0)) {
      throw new Error(`the objective needs one label per image (${n}): write them as ce:<c1>,<c2>,... or name image files after their WordNet id`);
    }
  }
  const r = await classifier.model.gradient(x, objective, labels);
  await mkdir(path.dirname(opts.out), { recursive: true });
  await writeNpy(opts.out, Float32Array.from(r.grad), [n, ...classifier.inputDims]);
  const values = Array.from(r.objective, (v) => v.toPrecision(6)).join(', ');
  process.stderr.write(`objective per image: ${values}\nwrote ${opts.out} [${n},${classifier.inputDims.join(',')}]\n`);
}
