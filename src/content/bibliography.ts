// content/references.bib, parsed into the few fields a reference list shows, and formatted in Distill's style.
//
// Parser: citation-js (@citation-js/core + @citation-js/plugin-bibtex, one dependency in two packages: the plugin
// registers the BibTeX format with the core). Chosen over @retorquere/bibtex-parser because it installs at about
// 1 MB with four small dependencies, where bibtex-parser brings about 19 MB (an NLP model, unified-latex, nearley);
// both turn LaTeX accents, braces and "Last, First and …" name lists into Unicode, and citation-js loads as is in
// Node 24's ESM (Node's CommonJS interop) and in Astro's SSR. Titles keep the capitalisation written in the .bib
// (the plugin's `sentenceCase: 'never'` default).
import { existsSync, readFileSync } from 'node:fs';
import { plugins, type CSL, type CSLName } from '@citation-js/core';
import '@citation-js/plugin-bibtex';

export interface BibEntry {
  key: string;
  /** BibTeX entry type, lower case: article, inproceedings, incollection, misc, … */
  type: string;
  /** display names, "A. Madry"; a braced corporate or handle name stays whole ("greentfrapp") */
  authors: string[];
  title: string;
  /** journal, booktitle, or for @misc howpublished/publisher; absent when the entry names none */
  venue?: string;
  /** absent when the entry has no year */
  year?: string;
  volume?: string;
  issue?: string;
  /** with an en dash: "211–252" */
  pages?: string;
  url?: string;
  doi?: string;
  /** 1-based line of the entry's `@type{key,` in the .bib */
  line: number;
}

interface RawEntry { type: string; label: string; properties: Record<string, unknown> }

const NOT_ENTRIES = new Set(['comment', 'string', 'preamble']);

