// Regenerates src/data-dir/data-manifest.json from a filled data directory: the sha256 and size of every file the default
// article reads, with the sources, licences and URLs below (the only hand-written part: edit them here).
//   node scripts/make-data-manifest.ts [data-dir]   (default: the shared folder, ../shared or ATLAS_SHARED)
//
// How each URL was established (never guessed; a file without a verifiable public URL is mirror_only):
// - mobilenetv2-12-int8.onnx: github.com/onnx/models at commit b1eeaa1a (its last, the "Deprecation Notice" commit)
//   holds validated/vision/classification/mobilenet/model/mobilenetv2-12-int8.onnx as a Git LFS pointer with
//   sha256 cc028fe6…, 3655033 bytes, the same digest its ONNX_HUB_MANIFEST.json gives. ../shared's copy is that file
//   with 15 value_info entries (shape annotations, 607 bytes) added at the end of the graph: removing them gives the
//   zoo's bytes exactly (test/fetch.test.ts checks it). The notice says LFS downloads end on 1 July 2025 and names
//   huggingface.co/onnxmodelzoo as the models' new home; the file URL there is taken from a third-party script and
//   was not verified here, so it is only an alternate, checked against the same sha256.
// - NIPS 2017 development set: the competition publishes each photo's Flickr URL and crop box (cleverhans,
//   examples/nips17_adversarial_competition/dataset/dev_dataset.csv); its download_images.py crops, resizes to 299×299
//   and re-encodes, so no URL serves these JPEG bytes. Each file records its Flickr page (labels.json's source_url).
// - ImageNet photos, the model card and the class list: no public URL serves these files.
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sharedDir } from '../src/config.ts';
import { MANIFEST_PATH, parseManifest, type ManifestFile } from '../src/data-dir/data-manifest.ts';
import { sha256File } from '../src/data-dir/fetch-file.ts';

const ZOO_COMMIT = 'b1eeaa1ac722dcc1cd1a8284bde34393dab61c3d';
const ZOO_PATH = 'validated/vision/classification/mobilenet/model/mobilenetv2-12-int8.onnx';
const IMAGENET_LICENCE = 'photographs belong to their owners; ImageNet terms of access (https://image-net.org/download.php): non-commercial research and education only, not for redistribution — used for computation, never shown in a public article';

const groups: ManifestFile['groups'] = {
  'onnx-model-zoo': {
    licence: 'Apache-2.0 (ONNX Model Zoo, https://github.com/onnx/models)',
    source: 'ONNX Model Zoo, MobileNet v2-1.0-int8: mobilenetv2-12 quantized with Intel Neural Compressor (https://github.com/onnx/models/tree/main/validated/vision/classification/mobilenet)',
  },
  'derived-model': {
    licence: 'Apache-2.0, as the int8 model it is made from',
    source: 'made by this project from models/mobilenetv2-12-int8.onnx (src/compute/onnx/torchvision-names.ts): weights (q − zero point)·scale, biases bias·x_scale·w_scale, ReLU6 as Clip(0, 6), torchvision module names',
  },
  'project-metadata': {
    licence: 'written for this project (model card); the class list holds the 1000 ILSVRC-2012 WordNet ids and class names',
    source: 'this project',
    mirror_only: true,
    note: 'no public URL serves these files',
  },
  'imagenet-samples': {
    licence: IMAGENET_LICENCE,
    source: 'ImageNet (https://image-net.org): one photograph per ILSVRC-2012 class, resized to a shorter side of 288 px, with labels.json',
    mirror_only: true,
  },
  'imagenet-val-1300': {
    licence: IMAGENET_LICENCE,
    source: 'ILSVRC-2012 validation set (https://image-net.org/challenges/LSVRC/2012/): 1300 photographs, 227×227, with labels.json',
    mirror_only: true,
  },
  'nips17-dev': {
    licence: 'CC BY 2.0 (https://creativecommons.org/licenses/by/2.0/): credit each photo to its author',
    source: 'NIPS 2017 Adversarial Attacks and Defenses competition, development set (https://github.com/cleverhans-lab/cleverhans/tree/master/examples/nips17_adversarial_competition/dataset): Flickr photographs cropped and resized to 299×299; each file names its Flickr page',
    mirror_only: true,
    note: 'the competition publishes Flickr URLs and crop boxes, not these JPEG files (a crop made again has other bytes), so they come from a mirror',
  },
};

