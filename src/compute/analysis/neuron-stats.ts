// Per-neuron statistics of spatial-mean activations over groups of images (a class, a WordNet group, a condition):
// mean, median and max, always with the group's n, and the top fraction of neurons by mean.

export interface GroupStats {
  n: number;
  /** [C] */
  mean: Float64Array;
  median: Float64Array;
  max: Float64Array;
}

/** Stats over the rows `rows` of activations [N,C]. */
export function groupStats(values: ArrayLike<number>, channels: number, rows: readonly number[]): GroupStats {
  const n = rows.length;
  const mean = new Float64Array(channels);
  const median = new Float64Array(channels);
  const max = new Float64Array(channels).fill(n ? -Infinity : NaN);
  const column = new Float64Array(n);
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    rows.forEach((r, i) => {
      const v = values[r * channels + c];
      column[i] = v;
      sum += v;
      if (v > max[c]) max[c] = v;
    });
    mean[c] = n ? sum / n : NaN;
    median[c] = n ? medianOf(column) : NaN;
  }
  return { n, mean, median, max };
}

function medianOf(a: Float64Array): number {
  const s = Float64Array.from(a).sort();
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The top `fraction` of channels by score (at least one), highest first; ties by lower index. */
export function topChannels(score: ArrayLike<number>, fraction: number): number[] {
  const k = Math.max(1, Math.round(score.length * fraction));
  return Array.from({ length: score.length }, (_, c) => c)
    .sort((a, b) => score[b] - score[a] || a - b)
    .slice(0, k);
}

/** Mean and (population) standard deviation of each channel over all rows of [N,C]. */
export function channelSpread(values: ArrayLike<number>, channels: number): { mean: Float64Array; std: Float64Array } {
  const n = values.length / channels;
  const mean = new Float64Array(channels);
  const std = new Float64Array(channels);
  for (let i = 0; i < n; i++) for (let c = 0; c < channels; c++) mean[c] += values[i * channels + c] / n;
  for (let i = 0; i < n; i++) for (let c = 0; c < channels; c++) std[c] += (values[i * channels + c] - mean[c]) ** 2 / n;
  for (let c = 0; c < channels; c++) std[c] = Math.sqrt(std[c]);
  return { mean, std };
}
