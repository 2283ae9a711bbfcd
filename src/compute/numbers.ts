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

/** Relative L2 error ‖a − b‖ / ‖b‖ (0 for two zero vectors, huge when only b is zero). */
export function relativeL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return num === 0 ? 0 : Math.sqrt(num / Math.max(den, Number.MIN_VALUE));
}

/** Linear-interpolation quantile (NumPy's default) of the values. */
export function quantile(values: ArrayLike<number>, q: number): number {
  const s = Float64Array.from(values).sort();
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}
