// Dataset-wide activation histograms per neuron, as log densities (the study's view: activations are heavy-tailed,
// so a linear density hides everything but the spike at zero).

export interface NeuronHistogram {
  channel: number;
  /** bins+1 edges */
  edges: number[];
  counts: number[];
  /** log10 of the density (count / (n · width)); null for empty bins */
  log_density: (number | null)[];
}

export function neuronHistograms(values: ArrayLike<number>, channels: number, bins = 32): NeuronHistogram[] {
  const n = values.length / channels;
  const out: NeuronHistogram[] = [];
  for (let c = 0; c < channels; c++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = values[i * channels + c];
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    if (hi === lo) hi = lo + 1;
    const width = (hi - lo) / bins;
    const counts = new Array<number>(bins).fill(0);
    for (let i = 0; i < n; i++) counts[Math.min(bins - 1, Math.floor((values[i * channels + c] - lo) / width))]++;
    out.push({
      channel: c,
      edges: Array.from({ length: bins + 1 }, (_, k) => lo + k * width),
      counts,
      log_density: counts.map((k) => (k > 0 ? Math.log10(k / (n * width)) : null)),
    });
  }
  return out;
}
