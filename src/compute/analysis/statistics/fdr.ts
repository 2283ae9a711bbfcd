// Benjamini–Hochberg false-discovery control across the tests of one family (a layer's channels). Calling every test
// with q ≤ level significant keeps the expected share of false discoveries among the discoveries at or below `level`
// when the p-values are independent or positively dependent (Benjamini & Hochberg 1995; Benjamini & Yekutieli 2001).
//
//     q_(i) = min_{j ≥ i} min(1, m · p_(j) / j)      p_(1) ≤ … ≤ p_(m)
//
// The running minimum from the largest p down makes q monotone in p and gives tied p-values the same q. A NaN p is a
// test that could not be run: it is left out of m (as R's p.adjust does with NA), so it neither dilutes nor inflates
// the others, and its q is NaN, which is never significant.

/** q-values [m] of the p-values [m], in the input's order. */
export function benjaminiHochberg(p: ArrayLike<number>): Float64Array {
  const q = new Float64Array(p.length).fill(NaN);
  const order: number[] = [];
  for (let i = 0; i < p.length; i++) {
    const v = p[i];
    if (Number.isNaN(v)) continue;
    if (!(v >= 0 && v <= 1)) throw new RangeError(`p-value ${v} at index ${i} is outside [0, 1]`);
    order.push(i);
  }
  // Index breaks ties so the result never depends on the sort's stability.
  order.sort((a, b) => p[a] - p[b] || a - b);
  const m = order.length;
  let running = 1;
  for (let rank = m; rank >= 1; rank--) {
    const i = order[rank - 1];
    running = Math.min(running, (m * p[i]) / rank);
    q[i] = running;
  }
  return q;
}

/** Whether a q-value (or p-value) is significant at `level`; NaN, null and undefined never are. */
export function significant(q: number | null | undefined, level: number): boolean {
  if (!(level >= 0 && level <= 1)) throw new RangeError(`significance level ${level} is outside [0, 1]`);
  return q != null && !Number.isNaN(q) && q <= level;
}
