// A spec's layers as the model names them. The spec may be written for several architectures at once — roles that
// list each one's layer, `layers` as globs, `all` or `@role`, a compare: block tied to the model it was written for —
// so that switching `model:` is the only edit; this turns it into the plain names every step reads, and checks them
// against the model when the plan is made rather than after the attacks have run.
import path from 'node:path';
import { matchLayers } from '../onnx/layer-patterns.ts';
import type { Layer } from '../onnx/layers.ts';
import { isResolved, layerReferenceIssues, type DeclaredSpec, type ExperimentSpec } from './spec.ts';

export interface ResolvedSpec {
  spec: ExperimentSpec;
  /** why the spec's compare: block was left out of this build, or null when it was not */
  compareSkipped: string | null;
}

/**
 * `spec` with every layer a name of `model` (`modelName` in messages). `layers` is read only when the spec needs it
 * (it costs a model load), so a spec of plain names resolves without one.
 */
export async function resolveSpecLayers(spec: DeclaredSpec, modelName: string, layers: () => Promise<readonly Layer[]>): Promise<ResolvedSpec> {
  const { compare, compareSkipped } = compareFor(spec);
  const declared: DeclaredSpec = { ...spec, compare };
  if (isResolved(declared)) return { spec: declared, compareSkipped };
  const inventory = await layers();
  const names = new Set(inventory.map((l) => l.name));
  const fail = (where: string, message: string): never => { throw new Error(`spec ${where}: ${message}`); };

  const roles = Object.fromEntries(Object.entries(spec.roles).map(([role, candidates]) => {
    const list = [candidates].flat();
    const found = list.find((l) => names.has(l));
    if (found === undefined) {
      fail(`roles.${role}`, `${modelName} has ${list.length > 1 ? 'none of' : 'no layer'} ${list.join(', ')} (\`atlas inspect ${modelName}\` lists its layers)`);
    }
    return [role, found!];
  }));
  const roleLayer = (name: string, where: string): string => {
    if (!name.startsWith('@')) return name;
    const layer = roles[name.slice(1)];
    return layer ?? fail(where, `no role '${name.slice(1)}' in the spec's roles (${Object.keys(roles).join(', ') || 'none'})`);
  };

  const analysed: string[] = [];
  spec.layers.forEach((entry, k) => {
    const found = entry === 'all' || entry.includes('*') ? matchLayers(inventory, entry === 'all' ? 'all' : [entry], modelName) : [roleLayer(entry, `layers.${k}`)];
    for (const l of found) if (!analysed.includes(l)) analysed.push(l);
  });

  const fv = spec.featurevis;
  const resolved: ExperimentSpec = {
    ...declared,
    layers: analysed,
    roles,
    patching: spec.patching.map((p, k) => ({ ...p, layer: roleLayer(p.layer, `patching.${k}.layer`) })),
    featurevis: fv && {
      ...fv,
      neurons: fv.neurons.map((n, k) => {
        const at = n.lastIndexOf(':');
        return `${roleLayer(n.slice(0, at), `featurevis.neurons.${k}`)}${n.slice(at)}`;
      }),
      choose: fv.choose.map((c, k) => ({ ...c, layer: roleLayer(c.layer, `featurevis.choose.${k}.layer`) })),
    },
    compare: compare && {
      ...compare,
      layers: Object.fromEntries(Object.entries(compare.layers).map(([from, to]) => [roleLayer(from, 'compare.layers'), to])),
    },
  };
  const issue = layerReferenceIssues(resolved)[0];
  if (issue) fail(issue.path.join('.'), issue.message);
  return { spec: resolved, compareSkipped };
}

/** The spec's compare: block if it was written for this spec's model (or for any), else none and the reason. */
function compareFor(spec: DeclaredSpec): { compare: DeclaredSpec['compare']; compareSkipped: string | null } {
  const compare = spec.compare;
  if (!compare?.for_model) return { compare, compareSkipped: null };
  const same = path.posix.normalize(compare.for_model) === path.posix.normalize(spec.model.file);
  return same
    ? { compare, compareSkipped: null }
    : { compare: undefined, compareSkipped: `the spec's compare: block is written for ${compare.for_model}, not for ${spec.model.file}` };
}
