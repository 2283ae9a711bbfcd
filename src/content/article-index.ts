// The article's cross-references, read from its MDX source before anything renders: citation numbers in order of
// first citation, figure numbers in document order, and every <Ref>. Reading the source (not counting rendered
// components) gives numbers that do not depend on Astro's render order, and lets a broken Cite or Ref fail the build
// with its file and line. Plain TypeScript (no Astro imports), so tests and scripts can use it too.
//
// What counts:
//   <Cite key="madry2018" />, <Cite key="a,b" />   citation keys, numbered by first appearance
//   <Figure id="x">, <AttackFigure id="x" … />     a figure: any component (capitalised tag) with an id attribute,
//                                                  except the non-figure components in NOT_FIGURES
//   <Ref fig="x" />                                a reference to figure x
// Fenced code blocks, inline code spans, MDX comments {/* … */} and the frontmatter are skipped, so an example of
// <Cite> in a code block is not a citation.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { articlePath, bibPath as configuredBibPath } from '../config.ts';
import { readBibliography, type BibEntry } from './bibliography.ts';

export const DEFAULT_ARTICLE = articlePath(undefined, {});
export const DEFAULT_BIB = configuredBibPath(undefined, {});

/** Components that may carry an id without being a numbered figure. */
export const NOT_FIGURES: ReadonlySet<string> = new Set(['Cite', 'Ref', 'References', 'Value', 'Aside']);

export interface CiteUse { keys: string[]; numbers: number[]; line: number }
export interface FigureDef { id: string; number: number; line: number; component: string }
export interface FigureRef { fig: string; number: number; line: number }

export interface ArticleIndex {
  /** the article and .bib as error messages name them (relative to the working directory where possible) */
  mdxPath: string;
  bibPath: string;
  /** citation key → number, in order of first citation */
  citations: Map<string, number>;
  /** every <Cite>, in document order */
  cites: CiteUse[];
  /** figure id → number, in document order */
  figures: Map<string, number>;
  figureList: FigureDef[];
  /** every <Ref>, in document order */
  refs: FigureRef[];
  /** the whole bibliography, cited or not */
  references: Map<string, BibEntry>;
  /** the cited entries, in citation order */
  cited: BibEntry[];
}

// --- source masking ------------------------------------------------------------------------------------------------

function blank(s: string): string {
  return s.replace(/[^\n]/g, ' ');
}

/**
 * The source with everything that is not prose or JSX (frontmatter, fenced code, inline code, MDX comments) turned
 * into spaces. Same length and same newlines as the source, so offsets and line numbers carry over.
 */
export function maskNonProse(source: string): string {
  const lines = source.split('\n');
  // Frontmatter: a first line of --- up to the next line of ---.
  if (lines[0]?.trimEnd() === '---') {
    const end = lines.findIndex((l, i) => i > 0 && l.trimEnd() === '---');
    if (end > 0) for (let i = 0; i <= end; i++) lines[i] = blank(lines[i]);
  }
  // Fenced code blocks (CommonMark): ``` or ~~~ (3 or more), closed by a fence of the same character at least as
  // long; an unclosed fence runs to the end. MDX has no indented code blocks, so any indentation is allowed.
  let fence: { char: string; len: number } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*(?:>\s*)*(`{3,}|~{3,})(.*)$/.exec(lines[i]);
    if (fence) {
      if (m && m[1][0] === fence.char && m[1].length >= fence.len && m[2].trim() === '') fence = undefined;
      lines[i] = blank(lines[i]);
    } else if (m && !(m[1][0] === '`' && m[2].includes('`'))) {
      fence = { char: m[1][0], len: m[1].length };
      lines[i] = blank(lines[i]);
    }
  }
  const text = lines.join('\n');
  // Inline code spans (a run of n backticks up to the next run of exactly n, within a paragraph) and MDX comments.
  const out = text.split('');
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('{/*', i)) {
      const close = /\*\/\s*\}/g;
      close.lastIndex = i + 3;
      const m = close.exec(text);
      const end = m ? m.index + m[0].length : text.length;
      for (let j = i; j < end; j++) if (out[j] !== '\n') out[j] = ' ';
      i = end;
      continue;
    }
    if (text[i] === '`') {
      let n = 0;
      while (text[i + n] === '`') n++;
      const paragraphEnd = text.slice(i + n).search(/\n[ \t]*\n/);
      const limit = paragraphEnd < 0 ? text.length : i + n + paragraphEnd;
      let j = i + n;
      let end = -1;
      while (j < limit) {
        if (text[j] === '`') {
          let k = 0;
          while (text[j + k] === '`') k++;
          if (k === n) { end = j + k; break; }
          j += k;
        } else j++;
      }
      if (end < 0) { i += n; continue; } // an unmatched run is literal backticks
      for (let j2 = i; j2 < end; j2++) if (out[j2] !== '\n') out[j2] = ' ';
      i = end;
      continue;
    }
    i++;
  }
  return out.join('');
}

