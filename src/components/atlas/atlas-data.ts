// What the atlas of neurons shows, gathered once per build from the computed steps: the atlas step (top photos,
// patches, classes), the polysemantic step (polysemanticity against shuffled labels, histograms), every attack's
// neurons step (fragility against the control, with its interval and q) and the featurevis step. Pages and the
// neuron cards read neurons from here, so a number means the same thing everywhere it appears.
import { ATLAS, FEATUREVIS, POLYSEMANTIC, attackStepId, isComparedStepId } from '../../compute/pipeline/step-ids.ts';
import type { AtlasLayer, AtlasNeuron } from '../../compute/pipeline/outputs/atlas.ts';
import type { z } from 'zod';
import type { NeuronHistogram, PolysemanticGroup as PolysemanticGroupSchema } from '../../compute/pipeline/outputs/analysis.ts';
import { stepData, stepsOfKind } from '../experiment-data.ts';

type PolysemanticGroup = z.infer<typeof PolysemanticGroupSchema>;

export interface AttackOfNeuron {
  id: string;
  /** "trailer truck → weasel", "giant panda, untargeted" */
  what: string;
  n: number;
  /** means over the attack's images of the neuron's spatial mean */
  clean: number;
  adversarial: number;
  control: number;
  /** mean |z_adv| − |z_ctrl|, its bootstrap interval, BH q and verdict; null interval/q: n < 3, descriptive */
  effect: number;
  ci: [number, number] | null;
  q: number | null;
  fragile: boolean;
  fdr: number;
  min_effect: number;
  ci_level: number;
}

export interface NeuronEntry {
  layer: string;
  channel: number;
  atlas: AtlasNeuron;
  histogram: NeuronHistogram;
  featurevis: { image: string; ratio: number; chosen_by: string } | null;
  polysemantic: { score: number | null; q: number | null; polysemantic: boolean; fdr: number; groups: PolysemanticGroup[] };
  attacks: AttackOfNeuron[];
}

export interface LayerEntry {
  layer: string;
  channels: number;
  /** reference photos, and the publishable ones patches come from */
  n: number;
  publishable: number;
  patch_size: number;
  columns: number;
  /** how the neuron labels were tested (atlas step) */
  labels: AtlasLayer['labels'];
  /** sprites are published paths */
  neurons: NeuronEntry[];
}

export interface AtlasData {
  /** reference photos */
  n: number;
  /** the main model's analysed layers, in the spec's order */
  layers: LayerEntry[];
  layer(name: string): LayerEntry;
  neuron(layer: string, channel: number): NeuronEntry;
  /** the attacks analysed, in the spec's order */
  attacks: { id: string; what: string; n: number }[];
  fdr: number;
  /** the spec's `private`: every photo may be shown */
  isPrivate: boolean;
}

let loaded: Promise<AtlasData> | undefined;

export function atlasData(): Promise<AtlasData> {
  return (loaded ??= load());
}

/** "trailer truck → weasel" for a targeted attack, "giant panda, untargeted" otherwise. */
export function describeAttack(summary: { sources: string[]; target: string | null }): string {
  const sources = summary.sources.length ? summary.sources.join(', ') : 'any class';
  return summary.target ? `${sources} → ${summary.target}` : `${sources}, untargeted`;
}