type Entry = ManifestFile['files'][number];

const dataDir = path.resolve(process.argv[2] ?? sharedDir());
const at = (p: string) => path.join(dataDir, ...p.split('/'));

async function entry(p: string, rest: Omit<Entry, 'path' | 'sha256' | 'size'>): Promise<Entry> {
  return { path: p, sha256: await sha256File(at(p)), size: (await stat(at(p))).size, ...rest };
}

async function folder(name: string, group: string, perFile: (file: string) => Partial<Entry> = () => ({})): Promise<Entry[]> {
  const files = (await readdir(at(name))).filter((f) => !f.startsWith('.')).sort();
  const out: Entry[] = [];
  for (const f of files) out.push(await entry(`${name}/${f}`, { group, ...perFile(f) }));
  return out;
}

const nipsLabels: { file: string; author?: string; source_url?: string; license?: string }[] =
  JSON.parse(await readFile(at('images/nips17-dev/labels.json'), 'utf8'));
const nipsCredit = new Map(nipsLabels.map((l) => [l.file, l]));

const files: Entry[] = [
  await entry('models/mobilenetv2-12-int8.onnx', {
    group: 'onnx-model-zoo',
    url: `https://github.com/onnx/models/raw/${ZOO_COMMIT}/${ZOO_PATH}`,
    url_sha256: 'cc028fe6cae7bc11a4ff53cfc9b79c920e8be65ce33a904ec3e2a8f66d77f95f',
    url_size: 3655033,
    alternates: ['https://huggingface.co/onnxmodelzoo/mobilenetv2-12-int8/resolve/main/mobilenetv2-12-int8.onnx'],
    note: "url_sha256 is the zoo's file (its Git LFS pointer and ONNX_HUB_MANIFEST.json); sha256 is the same file with 15 value_info shape annotations added, as ../shared holds it; both compute the same and either is accepted",
  }),
  await entry('models/mobilenetv2.onnx', { group: 'derived-model', derived_from: 'models/mobilenetv2-12-int8.onnx', derive: 'mobilenetv2-int8-to-torchvision' }),
  await entry('models/mobilenetv2.json', { group: 'project-metadata', needs: ['models/imagenet-classes.json'] }),
  await entry('models/imagenet-classes.json', { group: 'project-metadata' }),
  ...await folder('images/imagenet-samples', 'imagenet-samples'),
  ...await folder('images/imagenet-val-1300', 'imagenet-val-1300'),
  ...await folder('images/nips17-dev', 'nips17-dev', (f) => {
    const credit = nipsCredit.get(f);
    if (!credit) return {};
    if (credit.license !== 'https://creativecommons.org/licenses/by/2.0/') throw new Error(`${f}: licence ${credit.license}, not CC BY 2.0`);
    return { source: credit.source_url, author: credit.author };
  }),
];

const manifest: ManifestFile = {
  $comment: 'Generated by scripts/make-data-manifest.ts from a filled data directory (edit that script); read by src/data-dir/data-manifest.ts, which documents every field.',
  version: 1,
  groups,
  files,
};
parseManifest(manifest, 'the generated manifest');

// One file a line: a change to one file is a one-line diff.
const text = [
  '{',
  `  "$comment": ${JSON.stringify(manifest.$comment)},`,
  `  "version": 1,`,
  `  "groups": ${JSON.stringify(groups, null, 2).replace(/\n/g, '\n  ')},`,
  '  "files": [',
  files.map((f) => `    ${JSON.stringify(f)}`).join(',\n'),
  '  ]',
  '}',
  '',
].join('\n');
await writeFile(MANIFEST_PATH, text);
console.log(`wrote ${MANIFEST_PATH}: ${files.length} files, ${(files.reduce((n, f) => n + f.size, 0) / 1e6).toFixed(1)} MB`);
