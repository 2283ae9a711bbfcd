// Numbers as researchers write them in specs and on the command line: "4/255", "0.0157", "1e-3".

/** Parse a decimal or a fraction `a/b`; NaN when the text is neither. */
export function parseFraction(text: string): number {
  const t = text.trim();
  const frac = /^([+-]?\d*\.?\d+(?:e[+-]?\d+)?)\s*\/\s*(\d*\.?\d+(?:e[+-]?\d+)?)$/i.exec(t);
  if (frac) return Number(frac[1]) / Number(frac[2]);
  return /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t) ? Number(t) : NaN;
}

/** Round to `digits` significant digits, so cached JSON is stable across platforms' last-bit differences. */
export function roundSignificant(x: number, digits = 7): number {
  if (!Number.isFinite(x) || x === 0) return x;
  return Number(x.toPrecision(digits));
}
