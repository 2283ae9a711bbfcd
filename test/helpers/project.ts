// A throwaway project for pipeline tests: a data directory linked to the shared models, a small image folder with
// two real photographs, a cache directory and a spec, all in a temporary folder.
import { copyFile, mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { shared } from './shared.ts';

export interface TestProject {
  root: string;
  data: string;
  cache: string;
  spec: string;
}

export const WEASEL = 'n02441942';
export const PANDA = 'n02510455';

/** The model and the two photos testProject lays out, for specs that add their own attacks and steps. */
export const SPEC_HEADER = `id: test-atlas
seed: 1
model:
  file: models/mobilenetv2.onnx
images:
  folder: images/two
`;

export const SPEC = `${SPEC_HEADER}attacks:
  weasel_to_truck: { from: weasel, target: trailer truck, eps: 4/255, alpha: 1/255, steps: 2 }
  panda_untargeted: { from: giant panda, eps: 4/255, alpha: 1/255, steps: 2 }
`;

export async function testProject(spec = SPEC): Promise<TestProject> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'atlas-project-'));
  const data = path.join(root, 'data');
  await mkdir(path.join(data, 'models'), { recursive: true });
  for (const f of ['mobilenetv2.onnx', 'mobilenetv2.json', 'imagenet-classes.json']) await symlink(shared('models', f), path.join(data, 'models', f));
  const images = path.join(data, 'images', 'two');
  await mkdir(images, { recursive: true });
  const labels = [];
  for (const [wnid, index, name] of [[WEASEL, 356, 'weasel'], [PANDA, 388, 'giant panda']] as const) {
    await copyFile(shared('images', 'imagenet-samples', `${wnid}.jpg`), path.join(images, `${wnid}.jpg`));
    labels.push({ index, wnid, name, file: `${wnid}.jpg` });
  }
  await writeFile(path.join(images, 'labels.json'), JSON.stringify(labels));
  const specPath = path.join(root, 'experiments.yaml');
  await writeFile(specPath, spec);
  return { root, data, cache: path.join(root, 'cache'), spec: specPath };
}
