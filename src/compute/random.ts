// Every random draw in the project comes from here, seeded from the experiment spec (pure-rand's xoroshiro128+), so
// the same spec gives byte-identical outputs on any machine. Streams are forked by label so adding a consumer never
// shifts the draws of another.
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

export interface Rng {
  /** uniform in [0,1) with 53 random bits */
  uniform(): number;
  /** uniform integer in [lo, hi] */
  uniformInt(lo: number, hi: number): number;
  /** standard normal (Box–Muller) */
  normal(): number;
  /** an independent stream, determined by this stream's seed and the label */
  fork(label: string): Rng;
}

export function createRng(seed: number): Rng {
  if (!Number.isInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
  const g = xoroshiro128plus(seed | 0);
  let spare: number | undefined;
  const rng: Rng = {
    uniform: () => uniformFloat64(g),
    uniformInt: (lo, hi) => lo + Math.floor(uniformFloat64(g) * (hi - lo + 1)),
    normal() {
      if (spare !== undefined) {
        const s = spare;
        spare = undefined;
        return s;
      }
      const u = 1 - uniformFloat64(g); // (0,1]: log(0) never happens
      const v = uniformFloat64(g);
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v);
    },
    fork: (label) => createRng(hash32(`${seed}:${label}`)),
  };
  return rng;
}

/** FNV-1a: a stable 32-bit hash of a label, to derive seeds. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}
