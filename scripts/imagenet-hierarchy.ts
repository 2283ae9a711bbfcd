// Regenerates src/compute/analysis/imagenet-hierarchy.json: the WordNet 3.0 hypernyms above every ImageNet class.
//   node scripts/imagenet-hierarchy.ts [imagenet-classes.json]   (default: ../shared/models/imagenet-classes.json)
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { hierarchyFor } from './imagenet-hierarchy-lib.ts';

const classesPath = process.argv[2] ?? path.resolve(import.meta.dirname, '../../shared/models/imagenet-classes.json');
const classes: { wnid: string }[] = JSON.parse(await readFile(classesPath, 'utf8'));
const out = path.resolve(import.meta.dirname, '../src/compute/analysis/imagenet-hierarchy.json');
await writeFile(out, JSON.stringify(await hierarchyFor(classes.map((c) => c.wnid))) + '\n');
console.log(`wrote ${out}`);
