// The article's build-time bookkeeping: <Value> paths, citation and figure numbering, and the file:line errors that
// make a broken Cite or Ref fail the build.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatValue, resolveValuePath } from '../src/components/value-path.ts';
import { indexArticle } from '../src/content/article-index.ts';
import { formatReference, readBibliography } from '../src/content/bibliography.ts';

const BIB = `@article{a1, author = {Madry, Aleksander and Makelov, Aleksandar}, title = {Towards Deep Learning Models}, journal = {ICLR}, year = {2018}}
@article{b2, author = {Olah, Chris}, title = {Feature Visualization}, journal = {Distill}, year = {2017}, doi = {10.23915/distill.00007}}
@article{c3, author = {Szegedy, Christian}, title = {Intriguing}, journal = {ICLR}, year = {2014}}`;

function fixture(mdx: string): { mdx: string; bib: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'atlas-article-'));
  writeFileSync(path.join(dir, 'a.mdx'), mdx);
  writeFileSync(path.join(dir, 'refs.bib'), BIB);
  return { mdx: path.join(dir, 'a.mdx'), bib: path.join(dir, 'refs.bib') };
}

describe('article index', () => {
  it('numbers citations by first appearance and figures by order, ignoring fenced code', () => {
    const f = fixture([
      'Intro <Cite key="b2" /> and <Cite key="c3,b2" />.',
      '```mdx',
      '<Cite key="a1" /> <Figure id="in-code" />',
      '```',
      '<AttackFigure id="first" experiment="x" />',
      'See <Ref fig="second" /> then <Cite key="a1" />.',
      '<Figure id="second" width="page">',
    ].join('\n'));
    const index = indexArticle(f.mdx, f.bib);
    expect([...index.citations]).toEqual([['b2', 1], ['c3', 2], ['a1', 3]]);
    expect([...index.figures]).toEqual([['first', 1], ['second', 2]]);
  });

  it('fails with file and line on a missing citation key, a broken Ref and a duplicate figure id', () => {
    expect(() => indexArticle(...Object.values(fixture('ok\n\n<Cite key="nope" />')) as [string, string])).toThrow(/a\.mdx:3: <Cite key="nope">: no entry 'nope'/);
    expect(() => indexArticle(...Object.values(fixture('<Figure id="x" />\n<Ref fig="y" />')) as [string, string])).toThrow(/a\.mdx:2: <Ref fig="y">: no figure/);
    expect(() => indexArticle(...Object.values(fixture('<Figure id="x" />\n\n\n<Figure id="x" />')) as [string, string])).toThrow(/a\.mdx:4: .*already exists/);
  });

  it('reads every reference the article needs from content/references.bib', () => {
    const refs = readBibliography('content/references.bib');
    for (const key of ['szegedy2014', 'goodfellow2015', 'madry2018', 'ilyas2019', 'olah2017', 'olah2020', 'bau2017', 'elhage2022', 'wang2022hint']) {
      expect(refs.get(key)?.title, key).toBeTruthy();
      expect(refs.get(key)?.year, key).toMatch(/^\d{4}$/);
    }
    expect(formatReference(refs.get('madry2018')!)).toMatch(/^A\. Madry, A\. Makelov, L\. Schmidt, et al\. 2018\. Towards Deep Learning Models Resistant to Adversarial Attacks\./);
  });

  it('indexes the real article without errors', () => {
    const index = indexArticle('content/article.mdx', 'content/references.bib');
    expect(index.figures.size).toBeGreaterThanOrEqual(8);
    expect(index.citations.get('sandler2018')).toBe(1);
  });
});

describe('<Value> paths and formats', () => {
  it('resolves attack shorthands and bracketed layer names', () => {
    expect(resolveValuePath('attack.weasel_to_truck.success_rate')).toEqual({ entryId: 'weasel_to_truck', path: ['summary', 'success_rate'] });
    expect(resolveValuePath('neurons_x.neurons.summary[features.17.conv.2].drops')).toEqual({ entryId: 'neurons_x', path: ['neurons', 'summary', 'features.17.conv.2', 'drops'] });
    expect(() => resolveValuePath('lonely')).toThrow(/expected <step id>/);
  });
  it('formats numbers and refuses what is not one', () => {
    expect(formatValue(0.256, '%', 'v')).toBe('26 %');
    expect(formatValue(0.034, '%', 'v')).toBe('3.4 %');
    expect(formatValue(3.14159, '.2f', 'v')).toBe('3.14');
    expect(formatValue(1234.4, 'int', 'v')).toBe('1,234');
    expect(() => formatValue(undefined, '%', 'a.b')).toThrow(/<Value of="a.b">: not a number/);
    expect(() => formatValue(1, 'weird', 'v')).toThrow(/unknown format/);
  });
});
