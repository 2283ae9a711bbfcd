// Everything a neuron card shows, gathered from the computed steps: its feature visualization (featurevis step),
// the classes and patches it fires for and its dataset histogram (polysemantic step), and how each attack moved it
// (neurons_<attack> steps).
import { ATLAS, FEATUREVIS, POLYSEMANTIC, attackStepId, isComparedStepId } from '../../compute/pipeline/step-ids.ts';
import { describeAttack } from '../atlas/atlas-data.ts';
import { stepData, stepsOfKind } from '../experiment-data.ts';

export interface NeuronCard {
  layer: string;
  channel: number;
  featurevis: { image: string; ratio: number } | null;
  /** dataset-wide histogram of the spatial-mean activation */
  histogram: { edges: number[]; counts: number[]; n: number };
  /** the reference photos it fires most for */
  top: { name: string; activation: number }[];
  /** only for a neuron the polysemantic step calls polysemantic (q ≤ fdr against shuffled labels) */
  polysemantic: { score: number; q: number; fdr: number; groups: string[] } | null;
  /** only for a neuron whose best WordNet synset beats shuffled labels (q ≤ fdr; atlas step) */
  label: { name: string; auroc: number; n: number; q: number; fdr: number } | null;
  patches: { image: string; name: string }[];
  attacks: { id: string; what: string; n: number; clean: number; adversarial: number; target: number | null; score: number }[];
}

export interface CardSource {
  layers: string[];
  channels: Record<string, number>;
  card(layer: string, channel: number): NeuronCard;
}

let source: Promise<CardSource> | undefined;

/** Read the steps once per build. */
export function cardSource(): Promise<CardSource> {
  return (source ??= load());
}

async function load(): Promise<CardSource> {
  const who = 'neuron cards';
  const poly = await stepData('polysemantic', POLYSEMANTIC, who);
  if (!poly) throw new Error('neuron cards need the polysemantic step: the spec must list layers');
  const fv = (await stepData('featurevis', FEATUREVIS, who))?.featurevis.neurons ?? [];
  const atlasLayers = (await stepData('atlas', ATLAS, who))?.atlas.layers ?? {};
  // A compared model's steps (`<model id>/neurons_…`) name other layers: cards describe the main model.
  const analysed = (await stepsOfKind('neurons')).filter((e) => !isComparedStepId(e.id));
  const attacks = await Promise.all(analysed.map(async (e) => {
    const attackId = e.data.neurons.attack;
    const summary = (await stepData('attack', attackStepId(attackId), who))?.summary;
    const what = summary ? describeAttack(summary) : attackId;
    return { id: attackId, what, data: e.data.neurons };
  }));
  const layers = Object.keys(poly.histograms);
  const channels = Object.fromEntries(layers.map((l) => [l, poly.histograms[l].length]));
  return {
    layers,
    channels,
    card(layer, channel) {
      if (!layers.includes(layer)) throw new Error(`no neuron analysis for layer '${layer}' (analysed: ${layers.join(', ')})`);
      const hist = poly.histograms[layer][channel];
      if (!hist) throw new Error(`layer '${layer}' has no channel ${channel}`);
      const analysed = poly.polysemantic.layers[layer];
      const rank = analysed.ranking.find((r) => r.channel === channel && r.polysemantic);
      const patches = poly.polysemantic.layers[layer].patches.find((p) => p.channel === channel)?.patches ?? [];
      const image = fv.find((n) => n.layer === layer && n.channel === channel);
      return {
        layer,
        channel,
        featurevis: image ? { image: image.image, ratio: image.ratio } : null,
        histogram: { edges: hist.edges, counts: hist.counts, n: poly.polysemantic.n },
        top: (poly.top_images[layer]?.[channel] ?? []).map((t) => ({ name: t.name, activation: t.activation })),
        polysemantic: rank ? { score: rank.score, q: rank.q, fdr: analysed.fdr, groups: rank.groups.map((g) => g.name) } : null,
        label: labelOf(atlasLayers[layer], channel),
        patches: patches.map((p) => ({ image: p.file, name: p.name })),
        attacks: attacks.map(({ id, what, data }) => {
          const l = data.layers[layer];
          return {
            id, what, n: data.n,
            clean: l.stats.source_clean.mean[channel],
            adversarial: l.stats.source_adversarial.mean[channel],
            target: l.stats.target_clean ? l.stats.target_clean.mean[channel] : null,
            score: l.fragility.scores[channel],
          };
        }),
      };
    },
  };
}

function labelOf(layer: { labels: { fdr: number }; neurons: { label: { labelled: boolean; name: string | null; auroc: number; n: number; q: number } }[] } | undefined, channel: number): NeuronCard['label'] {
  const l = layer?.neurons[channel]?.label;
  return l && l.labelled && l.name ? { name: l.name, auroc: l.auroc, n: l.n, q: l.q, fdr: layer!.labels.fdr } : null;
}
