// A spec's steps as one data directory makes them: the model found and hashed, the images listed and hashed, each
// step with its params. `runPipeline` plans and runs them; a queue worker (src/compute/queue/worker.ts) builds the
// same steps from the spec a job carries, so its keys say whether its data directory and code match the coordinator's.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { hashFile, sha256 } from '../cache/hash.ts';
import { loadClassifier, type Classifier } from '../model/classifier.ts';
import { loadModelCard } from '../model/model-card.ts';
import { chooseProvider, loadOncePerProvider, placementNotice } from '../model/provider-choice.ts';
import type { ProviderChoice } from '../runtime/execution-provider.ts';
import { providerChoice } from '../../config.ts';
import type { ExecutionProvider, SessionOptions } from '../runtime/session.ts';
import { ensureModel, loadImageSet, type LabelledImage } from './data.ts';
import { resolveSpecLayers } from './resolve-layers.ts';
import type { DeclaredSpec, ExperimentSpec } from './spec.ts';
import type { Step } from './step.ts';
import { analysisSteps } from './steps/analysis.ts';
import { attackSteps } from './steps/attack.ts';
import { comparisonSteps, pixelsOf } from './steps/comparison.ts';
import { featurevisSteps } from './steps/featurevis.ts';

export interface BuildStepsOptions {
  /** as written: its layers are resolved against the model here (resolve-layers.ts) */
  spec: DeclaredSpec;
  /** absolute: spec paths are relative to it */
  dataDir: string;
  session?: SessionOptions;
  /** execution provider: cpu, webgpu, cuda or auto; default ATLAS_EP, else cpu */
  provider?: ProviderChoice;
  log?: (line: string) => void;
}

export interface BuiltSteps {
  steps: Step[];
  /** the spec with every layer a name of the model, as the steps read it */
  spec: ExperimentSpec;
  /** why the spec's compare: block was left out (written for another model), or null */
  compareSkipped: string | null;
  /** the main model, loaded on first call */
  classifier: () => Promise<Classifier>;
  /** the main model as figures name it, and its card's `task` */
  model: { label: string; task: string | null };
  /** the model file in the data directory, and its sha256 (also in every key) */
  modelFile: { path: string; sha256: string };
}

export async function pipelineSteps(opts: BuildStepsOptions): Promise<BuiltSteps> {
  const { dataDir } = opts;
  const log = opts.log ?? (() => {});
  const modelFile = await ensureModel(opts.spec, dataDir, log);
  const card = await loadModelCard(modelFile);
  const cardText = await readFile(card.cardPath, 'utf8');
  const load = loadOncePerProvider((ep) => loadClassifier(modelFile, { ...opts.session, ep }));
  const session = { ...opts.session, ep: await resolveProvider(opts.provider ?? opts.session?.ep, load, log) };
  let classifier: Promise<Classifier> | undefined;
  const loadMain = () => (classifier ??= load(session.ep).then(async (c) => {
    const note = await placementNotice(c);
    if (note) log(note);
    return c;
  }));
  const { spec, compareSkipped } = await resolveSpecLayers(opts.spec, opts.spec.model.file, async () => (await loadMain()).model.layers);
  if (compareSkipped) log(`no second model: ${compareSkipped}`);
  const folders = new Map<string, Promise<LabelledImage[]>>();
  const modelSha256 = await hashFile(modelFile);
  const env = {
    spec,
    classifier: loadMain,
    // The provider is part of every key: a GPU's float32 sums differ from the CPU's in the last bits.
    model: { sha256: modelSha256, card: sha256(cardText + JSON.stringify(card.classList)), ep: session.ep },
    classes: card.classList,
    images: Object.keys(spec.attacks).length > 0 ? await loadImageSet(spec.images.folder, spec.images.labels, dataDir) : [],
    imagesOf: (folder: string) => {
      let set = folders.get(folder);
      if (!set) folders.set(folder, (set = loadImageSet(folder, spec.images.labels, dataDir)));
      return set;
    },
  };
  const modelLabel = spec.model.label ?? card.id ?? path.basename(spec.model.file, '.onnx');
  const referenceFolders = [spec.analysis.reference ?? spec.images.folder].flat();
  let reference = spec.layers.length > 0 || spec.featurevis
    ? (await Promise.all(referenceFolders.map((f) => env.imagesOf(f)))).flat()
    : [];
  if (spec.analysis.max_reference_images) reference = reference.slice(0, spec.analysis.max_reference_images);
  const steps: Step[] = [
    ...await attackSteps(env),
    ...await analysisSteps({ ...env, reference, dataDir }),
    ...await featurevisSteps({ ...env, reference }),
    ...await comparisonSteps({
      ...env, reference, dataDir, session,
      main: { label: modelLabel, pixels: pixelsOf(card.input.shape) },
      log,
    }),
  ];
  return { steps, spec, compareSkipped, classifier: loadMain, model: { label: modelLabel, task: card.task ?? null }, modelFile: { path: modelFile, sha256: modelSha256 } };
}

/** The provider the steps compute on: where the user asked, or on the CPU with a notice. */
async function resolveProvider(asked: ProviderChoice | undefined, load: (ep: ExecutionProvider) => Promise<Classifier>, log: (line: string) => void): Promise<ExecutionProvider> {
  const choice = providerChoice(asked);
  if (choice === 'cpu') return 'cpu';
  const resolved = await chooseProvider(choice, load);
  for (const line of resolved.notices) log(line);
  return resolved.ep;
}
