// What the browser test builds content/article.mdx from instead of the real spec: test/fixtures/article.experiments.yaml
// and a data directory holding the shared models and images (linked) plus `reference`, a small clean reference set.
// The reference photos are chosen, not the first n of a folder, so that every WordNet group the spec pools (mustelids,
// trucks, bears) and every attack's target class has reference photos, as in the 1000-photo set; a target with none
// would leave the bar plots without their target bars.
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { shared } from './shared.ts';

export const FIXTURE_SPEC = path.resolve(import.meta.dirname, '..', 'fixtures', 'article.experiments.yaml');
/** Where the fixtures' steps are cached: never the real article's cache (.cache/atlas), and kept between runs. */
export const FIXTURE_CACHE = path.resolve(import.meta.dirname, '..', '..', '.cache', 'atlas-fixture');

/** Class indices of imagenet-samples (one photo per class) that make up the fixture's reference set. */
const REFERENCE_CLASSES = [
  0, 1, 50, 100, 150, 200, 250, 300, 400, 450, 500, 600, 650, 700, 800, 900, 950, 999,
  294, 295, 296, 297, // bears
  356, 357, 358, 359, 360, 361, 362, // mustelids (the weasel is 356)
  388, // giant panda
  555, 569, 656, 675, 717, 734, 864, 867, // trucks (the trailer truck is 867)
];

/** Fills `dataDir` (which must not exist yet) and returns it; cache keys name images by their paths inside it, so
 * any folder gives the same keys. */
export async function articleFixtureData(dataDir: string): Promise<string> {
  await mkdir(dataDir, { recursive: true });
  await symlink(shared('models'), path.join(dataDir, 'models'));
  await symlink(shared('images'), path.join(dataDir, 'images'));
  const samples = shared('images', 'imagenet-samples');
  const all = JSON.parse(await readFile(path.join(samples, 'labels.json'), 'utf8')) as { index: number; file: string }[];
  const chosen = REFERENCE_CLASSES.map((k) => {
    const entry = all.find((e) => e.index === k);
    if (!entry) throw new Error(`${samples}/labels.json has no photo of class ${k}`);
    return entry;
  });
  const reference = path.join(dataDir, 'reference');
  await mkdir(reference);
  for (const e of chosen) await symlink(path.join(samples, e.file), path.join(reference, e.file));
  await writeFile(path.join(reference, 'labels.json'), JSON.stringify(chosen, null, 1));
  return dataDir;
}
