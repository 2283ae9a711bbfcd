// An image classifier as the rest of the project sees it: the ONNX graph made differentiable, its model card
// (preprocessing, class list) and the classes by index. Everything takes [0,1] pixels.
import { readFile } from 'node:fs/promises';
import { PROBE_BATCH } from '../runtime/probe.ts';
import type { SessionOptions } from '../runtime/session.ts';
import { DifferentiableModel } from './differentiable-model.ts';
import { loadModelCard, type ImageNetClass, type ModelCard } from './model-card.ts';

/**
 * This module: its import closure is the code behind every number a loaded classifier gives (graph preparation,
 * autodiff, sessions). Steps that run a classifier list it among their code (pipeline/step.ts).
 */
export const CLASSIFIER_CODE = import.meta.filename;

export interface Classifier {
  path: string;
  card: ModelCard;
  classes: readonly ImageNetClass[];
  model: DifferentiableModel;
  /** [C,H,W] of the crop the model sees */
  inputDims: readonly [number, number, number];
  /** resize-shorter-side then centre-crop sizes from the card */
  preprocess: { resize: number; crop: number };
}

/** `cardPath`: a card other than the one beside the model (`mobilenetv2.json` for `mobilenetv2-12-int8.onnx`). */
export async function loadClassifier(onnxPath: string, session: SessionOptions = {}, cardPath?: string): Promise<Classifier> {
  // The model file before its card: a mistyped model path is a missing model, not a missing card.
  let bytes: Uint8Array;
  try {
    bytes = await readFile(onnxPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `model file not found: ${onnxPath}` : code === 'EISDIR' ? `not an ONNX model: ${onnxPath} is a folder` : `cannot read model file: ${onnxPath}`);
  }
  const card = await loadModelCard(onnxPath, cardPath);
  const [, c, h, w] = card.input.shape.map(Number);
  if (![c, h, w].every((d) => Number.isInteger(d) && d > 0)) throw new Error(`model card ${card.cardPath}: input.shape must be [N,C,H,W] with numeric C, H, W`);
  const model = await DifferentiableModel.fromBytes(bytes, {
    name: card.input.name,
    dims: [c, h, w],
    normalization: card.input.range === 'unit' ? undefined : { mean: card.input.mean, std: card.input.std },
    output: card.output.name,
    probabilities: card.output.kind === 'probabilities',
    source: onnxPath,
  }, session);
  const scores = model.prepared.tensors.get(model.prepared.logits)?.dims ?? [];
  if (scores.length !== 2 || scores[0] !== PROBE_BATCH) {
    const shown = scores.map((d, i) => (i === 0 && d === PROBE_BATCH ? 'N' : d));
    throw new Error(`the model's output must be class scores [N, K]: ${onnxPath}'s output '${card.output.name}' is [${shown.join(',')}]`);
  }
  if (model.numClasses !== card.classList.length) {
    throw new Error(`model ${onnxPath} has ${model.numClasses} outputs but its card lists ${card.classList.length} classes`);
  }
  return {
    path: onnxPath,
    card,
    classes: card.classList,
    model,
    inputDims: [c, h, w],
    preprocess: { resize: card.input.resize ?? h, crop: card.input.crop ?? h },
  };
}
