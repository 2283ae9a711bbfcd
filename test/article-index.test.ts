// The article index: citation and figure numbering from the MDX source, the build errors (with file:line) for a
// missing cite key, a broken Ref and a duplicate figure id, code blocks ignored, and the real references.bib.
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { citationNumber, citedEntries, figureNumber, indexArticle, maskNonProse } from '../src/content/article-index.ts';
import { entryLink, formatEntry, parseBibliography, readBibliography } from '../src/content/bibliography.ts';

const REPO = path.resolve(import.meta.dirname, '..');
const dir = mkdtempSync(path.join(tmpdir(), 'atlas-index-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BIB = `@inproceedings{madry2018,
  author = {Madry, Aleksander and Makelov, Aleksandar and Schmidt, Ludwig and Tsipras, Dimitris and Vladu, Adrian},
  title = {Towards Deep Learning Models Resistant to Adversarial Attacks},
  booktitle = {International Conference on Learning Representations ({ICLR})},
  year = {2018},
  url = {https://arxiv.org/abs/1706.06083},
}
@inproceedings{goodfellow2015,
  author = {Goodfellow, Ian J. and Shlens, Jonathon and Szegedy, Christian},
  title = {Explaining and Harnessing Adversarial Examples},
  booktitle = {ICLR},
  year = {2015},
}
@article{olah2017,
  author = {Olah, Chris and Mordvintsev, Alexander and Schubert, Ludwig},
  title = {Feature Visualization},
  journal = {Distill},
  year = {2017},
  doi = {10.23915/distill.00007},
}
@misc{lucent,
  author = {{greentfrapp}},
  title = {Lucent},
  howpublished = {GitHub},
  url = {https://github.com/greentfrapp/lucent},
}
`;
const bibPath = path.join(dir, 'references.bib');
writeFileSync(bibPath, BIB);

let serial = 0;
/** Writes an MDX fixture (lines joined with \n) and returns its path. */
function mdx(lines: string[]): string {
  const p = path.join(dir, `article-${++serial}.mdx`);
  writeFileSync(p, lines.join('\n'));
  return p;
}

/** The message of the Error that fn throws (fails the test when fn does not throw). */
function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error, none was thrown');
}

describe('indexArticle: numbering', () => {
  const file = mdx([
    '---',
    'title: Fixture <Cite key="lucent" /> in the frontmatter is not a citation',
    '---',
    "import Figure from '../src/components/Figure.astro';",
    '',
    'PGD <Cite key="madry2018" /> builds on FGSM <Cite key="goodfellow2015" />.', // line 6
    'Again <Cite key="madry2018" />, and both at once <Cite key="olah2017, madry2018" />.',
    '',
    '<AttackFigure id="weasel" experiment="weasel_to_truck" />', // line 9
    '',
    'See <Ref fig="panda" /> and <Ref fig="weasel" capital={false} />.', // line 11: a forward reference
    '',
    '<Figure',
    '  id="panda"', // a multi-line tag, starting at line 13
    '  width="page"',
    '>',
    '  caption <Cite key={"lucent"} />',
    '</Figure>',
    '<Aside id="note">not a figure</Aside>',
  ]);
  const idx = indexArticle(file, bibPath);

  it('numbers citation keys by first appearance, keeps repeated keys and reads multi-key cites', () => {
    expect([...idx.citations.entries()]).toEqual([['madry2018', 1], ['goodfellow2015', 2], ['olah2017', 3], ['lucent', 4]]);
    expect(idx.cites.map((c) => c.numbers)).toEqual([[1], [2], [1], [3, 1], [4]]);
    expect(idx.cites.map((c) => c.line)).toEqual([6, 6, 7, 7, 17]);
    expect(idx.cited.map((e) => e.key)).toEqual(['madry2018', 'goodfellow2015', 'olah2017', 'lucent']);
  });

  it('numbers figures (any component with an id, Aside excepted) in document order and resolves Refs', () => {
    expect(idx.figureList.map((f) => [f.id, f.number, f.line, f.component])).toEqual([
      ['weasel', 1, 9, 'AttackFigure'],
      ['panda', 2, 13, 'Figure'],
    ]);
    expect(idx.refs).toEqual([{ fig: 'panda', number: 2, line: 11 }, { fig: 'weasel', number: 1, line: 11 }]);
  });
});

describe('indexArticle: errors name file and line', () => {
  it('a cite key missing from the .bib', () => {
    const file = mdx(['# Title', '', 'Fine <Cite key="madry2018" />.', '', 'Typo <Cite key="madr2018" /> here.']);
    const msg = errorOf(() => indexArticle(file, bibPath));
    expect(msg).toContain(`${file}:5: <Cite key="madr2018">: no such entry in ${bibPath}`);
    expect(msg).toContain("did you mean 'madry2018'?");
  });

  it('a missing key inside a multi-key cite', () => {
    const file = mdx(['<Cite key="olah2017,nobody1999" />']);
    expect(errorOf(() => indexArticle(file, bibPath))).toContain(`${file}:1: <Cite key="olah2017,nobody1999">: 'nobody1999': no such entry`);
  });

  it('a Ref to a figure id that does not exist', () => {
    const file = mdx(['<Figure id="pgd-weasel">x</Figure>', '', '', 'As <Ref fig="pgd-weasl" /> shows.']);
    const msg = errorOf(() => indexArticle(file, bibPath));
    expect(msg).toContain(`${file}:4: <Ref fig="pgd-weasl">: no figure with this id`);
    expect(msg).toContain("did you mean 'pgd-weasel'?");
  });

  it('a duplicate figure id, pointing at the first use', () => {
    const file = mdx(['<Figure id="a">x</Figure>', '<Figure id="b">x</Figure>', '', '<EpsilonCurve id="a" />']);
    expect(errorOf(() => indexArticle(file, bibPath))).toContain(`${file}:4: <EpsilonCurve id="a">: duplicate figure id (first used at line 1)`);
  });

  it('lists every problem, in line order', () => {
    const file = mdx(['<Ref fig="nope" />', '<Cite key="x1" />', '<Cite key="madry2018" />', '<Cite key="x2" />']);
    const lines = errorOf(() => indexArticle(file, bibPath)).split('\n');
    expect(lines.map((l) => l.slice(file.length + 1).split(':')[0])).toEqual(['1', '2', '4']);
  });

  it('a key written as an expression that is not a string', () => {
    const file = mdx(['', '<Cite key={someKey} />']);
    expect(errorOf(() => indexArticle(file, bibPath))).toContain(`${file}:2: <Cite key={someKey}>: the key must be a string literal`);
  });
});

describe('indexArticle: code is not prose', () => {
  it('ignores cites, figures and Refs in fenced code, inline code and MDX comments', () => {
    const file = mdx([
      'Real <Cite key="olah2017" />.',
      '',
      '```mdx',
      '<Cite key="madr2018" />',
      '<Figure id="dup">',
      '```',
      '',
      '~~~~',
      '```',
      '<Cite key="inside-tilde-fence" />',
      '~~~~',
      '',
      'Write `<Cite key="inline-code" />` to cite, or ``<Ref fig="x" />``.',
      '{/* <Cite key="commented-out" /> */}',
      '<Figure id="dup">y</Figure>',
      'Then <Cite key="madry2018" />.',
    ]);
    const idx = indexArticle(file, bibPath);
    expect([...idx.citations.keys()]).toEqual(['olah2017', 'madry2018']);
    expect(idx.cites.map((c) => c.line)).toEqual([1, 16]);
    expect([...idx.figures.keys()]).toEqual(['dup']);
    expect(idx.figureList[0].line).toBe(15);
  });

  it('the same cite outside the fence is an error (the fixture can fail)', () => {
    const file = mdx(['```', '<Cite key="madry2018" />', '```', '<Cite key="madr2018" />']);
    expect(errorOf(() => indexArticle(file, bibPath))).toContain(`${file}:4: <Cite key="madr2018">`);
  });

  it('masking keeps offsets and line breaks', () => {
    const src = 'a `b\nc` d\n```\nx\n```\ne';
    const masked = maskNonProse(src);
    expect(masked.length).toBe(src.length);
    expect(masked.split('\n').length).toBe(src.split('\n').length);
    expect(masked).toBe('a   \n   d\n   \n \n   \ne');
  });
});