async function load(): Promise<AtlasData> {
  const who = 'atlas of neurons';
  const [atlas, poly, fv] = await Promise.all([stepData('atlas', ATLAS, who), stepData('polysemantic', POLYSEMANTIC, who), stepData('featurevis', FEATUREVIS, who)]);
  if (!atlas || !poly) throw new Error('the atlas of neurons needs the atlas and polysemantic steps: the spec must list layers');
  // A compared model's steps (`<model id>/neurons_…`) name other layers: the atlas describes the main model.
  const analysed = (await stepsOfKind('neurons')).filter((e) => !isComparedStepId(e.id));
  const attacks = await Promise.all(analysed.map(async (e) => {
    const summary = (await stepData('attack', attackStepId(e.data.neurons.attack), who))?.summary;
    return { id: e.data.neurons.attack, what: summary ? describeAttack(summary) : e.data.neurons.attack, data: e.data.neurons };
  }));
  const layers: LayerEntry[] = Object.values(atlas.atlas.layers).map((l: AtlasLayer) => {
    const p = poly.polysemantic.layers[l.layer];
    const hist = poly.histograms[l.layer];
    if (!p || !hist) throw new Error(`${who}: layer '${l.layer}' has no polysemantic analysis`);
    return {
      layer: l.layer, channels: l.channels, n: l.n, publishable: l.publishable, patch_size: l.patch_size, columns: l.columns, labels: l.labels,
      neurons: l.neurons.map((a) => {
        const c = a.channel;
        const image = fv?.featurevis.neurons.find((x) => x.layer === l.layer && x.channel === c);
        return {
          layer: l.layer, channel: c, atlas: a, histogram: hist[c],
          featurevis: image ? { image: image.image, ratio: image.ratio, chosen_by: image.chosen_by } : null,
          polysemantic: { score: p.score[c], q: p.q[c], polysemantic: p.polysemantic[c], fdr: p.fdr, groups: p.ranking.find((r) => r.channel === c)?.groups ?? [] },
          attacks: attacks.flatMap(({ id, what, data }) => {
            const x = data.layers[l.layer];
            if (!x) return [];
            const f = x.fragility;
            return [{
              id, what, n: data.n,
              clean: x.stats.source_clean.mean[c], adversarial: x.stats.source_adversarial.mean[c], control: x.stats.source_control.mean[c],
              effect: f.effect[c], ci: f.ci_low[c] === null || f.ci_high[c] === null ? null : [f.ci_low[c]!, f.ci_high[c]!] as [number, number],
              q: f.q[c], fragile: f.fragile[c], fdr: f.fdr, min_effect: f.min_effect, ci_level: f.ci_level,
            }];
          }),
        };
      }),
    };
  });
  const byName = new Map(layers.map((l) => [l.layer, l]));
  const layer = (name: string) => {
    const l = byName.get(name);
    if (!l) throw new Error(`no neuron analysis for layer '${name}' (analysed: ${[...byName.keys()].join(', ')})`);
    return l;
  };
  return {
    n: poly.polysemantic.n,
    layers,
    layer,
    neuron(name, channel) {
      const entry = layer(name).neurons[channel];
      if (!entry) throw new Error(`layer '${name}' has no channel ${channel} (it has ${layer(name).channels})`);
      return entry;
    },
    attacks: attacks.map(({ id, what, data }) => ({ id, what, n: data.n })),
    fdr: Object.values(poly.polysemantic.layers)[0]?.fdr ?? 0.05,
    isPrivate: atlas.private,
  };
}

/** The neuron's thumbnail: its feature visualization where one was rendered, else its top patch. */
export function thumbnailOf(n: NeuronEntry): { src: string; alt: string } | null {
  if (n.featurevis) return { src: n.featurevis.image, alt: `Feature visualization of ${n.layer}:${n.channel}` };
  if (n.atlas.thumb) return { src: n.atlas.thumb, alt: `Top activating patch of ${n.layer}:${n.channel}, from a ${n.atlas.patches[0].name} photo` };
  return null;
}

/** Largest effect beyond the control over the attacks (the grid's fragility sort key). */
export function strongestEffect(n: NeuronEntry): number {
  return Math.max(...n.attacks.map((a) => a.effect), -Infinity);
}

/** Class names a search for the neuron matches: its top photos' classes, its best classes and its WordNet groups. */
export function searchTerms(n: NeuronEntry): string[] {
  const label = n.atlas.label.labelled && n.atlas.label.name ? [n.atlas.label.name] : [];
  return [...new Set([...label, ...n.atlas.top_images.map((t) => t.name), ...n.atlas.classes.map((c) => c.name), ...n.polysemantic.groups.flatMap((g) => [g.name, ...g.classes])])];
}
