// Logits to what a reader sees: probabilities and the top classes with their names.
import type { ImageNetClass } from './model-card.ts';

export interface Prediction {
  class: number;
  name: string;
  probability: number;
}

/** Softmax of one image's logits, in float64 so tiny probabilities stay distinguishable. */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const p = new Float64Array(logits.length);
  let total = 0;
  for (let i = 0; i < logits.length; i++) total += p[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < p.length; i++) p[i] /= total;
  return p;
}

/** Top-k classes of image `n` in logits [N,K]; ties keep the lower class index first. */
export function topK(logits: ArrayLike<number>, n: number, k: number, classes: readonly ImageNetClass[]): Prediction[] {
  const classCount = classes.length;
  const row = Array.from({ length: classCount }, (_, i) => logits[n * classCount + i]);
  const p = softmax(row);
  return [...p.keys()]
    .sort((a, b) => p[b] - p[a] || a - b)
    .slice(0, k)
    .map((c) => ({ class: c, name: classes[c]?.name ?? String(c), probability: p[c] }));
}

export function argmax(logits: ArrayLike<number>, n: number, classCount: number): number {
  let best = 0;
  for (let i = 1; i < classCount; i++) if (logits[n * classCount + i] > logits[n * classCount + best]) best = i;
  return best;
}