/** `@type{key,` heads of the .bib text with their lines (for duplicate keys and for the entry's line). */
function entryHeads(text: string): { type: string; key: string; line: number }[] {
  const heads: { type: string; key: string; line: number }[] = [];
  const re = /@([A-Za-z]+)\s*[{(]\s*([^,\s{}()]+)\s*,/g;
  for (const m of text.matchAll(re)) {
    if (NOT_ENTRIES.has(m[1].toLowerCase())) continue;
    const line = text.slice(0, m.index).split('\n').length;
    heads.push({ type: m[1].toLowerCase(), key: m[2], line });
  }
  return heads;
}

/** "Aleksander" → "A.", "Ian J." → "I. J.", "Liang-Chieh" → "L.-C.", "J. D." stays. */
function initials(given: string): string {
  return given
    .split(/\s+/)
    .filter(Boolean)
    .map((word) => word.split('-').map((part) => (part ? `${[...part][0]}.` : '')).join('-'))
    .join(' ');
}

export function displayName(n: CSLName): string {
  if (n.literal) return n.literal;
  const parts = [n.given ? initials(n.given) : '', n['dropping-particle'] ?? '', n['non-dropping-particle'] ?? '', n.family ?? '']
    .filter(Boolean)
    .join(' ');
  return n.suffix ? `${parts}, ${n.suffix}` : parts;
}

function str(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  const s = String(v).trim();
  return s === '' ? undefined : s;
}

function yearOf(c: CSL): string | undefined {
  const parts = c.issued?.['date-parts']?.[0];
  if (parts && parts[0] !== undefined) return String(parts[0]);
  return str(c.issued?.literal);
}

type ChainOptions = NonNullable<Parameters<typeof plugins.input.chain>[1]>;

/** citation-js's typings declare every input option required; the others keep their defaults. */
function options(o: Partial<ChainOptions>): ChainOptions {
  return { generateGraph: false, ...o } as ChainOptions;
}

/** The .bib's file:line for a citation-js syntax error ("… at line 3 col 12: …"). */
function syntaxError(file: string, err: unknown): Error {
  const msg = err instanceof Error ? err.message : String(err);
  const m = /at line (\d+) col (\d+)/.exec(msg);
  const first = msg.split('\n')[0].replace(/ at line \d+ col \d+:?$/, '');
  return new Error(m ? `${file}:${m[1]}:${m[2]}: BibTeX syntax error: ${first}` : `${file}: BibTeX syntax error: ${msg}`);
}

/**
 * Parses BibTeX text. `file` only names the source in error messages. Throws (with `file:line`) on a syntax error,
 * a duplicate key, or an entry without a title.
 */
export function parseBibliography(text: string, file = 'content/references.bib'): Map<string, BibEntry> {
  const heads = entryHeads(text);
  const seen = new Map<string, number>();
  for (const h of heads) {
    const first = seen.get(h.key);
    if (first !== undefined) throw new Error(`${file}:${h.line}: duplicate BibTeX key '${h.key}' (first defined at line ${first})`);
    seen.set(h.key, h.line);
  }
  let raw: RawEntry[];
  let csl: CSL[];
  try {
    raw = plugins.input.chain(text, options({ forceType: '@biblatex/text', target: '@biblatex/entries+list' })) as unknown as RawEntry[];
    csl = plugins.input.chain(raw, options({ forceType: '@biblatex/entries+list' }));
  } catch (err) {
    throw syntaxError(file, err);
  }
  const rawByKey = new Map(raw.map((r) => [r.label, r]));
  const out = new Map<string, BibEntry>();
  for (const c of csl) {
    const key = String(c['citation-key'] ?? c.id);
    const line = seen.get(key) ?? 0;
    const title = str(c.title);
    if (!title) throw new Error(`${file}:${line}: BibTeX entry '${key}' has no title`);
    const page = str(c.page);
    const doi = str(c.DOI);
    out.set(key, {
      key,
      type: (rawByKey.get(key)?.type ?? 'misc').toLowerCase(),
      authors: (c.author ?? []).map(displayName).filter(Boolean),
      title,
      venue: str(c['container-title']) ?? str(c.publisher),
      year: yearOf(c),
      volume: str(c.volume),
      issue: str(c.issue),
      pages: page?.replace(/\s*-+\s*/g, '–'),
      url: str(c.URL),
      doi,
      line,
    });
  }
  return out;
}

/** Reads and parses a .bib file; a file that does not exist reads as an empty bibliography. */
export function readBibliography(file: string, displayPath = file): Map<string, BibEntry> {
  if (!existsSync(file)) return new Map();
  return parseBibliography(readFileSync(file, 'utf8'), displayPath);
}

/** Joins sentence pieces with ". ", without doubling a piece's own final punctuation. */
function sentences(pieces: (string | undefined)[]): string {
  return pieces
    .filter((p): p is string => !!p && p.trim() !== '')
    .map((p) => (/[.?!]$/.test(p.trim()) ? p.trim() : `${p.trim()}.`))
    .join(' ');
}

export interface FormatOptions {
  /** more authors than this are cut to the first three and "et al." (default: all are listed) */
  maxAuthors?: number;
}

export function formatAuthors(authors: string[], { maxAuthors = Infinity }: FormatOptions = {}): string {
  if (authors.length > maxAuthors) return `${authors.slice(0, 3).join(', ')}, et al.`;
  return authors.join(', ');
}

/** "International Journal of Computer Vision (IJCV), 115(3), 211–252" */
function venueText(e: BibEntry): string | undefined {
  const vol = e.volume ? `${e.volume}${e.issue ? `(${e.issue})` : ''}` : undefined;
  const parts = [e.venue, vol, e.pages].filter(Boolean);
  return parts.length ? parts.join(', ') : undefined;
}

/**
 * One reference as plain text in Distill's order:
 * "A. Madry, A. Makelov, L. Schmidt, D. Tsipras, A. Vladu. 2018. Towards Deep Learning Models Resistant to
 * Adversarial Attacks. International Conference on Learning Representations (ICLR)."
 * The text holds no markup (LaTeX is already Unicode): put it in a template as `{text}` and Astro escapes it; for
 * `set:html` use `escapeHtml(formatEntry(e))` (src/components/escape-html.ts).
 */
export function formatEntry(e: BibEntry, options: FormatOptions = {}): string {
  return sentences([e.authors.length ? formatAuthors(e.authors, options) : undefined, e.year, e.title, venueText(e)]);
}

/** The entry's link: its DOI when it has one, else its URL. */
export function entryLink(e: BibEntry): { href: string; text: string } | undefined {
  if (e.doi) return { href: `https://doi.org/${e.doi}`, text: `doi:${e.doi}` };
  if (e.url) return { href: e.url, text: e.url.replace(/^https?:\/\//, '').replace(/\/$/, '') };
  return undefined;
}
