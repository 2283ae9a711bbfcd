// The CLI's way to load a model on the provider the user asked for: notices (fallbacks, what `auto` picked, ops the
// provider leaves to the CPU) go to stderr, one line each, so stdout stays machine-readable.
import { loadClassifier, type Classifier } from '../compute/model/classifier.ts';
import { chooseProvider, loadOncePerProvider, placementNotice } from '../compute/model/provider-choice.ts';
import type { ProviderChoice } from '../compute/runtime/execution-provider.ts';
import type { ProgramSpec } from '../compute/runtime/program.ts';
import { providerChoice } from '../config.ts';

/**
 * `flag`: the --ep the user gave, if any (else ATLAS_EP, else cpu). `program`: what the command will run, for the
 * placement notice (default: the attack gradient).
 */
export async function loadClassifierOn(model: string, flag?: ProviderChoice, program?: (c: Classifier) => ProgramSpec): Promise<Classifier> {
  const choice = providerChoice(flag);
  const load = loadOncePerProvider((ep) => loadClassifier(model, { ep }));
  const resolved = await chooseProvider(choice, load);
  for (const line of resolved.notices) process.stderr.write(`atlas: ${line}\n`);
  const classifier = await load(resolved.ep);
  const note = await placementNotice(classifier, program && (() => program(classifier)));
  if (note) process.stderr.write(`atlas: ${note}\n`);
  return classifier;
}