// --- JSX tag scanning ----------------------------------------------------------------------------------------------

interface Attr { name: string; literal?: string; expr?: string; present: true }
interface Tag { name: string; offset: number; attrs: Map<string, Attr> }

/** Index just past a balanced {…} starting at `start` (which holds '{'), skipping strings and template literals. */
function skipBraces(s: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < s.length) {
    const c = s[i];
    if (c === '"' || c === "'" || c === '`') {
      const q = c;
      i++;
      while (i < s.length && s[i] !== q) i += s[i] === '\\' ? 2 : 1;
      i++;
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) return i + 1;
    }
    i++;
  }
  return s.length;
}

/** A JS string literal's value when the expression is nothing but one ("…", '…', `…` without ${}). */
function literalOf(expr: string): string | undefined {
  const m = /^\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|`((?:[^`\\$]|\\.)*)`)\s*$/.exec(expr);
  if (!m) return undefined;
  return (m[1] ?? m[2] ?? m[3]).replace(/\\(.)/g, '$1');
}

/** Attributes of the tag whose name ends at `i`, up to its closing > (or /> ). */
function scanAttrs(s: string, i: number): Map<string, Attr> {
  const attrs = new Map<string, Attr>();
  while (i < s.length) {
    while (/\s/.test(s[i] ?? '')) i++;
    const c = s[i];
    if (c === undefined || c === '>' || c === '<') break;
    if (c === '/') { i++; continue; }
    if (c === '{') { i = skipBraces(s, i); continue; } // {...spread}
    const nm = /^[A-Za-z_$][\w:.$-]*/.exec(s.slice(i, i + 200));
    if (!nm) { i++; continue; }
    const name = nm[0];
    i += name.length;
    let j = i;
    while (/\s/.test(s[j] ?? '')) j++;
    if (s[j] !== '=') { attrs.set(name, { name, present: true }); continue; }
    j++;
    while (/\s/.test(s[j] ?? '')) j++;
    const q = s[j];
    if (q === '"' || q === "'") {
      const end = s.indexOf(q, j + 1);
      const stop = end < 0 ? s.length : end;
      attrs.set(name, { name, literal: s.slice(j + 1, stop), present: true });
      i = stop + 1;
    } else if (q === '{') {
      const end = skipBraces(s, j);
      const expr = s.slice(j + 1, end - 1);
      attrs.set(name, { name, literal: literalOf(expr), expr, present: true });
      i = end;
    } else {
      attrs.set(name, { name, present: true });
      i = j;
    }
  }
  return attrs;
}

function scanTags(masked: string): Tag[] {
  const tags: Tag[] = [];
  for (const m of masked.matchAll(/<([A-Z][\w]*)(?=[\s/>])/g)) {
    tags.push({ name: m[1], offset: m.index, attrs: scanAttrs(masked, m.index + m[0].length) });
  }
  return tags;
}

// --- indexing ------------------------------------------------------------------------------------------------------

function displayPath(abs: string): string {
  const rel = path.relative(process.cwd(), abs);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel.split(path.sep).join('/') : abs;
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') starts.push(i + 1);
  return starts;
}

function lineOf(starts: number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length];
}

function suggestion(word: string, candidates: Iterable<string>): string {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const dist = editDistance(word, c);
    if (dist < bestD) { best = c; bestD = dist; }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 4)) ? ` (did you mean '${best}'?)` : '';
}

export function splitKeys(key: string): string[] {
  return key.split(',').map((k) => k.trim()).filter(Boolean);
}

/** Indexes MDX source text against a parsed bibliography. Throws one Error listing every problem as `file:line: …`. */
export function indexSource(source: string, references: Map<string, BibEntry>, mdxPath = DEFAULT_ARTICLE, bibPath = DEFAULT_BIB): ArticleIndex {
  const masked = maskNonProse(source);
  const starts = lineStarts(source);
  const errors: { line: number; message: string }[] = [];
  const fail = (line: number, message: string) => errors.push({ line, message: `${mdxPath}:${line}: ${message}` });

  const citations = new Map<string, number>();
  const cites: CiteUse[] = [];
  const figures = new Map<string, number>();
  const figureList: FigureDef[] = [];
  const refTags: { fig: string; line: number }[] = [];

  for (const tag of scanTags(masked)) {
    const line = lineOf(starts, tag.offset);
    if (tag.name === 'Cite') {
      const key = tag.attrs.get('key');
      if (key?.literal === undefined) {
        fail(line, key?.expr !== undefined ? `<Cite key={${key.expr.trim()}}>: the key must be a string literal, such as key="madry2018"` : '<Cite>: needs a key attribute, such as key="madry2018"');
        continue;
      }
      const keys = splitKeys(key.literal);
      if (keys.length === 0) { fail(line, `<Cite key="${key.literal}">: no citation key`); continue; }
      const missing = keys.filter((k) => !references.has(k));
      for (const k of missing) {
        const which = keys.length > 1 ? `'${k}': ` : '';
        fail(line, `<Cite key="${key.literal}">: ${which}no such entry in ${bibPath}${suggestion(k, references.keys())}`);
      }
      if (missing.length > 0) continue;
      for (const k of keys) if (!citations.has(k)) citations.set(k, citations.size + 1);
      cites.push({ keys, numbers: keys.map((k) => citations.get(k)!), line });
    } else if (tag.name === 'Ref') {
      const fig = tag.attrs.get('fig');
      if (fig?.literal === undefined) {
        fail(line, fig?.expr !== undefined ? `<Ref fig={${fig.expr.trim()}}>: the figure id must be a string literal, such as fig="pgd-weasel"` : '<Ref>: needs a fig attribute, such as fig="pgd-weasel"');
        continue;
      }
      refTags.push({ fig: fig.literal.trim(), line });
    } else if (!NOT_FIGURES.has(tag.name) && tag.attrs.has('id')) {
      const idAttr = tag.attrs.get('id')!;
      if (idAttr.literal === undefined) {
        fail(line, `<${tag.name} id${idAttr.expr !== undefined ? `={${idAttr.expr.trim()}}` : ''}>: a figure id must be a string literal, such as id="pgd-weasel"`);
        continue;
      }
      const id = idAttr.literal.trim();
      const first = figureList.find((f) => f.id === id);
      if (first) { fail(line, `<${tag.name} id="${id}">: duplicate figure id (first used at line ${first.line})`); continue; }
      figures.set(id, figures.size + 1);
      figureList.push({ id, number: figures.size, line, component: tag.name });
    }
  }

  const refs: FigureRef[] = [];
  for (const r of refTags) {
    const n = figures.get(r.fig);
    if (n === undefined) {
      const known = [...figures.keys()];
      fail(r.line, `<Ref fig="${r.fig}">: no figure with this id${suggestion(r.fig, known)} (figure ids: ${known.join(', ') || 'none'})`);
      continue;
    }
    refs.push({ fig: r.fig, number: n, line: r.line });
  }

  if (errors.length > 0) {
    errors.sort((a, b) => a.line - b.line);
    throw new Error(errors.map((e) => e.message).join('\n'));
  }
  return {
    mdxPath, bibPath, citations, cites, figures, figureList, refs, references,
    cited: [...citations.keys()].map((k) => references.get(k)!),
  };
}

// --- cached entry points for the components ------------------------------------------------------------------------

const cache = new Map<string, { stamp: string; index?: ArticleIndex; error?: unknown }>();

function stampOf(file: string): string {
  if (!existsSync(file)) return 'missing';
  const s = statSync(file);
  return `${s.mtimeMs}:${s.size}`;
}

/**
 * Reads and indexes the article (default `content/article.mdx`, or $ATLAS_ARTICLE) against its bibliography (default
 * `content/references.bib`, or $ATLAS_BIB), both relative to the working directory. The result is cached until
 * either file's mtime or size changes, so `astro dev` follows edits. A .bib that does not exist is an empty
 * bibliography. Throws an Error naming `file:line` for a Cite key missing from the .bib, a Ref to a figure id that
 * does not exist, a duplicate figure id, or a .bib syntax error.
 */
export function indexArticle(mdxPath?: string, bibPath?: string): ArticleIndex {
  const mdxAbs = path.resolve(articlePath(mdxPath));
  const bibAbs = path.resolve(configuredBibPath(bibPath));
  const cacheKey = `${mdxAbs}\0${bibAbs}`;
  const stamp = `${stampOf(mdxAbs)}|${stampOf(bibAbs)}`;
  let hit = cache.get(cacheKey);
  if (!hit || hit.stamp !== stamp) {
    hit = { stamp };
    try {
      if (!existsSync(mdxAbs)) throw new Error(`${displayPath(mdxAbs)}: article not found (working directory ${process.cwd()})`);
      const references = readBibliography(bibAbs, displayPath(bibAbs));
      hit.index = indexSource(readFileSync(mdxAbs, 'utf8'), references, displayPath(mdxAbs), displayPath(bibAbs));
    } catch (error) {
      hit.error = error;
    }
    cache.set(cacheKey, hit);
  }
  if (hit.error) throw hit.error;
  return hit.index!;
}

/** The default article's index (same as `indexArticle()`). */
export function articleIndex(): ArticleIndex {
  return indexArticle();
}

/** The number of a citation key of the article; throws when the article does not cite it. */
export function citationNumber(key: string): number {
  if (typeof key !== 'string' || key.trim() === '') throw new Error(`<Cite>: needs a key attribute, such as key="madry2018" (got ${JSON.stringify(key)})`);
  const idx = indexArticle();
  const n = idx.citations.get(key);
  if (n !== undefined) return n;
  if (!idx.references.has(key)) throw new Error(`<Cite key="${key}">: no such entry in ${idx.bibPath}${suggestion(key, idx.references.keys())}`);
  throw new Error(`<Cite key="${key}">: not cited in ${idx.mdxPath}. Citations are numbered from the article's MDX source, so a <Cite> inside another component cannot be numbered: cite it in ${idx.mdxPath} instead.`);
}

