// The article's build-time bookkeeping: <Value> paths and formats, and figure numbering across the figure components
// the article uses (test/article-index.test.ts covers citations, the .bib and the file:line errors).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareWord, formatValue, resolveValuePath } from '../src/components/value-path.ts';
import { indexArticle } from '../src/content/article-index.ts';

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

  it('indexes the real article without errors', () => {
    const index = indexArticle('content/article.mdx', 'content/references.bib');
    expect(index.figures.size).toBeGreaterThanOrEqual(8);
    // the two-model comparison (spec's compare:) is one of them, after the single-model figures
    expect(index.figureList.find((f) => f.id === 'comparison')?.component).toBe('ModelComparison');
    // The dataset first, then the default model and the study's (the prose names the built model by Value).
    expect(['russakovsky2015', 'sandler2018', 'he2016'].map((k) => index.citations.get(k))).toEqual([1, 2, 3]);
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
    expect(formatValue(4 / 255, '/255', 'v')).toBe('4/255');
    expect(formatValue(0.25 / 255, '/255', 'v')).toBe('0.25/255');
  });
});

describe('<Compare> words', () => {
  const words = { more: 'more', fewer: 'fewer', same: 'as many' };
  it('words the comparison from the two numbers', () => {
    expect(compareWord(12, 3, words)).toBe('more');
    expect(compareWord(3, 12, words)).toBe('fewer');
    expect(compareWord(5, 5, words)).toBe('as many');
    expect(compareWord(0, 0, words)).toBe('as many');
  });
  it('counts values within the tolerance as the same, and refuses what is not a number', () => {
    expect(compareWord(100, 96, words, 0.05)).toBe('as many');
    expect(compareWord(100, 94, words, 0.05)).toBe('more');
    expect(() => compareWord(NaN, 1, words)).toThrow(/cannot compare/);
  });
});
