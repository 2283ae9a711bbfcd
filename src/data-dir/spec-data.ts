// What an experiment spec reads from the data directory, as data-directory paths (folders for image sets), so that
// `atlas fetch --spec` fetches only those. A model's card sits beside it (`x.onnx` → `x.json`) unless the spec
// borrows one; the class list a card names comes with the card through the manifest's `needs`.
import type { DeclaredSpec } from '../compute/pipeline/spec.ts';

const card = (modelFile: string) => modelFile.replace(/\.onnx$/i, '') + '.json';

export function specDataPaths(spec: DeclaredSpec): string[] {
  const paths = [spec.model.file, card(spec.model.file), spec.images.folder];
  if (spec.compare) paths.push(spec.compare.file, spec.compare.card ?? card(spec.compare.file));
  for (const attack of Object.values(spec.attacks)) if (attack.folder) paths.push(attack.folder);
  paths.push(...[spec.analysis.reference ?? []].flat());
  return [...new Set(paths)];
}