describe('indexArticle: cache', () => {
  it('re-reads the article when its mtime changes', () => {
    const file = mdx(['<Cite key="madry2018" />']);
    expect([...indexArticle(file, bibPath).citations.keys()]).toEqual(['madry2018']);
    writeFileSync(file, '<Cite key="lucent" /> <Cite key="madry2018" />');
    const later = new Date(Date.now() + 5_000);
    utimesSync(file, later, later);
    expect([...indexArticle(file, bibPath).citations.keys()]).toEqual(['lucent', 'madry2018']);
  });
});

describe('component helpers (the default article, here redirected with ATLAS_ARTICLE / ATLAS_BIB)', () => {
  it('give numbers and the ordered entries, and refuse what the article does not have', () => {
    const file = mdx(['<Figure id="f1">a</Figure>', 'B <Cite key="olah2017" /> <Cite key="madry2018" />', '<Figure id="f2">b</Figure>']);
    const saved = { a: process.env.ATLAS_ARTICLE, b: process.env.ATLAS_BIB };
    process.env.ATLAS_ARTICLE = file;
    process.env.ATLAS_BIB = bibPath;
    try {
      expect(citationNumber('madry2018')).toBe(2);
      expect(figureNumber('f2')).toBe(2);
      expect(citedEntries().map((e) => e.key)).toEqual(['olah2017', 'madry2018']);
      expect(errorOf(() => citationNumber('lucent'))).toMatch(/<Cite key="lucent">: not cited in /);
      expect(errorOf(() => figureNumber('f3'))).toMatch(/figure id "f3": not found in .*did you mean 'f1'/);
      expect(errorOf(() => figureNumber(undefined as unknown as string))).toMatch(/^a figure without an id/);
    } finally {
      for (const [k, v] of [['ATLAS_ARTICLE', saved.a], ['ATLAS_BIB', saved.b]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});

describe('bibliography', () => {
  it('parses the fixture into the typed shape and formats it in Distill style', () => {
    const bib = readBibliography(bibPath);
    const madry = bib.get('madry2018')!;
    expect(madry).toMatchObject({
      key: 'madry2018', type: 'inproceedings', year: '2018', line: 1,
      authors: ['A. Madry', 'A. Makelov', 'L. Schmidt', 'D. Tsipras', 'A. Vladu'],
      venue: 'International Conference on Learning Representations (ICLR)',
    });
    expect(formatEntry(madry)).toBe('A. Madry, A. Makelov, L. Schmidt, D. Tsipras, A. Vladu. 2018. Towards Deep Learning Models Resistant to Adversarial Attacks. International Conference on Learning Representations (ICLR).');
    expect(formatEntry(madry, { maxAuthors: 4 })).toMatch(/^A\. Madry, A\. Makelov, L\. Schmidt, et al\. 2018\. /);
    expect(formatEntry(bib.get('lucent')!)).toBe('greentfrapp. Lucent. GitHub.');
    expect(entryLink(bib.get('olah2017')!)).toEqual({ href: 'https://doi.org/10.23915/distill.00007', text: 'doi:10.23915/distill.00007' });
  });

  it('reports a duplicate key and a syntax error with the .bib line', () => {
    expect(errorOf(() => parseBibliography('@misc{a, title={x}}\n\n@misc{a, title={y}}', 'refs.bib'))).toBe("refs.bib:3: duplicate BibTeX key 'a' (first defined at line 1)");
    expect(errorOf(() => parseBibliography('@misc{a, title={x}}\n@misc{b title={y}}', 'refs.bib'))).toMatch(/^refs\.bib:2:\d+: BibTeX syntax error/);
  });

  it('the real content/references.bib parses and holds every key the article needs', () => {
    const bibFile = path.join(REPO, 'content', 'references.bib');
    const bib = readBibliography(bibFile);
    const keys = ['szegedy2014', 'goodfellow2015', 'madry2018', 'ilyas2019', 'olah2017', 'olah2020', 'bau2017', 'elhage2022',
      'wang2022hint', 'he2016', 'sandler2018', 'russakovsky2015', 'miller1995', 'lucent', 'kurakin2018', 'engstrom2019robustness'];
    for (const k of keys) expect(bib.has(k), `${k} in content/references.bib`).toBe(true);
    for (const e of bib.values()) {
      expect(e.title, e.key).not.toMatch(/[{}\\]/); // LaTeX resolved
      expect(e.authors.length, e.key).toBeGreaterThan(0);
      expect(e.url ?? e.doi, `${e.key} has a link`).toBeTruthy();
    }
    expect(bib.get('olah2017')!.doi).toBe('10.23915/distill.00007');
    expect(bib.get('olah2020')!.doi).toBe('10.23915/distill.00024.001');
    expect(bib.get('lucent')!.url).toBe('https://github.com/greentfrapp/lucent');
    expect(bib.get('engstrom2019robustness')!.url).toBe('https://github.com/MadryLab/robustness');
    expect(bib.get('wang2022hint')!.authors[0]).toBe('A. Wang');
    expect(readFileSync(bibFile, 'utf8')).not.toMatch(/@\w+\{\s*,/); // no entry without a key
  });
});