/** The bibliography entry of a key; throws when the .bib has none. */
export function bibEntry(key: string): BibEntry {
  if (typeof key !== 'string' || key.trim() === '') throw new Error(`<Cite>: needs a key attribute, such as key="madry2018" (got ${JSON.stringify(key)})`);
  const idx = indexArticle();
  const e = idx.references.get(key);
  if (!e) throw new Error(`<Cite key="${key}">: no such entry in ${idx.bibPath}${suggestion(key, idx.references.keys())}`);
  return e;
}

/** The number of a figure id of the article; throws when no component in the article's MDX has that id. */
export function figureNumber(id: string): number {
  if (typeof id !== 'string' || id.trim() === '') {
    throw new Error(`a figure without an id (got ${JSON.stringify(id)}): only figures given an id in the article's MDX are numbered; give it one (<AttackFigure id="…" …/>), or render it unnumbered without calling figureNumber`);
  }
  const idx = indexArticle();
  const n = idx.figures.get(id);
  if (n !== undefined) return n;
  throw new Error(`figure id "${id}": not found in ${idx.mdxPath}${suggestion(id, idx.figures.keys())}. Figures are numbered from the ids written in the article's MDX (<Figure id="…"> or <AttackFigure id="…" …/>); an id set only inside another component cannot be numbered.`);
}

/** The cited entries, in citation order (entry i has number i + 1). */
export function citedEntries(): BibEntry[] {
  return indexArticle().cited;
}
