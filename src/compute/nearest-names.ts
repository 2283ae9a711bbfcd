// "Did you mean": the known names nearest a mistyped one, by edit distance, so a typo deep in a long list is found
// rather than whatever happens to come first.

/** Levenshtein distance: insertions, deletions and substitutions of one character each cost 1. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}

/**
 * Up to `count` names nearest `name`, nearest first (ties in the given order), leaving out those so far that they
 * would not be a typo of it: more edits than half its length.
 */
export function nearestNames(name: string, names: readonly string[], count = 5): string[] {
  const limit = Math.max(2, Math.ceil(name.length / 2));
  return names
    .map((n, i) => ({ n, i, d: editDistance(name.toLowerCase(), n.toLowerCase()) }))
    .filter((x) => x.d <= limit)
    .sort((a, b) => a.d - b.d || a.i - b.i)
    .slice(0, count)
    .map((x) => x.n);
}
