// Neuron labels (analysis/neuron-labels.ts) on planted effects and on null data before they are trusted on real
// activations: a channel that fires for dog photos is labelled "dog", one that fires for cars "car", and channels of
// noise are labelled about as often as the false-discovery level allows.
import { describe, expect, it } from 'vitest';
import classes from '../../shared/models/imagenet-classes.json' with { type: 'json' };
import { candidateConcepts, labelNeurons } from '../src/compute/analysis/neuron-labels.ts';
import { createRng } from '../src/compute/random.ts';

const wnidOf = (k: number) => (classes as { index: number; wnid: string }[])[k].wnid;
// WordNet 3.0: every breed from 151 (Chihuahua) to 190 is a dog (n02084071); these six are cars (n02958343);
// 269–272 are wolves (canines, not dogs), 281–285 cats.
const DOGS = Array.from({ length: 40 }, (_, i) => 151 + i);
const CARS = [407, 436, 468, 511, 609, 817];
const WOLVES = [269, 270, 271, 272];
const CATS = [281, 282, 283, 284, 285];
const OTHER = Array.from({ length: 120 }, (_, i) => 300 + 5 * i).filter((k) => k < 1000 && !CARS.includes(k));
const PER_CLASS = 3;

/** Photos: PER_CLASS of each class, as WordNet ids, and their class groups. */
function photos(): { wnids: string[]; group: ('dog' | 'car' | 'other')[] } {
  const wnids: string[] = [];
  const group: ('dog' | 'car' | 'other')[] = [];
  for (const [list, g] of [[DOGS, 'dog'], [CARS, 'car'], [WOLVES, 'other'], [CATS, 'other'], [OTHER, 'other']] as const) {
    for (const k of list) for (let r = 0; r < PER_CLASS; r++) { wnids.push(wnidOf(k)); group.push(g); }
  }
  return { wnids, group };
}

describe('neuron labels', () => {
  it('names a planted dog channel "dog" and a car channel "car", and leaves a noise channel unlabelled', () => {
    const { wnids, group } = photos();
    const n = wnids.length;
    const rng = createRng(1);
    const channels = 3;
    const values = new Float32Array(n * channels);
    for (let i = 0; i < n; i++) {
      values[i * channels + 0] = (group[i] === 'dog' ? 1 : 0) + 0.5 * rng.normal();
      values[i * channels + 1] = (group[i] === 'car' ? 1.5 : 0) + 0.5 * rng.normal();
      values[i * channels + 2] = rng.normal();
    }
    const r = labelNeurons({ values, channels, photoWnids: wnids, rng: createRng(2), permutations: 199 });
    expect([r.labels[0].wnid, r.labels[0].name, r.labels[0].n]).toEqual(['n02084071', 'dog', DOGS.length * PER_CLASS]);
    expect(r.labels[0].labelled).toBe(true);
    expect(r.labels[0].auroc).toBeGreaterThan(0.85);
    expect(r.labels[1].wnid).toBe('n02958343');
    expect(r.labels[1].labelled).toBe(true);
    expect(r.labels[2].labelled).toBe(false);
    expect(r.labels[2].p).toBeGreaterThan(0.05);
  });

  it('labels noise channels about as rarely as the FDR level allows, with p-values near uniform', () => {
    const { wnids } = photos();
    const n = wnids.length;
    const channels = 40;
    let labelled = 0;
    const ps: number[] = [];
    for (const seed of [3, 4, 5]) {
      const rng = createRng(seed);
      const values = Float32Array.from({ length: n * channels }, () => rng.normal());
      const r = labelNeurons({ values, channels, photoWnids: wnids, rng: createRng(seed + 100), permutations: 199 });
      labelled += r.labels.filter((l) => l.labelled).length;
      ps.push(...r.labels.map((l) => l.p));
    }
    // Under the global null BH keeps the chance of any label per layer at 5 %: over 3 layers of 40, 0 expected.
    expect(labelled).toBeLessThanOrEqual(2);
    const mean = ps.reduce((a, b) => a + b, 0) / ps.length;
    expect(mean).toBeGreaterThan(0.35);
    expect(mean).toBeLessThan(0.65);
  });

  it('shuffles within sources: a channel that fires for one source is not labelled with the classes that source holds', () => {
    const { wnids, group } = photos();
    const n = wnids.length;
    // Source 1: every dog photo and the first 60 others; source 0: the rest. The channel reads the source only.
    let others = 0;
    const strata = Int32Array.from(group, (g) => (g === 'dog' || (g === 'other' && others++ < 60) ? 1 : 0));
    const rng = createRng(11);
    const values = Float32Array.from({ length: n }, (_, i) => strata[i] + 0.5 * rng.normal());
    const pooled = labelNeurons({ values, channels: 1, photoWnids: wnids, rng: createRng(12), permutations: 199 });
    const stratified = labelNeurons({ values, channels: 1, photoWnids: wnids, rng: createRng(12), permutations: 199, strata });
    // Without strata the source looks like a detector of dogs (or a synset holding them).
    expect(pooled.labels[0].labelled).toBe(true);
    expect(stratified.labels[0].labelled).toBe(false);
  });

  it('prefers a well-separated synset to the largest one: a dog channel is "dog", not "animal" or "organism"', () => {
    const { wnids, group } = photos();
    const n = wnids.length;
    const rng = createRng(13);
    // Dogs high, every other animal (wolves, cats and the animal classes among the others) between dogs and objects:
    // "animal" then has the larger z (more photos at a slightly lower AUROC), "dog" the larger lower bound.
    const animal = (w: string) => w < 'n02700000';
    const values = Float32Array.from({ length: n }, (_, i) => (group[i] === 'dog' ? 2 : animal(wnids[i]) ? 0.8 : 0) + 0.5 * rng.normal());
    const r = labelNeurons({ values, channels: 1, photoWnids: wnids, rng: createRng(14), permutations: 99 });
    expect(r.labels[0].name).toBe('dog');
  });

  it('candidates are synsets with enough photos inside and outside, never the root', () => {
    const { wnids } = photos();
    const { concepts, ofPhoto } = candidateConcepts(wnids, 5);
    const names = concepts.map((c) => c.name);
    expect(names).toContain('dog');
    expect(names).toContain('canine');
    expect(names).not.toContain('entity');
    for (const c of concepts) expect(c.n >= 5 && wnids.length - c.n >= 5).toBe(true);
    // A dog photo is in "dog" and "canine"; a single-class synset with 3 photos is not a candidate.
    expect(concepts.find((c) => c.wnid === wnidOf(151))).toBeUndefined();
    const dogIndex = concepts.findIndex((c) => c.wnid === 'n02084071');
    expect([...ofPhoto[0]]).toContain(dogIndex);
  });

  it('is reproducible from its seed', () => {
    const { wnids } = photos();
    const rng = createRng(7);
    const values = Float32Array.from({ length: wnids.length * 4 }, () => rng.normal());
    const a = labelNeurons({ values, channels: 4, photoWnids: wnids, rng: createRng(8), permutations: 99 });
    const b = labelNeurons({ values, channels: 4, photoWnids: wnids, rng: createRng(8), permutations: 99 });
    expect(b).toEqual(a);
  });
});
