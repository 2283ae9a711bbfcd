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

/**
 * The `k` items among `items` of largest `value`, largest first, equal values in the items' order: sorting all of
 * them and keeping the first k, in one pass and O(k) memory (the atlas takes 16 of 3100 photos for each neuron).
 */
export function largest(items: ArrayLike<number>, value: (item: number) => number, k: number): number[] {
  const top: number[] = [];
  const tv: number[] = [];
  for (let j = 0; j < items.length; j++) {
    const item = items[j];
    const v = value(item);
    // A later item enters only above a strictly smaller value: equal values keep the items' order.
    if (top.length === k && !(v > tv[k - 1])) continue;
    let at = Math.min(top.length, k - 1);
    while (at > 0 && v > tv[at - 1]) at--;
    if (top.length === k) { top.pop(); tv.pop(); }
    top.splice(at, 0, item);
    tv.splice(at, 0, v);
  }
  return top;
}
