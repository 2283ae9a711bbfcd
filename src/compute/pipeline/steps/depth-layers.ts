// The layers the `depth:` pattern names in the analysed model: its own matches, or for a compared model the main
// model's matches found in it (analysis/layer-alignment.ts), so both models' depth curves share one x axis. The
// `activations` step asks when it is planned, hands the layers to its shards, which take their means in the pass over
// the reference set, and writes them with σ and the alignment into activations.json, which the `depth` step reads.
// The alignment runs probe photos through both models; it is kept for the process.
import { alignLayers, type AlignedLayer } from '../../analysis/layer-alignment.ts';
import { loadImage } from '../../io/image.ts';
import type { Classifier } from '../../model/classifier.ts';
import { matchLayers } from '../../onnx/layer-patterns.ts';
import type { LabelledImage } from '../data.ts';
import type { ExperimentSpec } from '../spec.ts';

/** Reference photos the layers of a compared model are aligned on. */
export const ALIGNMENT_PROBE = 16;

/** A compared model's analyses run through the main model's layers. */
export interface AlignTo {
  classifier: () => Promise<Classifier>;
  /** what identifies the main model in cache keys */
  model: unknown;
}

export interface DepthLayers {
  /** the analysed model's layers, in the main model's order */
  layers: string[];
  /** for a compared model: each main-model layer and its counterpart here (`to: null` when none was found) */
  aligned: AlignedLayer[] | null;
}

/** What the steps that use depthLayers put in their cache keys beside the pattern. */
export function alignmentParams(alignTo: AlignTo | undefined): Record<string, unknown> {
  return alignTo ? { aligned_to: alignTo.model, probe: ALIGNMENT_PROBE } : {};
}

const alignments = new WeakMap<Classifier, Map<string, Promise<AlignedLayer[]>>>();

export async function depthLayers(
  classifier: Classifier,
  spec: Pick<ExperimentSpec, 'depth' | 'model'>,
  reference: readonly LabelledImage[],
  alignTo?: AlignTo,
  progress?: (message: string) => void,
): Promise<DepthLayers> {
  const pattern = spec.depth;
  if (!pattern) return { layers: [], aligned: null };
  if (!alignTo) return { layers: matchLayers(classifier.model.layers, pattern, spec.model.file), aligned: null };
  const main = await alignTo.classifier();
  const probe = reference.slice(0, ALIGNMENT_PROBE);
  const key = JSON.stringify({ pattern, probe: probe.map((im) => im.path) });
  const memo = alignments.get(classifier) ?? new Map<string, Promise<AlignedLayer[]>>();
  alignments.set(classifier, memo);
  let aligned = memo.get(key);
  if (!aligned) {
    progress?.(`aligning layers on ${probe.length} reference photos`);
    aligned = (async () => alignLayers(main, classifier, {
      layers: matchLayers(main.model.layers, pattern, spec.model.file),
      probe: {
        first: await Promise.all(probe.map((im) => loadImage(im.path, main.preprocess))),
        second: await Promise.all(probe.map((im) => loadImage(im.path, classifier.preprocess))),
      },
    }))();
    memo.set(key, aligned);
    aligned.catch(() => memo.delete(key));
  }
  const found = await aligned;
  return { layers: found.flatMap((l) => (l.to === null ? [] : [l.to])), aligned: found };
}
