// The article is model-independent and a spec switches models by its model: line: content/article.mdx, unedited,
// builds from test/fixtures/article.experiments.yaml with only that line changed to torchvision's ResNet-50 graph
// (../shared's copy has seeded random weights). The page names that model and the study's layers (the spec's roles
// list both architectures' layers), never a MobileNetV2 layer, gives every layer it names an atlas page, says at the
// top that this model does not classify, and leaves out the compare: block, which was written for MobileNetV2.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildArticle } from './helpers/article-build.ts';
import { FIXTURE_CACHE, FIXTURE_SPEC } from './helpers/article-fixture.ts';
import { parseHtml } from './helpers/figure-checks.ts';

const MOBILENET_LINE = 'model: { file: models/mobilenetv2.onnx, label: MobileNetV2 }';
const RESNET50_LINE = 'model: { file: models/resnet50-random.onnx, label: ResNet-50 (random weights) }';

let tmp: string;
let dist: string;
let html: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'atlas-resnet50-'));
  const mobilenet = await readFile(FIXTURE_SPEC, 'utf8');
  const lines = mobilenet.split('\n');
  expect(lines.filter((l) => l === MOBILENET_LINE)).toHaveLength(1);
  const spec = path.join(tmp, 'resnet50.experiments.yaml');
  await writeFile(spec, lines.map((l) => (l === MOBILENET_LINE ? RESNET50_LINE : l)).join('\n'));
  dist = await buildArticle(tmp, { spec, cache: FIXTURE_CACHE, base: '/' });
  html = await readFile(path.join(dist, 'index.html'), 'utf8');
}, 15 * 60_000);

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('the article built from ResNet-50 with the study\'s layers', () => {
  it('names the spec\'s layers by role and no MobileNetV2 layer', () => {
    const doc = parseHtml(html);
    const roles = Object.fromEntries([...doc.querySelectorAll('[data-layer-role]')].map((a) => [a.getAttribute('data-layer-role'), a.textContent]));
    expect(roles).toEqual({ middle: 'layer3.2.conv3', late: 'layer4.2.conv3' });
    expect(html).toContain('layer4.2.conv3');
    expect(html.match(/features\.\d+/g) ?? []).toEqual([]);
    expect(html).not.toContain('MobileNetV2 int8');
  });

  it('says prominently that this model does not classify, naming it', () => {
    const notice = parseHtml(html).querySelector('[data-notice="model"]');
    expect(notice).not.toBeNull();
    expect(notice!.classList.contains('warning')).toBe(true);
    expect(notice!.textContent).toMatch(/This model does not classify photographs\.\s+ResNet-50 \(random weights\)/);
    expect(notice!.textContent).toContain('models/resnet50-random.onnx');
    // Before any other section of the article.
    expect(html.indexOf('data-notice="model"')).toBeLessThan(html.indexOf('id="motivation"'));
  });

  it('leaves out the comparison written for MobileNetV2, and says why', () => {
    const notice = parseHtml(html).querySelector('[data-notice="no-comparison"]');
    expect(notice?.textContent).toContain("compare: block is written for models/mobilenetv2.onnx, not for models/resnet50-random.onnx");
  });

  it('gives every layer and neuron it links an atlas page', () => {
    const links = [...html.matchAll(/href="(\/neurons\/[^"]+)"/g)].map((m) => m[1]);
    expect(links.some((l) => l.startsWith('/neurons/layer3.2.conv3/'))).toBe(true);
    for (const l of new Set(links)) expect(existsSync(path.join(dist, decodeURIComponent(l), 'index.html')), l).toBe(true);
  });
});
