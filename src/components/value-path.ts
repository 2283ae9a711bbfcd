// The grammar of <Value of="…">, kept out of the component so it can be tested without Astro.

/**
 * `attack.<id>.<field>` → the attack's summary field; `<step id>.<path…>` → that path in the step's data. A key that
 * itself holds dots (a layer name) is written in brackets: `neurons_x.neurons.summary[features.17.conv.2].drops`;
 * `[@late]` is the layer the spec's `roles` names `late` (read-value.ts resolves it).
 */
export function resolveValuePath(of: string): { entryId: string; path: string[] } {
  const parts = [...of.matchAll(/\[([^\]]+)\]|[^.[\]]+/g)].map((m) => m[1] ?? m[0]);
  if (parts.length < 2) throw new Error(`<Value of="${of}">: expected <step id>.<field>, e.g. attack.weasel_to_truck.success_rate`);
  if (parts[0] === 'attack' && parts.length >= 3) return { entryId: parts[1], path: ['summary', ...parts.slice(2)] };
  return { entryId: parts[0], path: parts.slice(1) };
}

export function formatValue(v: unknown, format: string | undefined, of: string): string {
  if (typeof v === 'string') return v;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`<Value of="${of}">: not a number (${JSON.stringify(v)})`);
  if (!format) return String(v);
  if (format === '%') return `${(100 * v).toFixed(Math.abs(v) < 0.1 && v !== 0 ? 1 : 0)} %`;
  if (format === 'int') return Math.round(v).toLocaleString('en-US');
  if (format === 'x') return `${v.toFixed(v < 10 ? 1 : 0)}×`;
  if (format === '/255') return `${Number((255 * v).toFixed(2))}/255`;
  const fixed = /^\.(\d)f$/.exec(format);
  if (fixed) return v.toFixed(Number(fixed[1]));
  throw new Error(`<Value of="${of}" format="${format}">: unknown format (use %, int, x, /255 or .Nf)`);
}

/**
 * The word for how `a` compares with `b`: `more` when a > b, `fewer` when a < b, `same` when they are equal or, with
 * `tolerance`, within that fraction of the larger one. Prose that compares two results words it from them, so a
 * rebuild on another model cannot print a comparison its numbers contradict.
 */
export function compareWord(a: number, b: number, words: { more: string; fewer: string; same: string }, tolerance = 0): string {
  if (!Number.isFinite(a) || !Number.isFinite(b)) throw new Error(`cannot compare ${a} with ${b}`);
  if (Math.abs(a - b) <= tolerance * Math.max(Math.abs(a), Math.abs(b))) return words.same;
  return a > b ? words.more : words.fewer;
}
