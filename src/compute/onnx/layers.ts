// The layer inventory: every node output a user may analyse, under a human name. Exporters that keep module paths
// as node names (`layer3.2.conv3`, `features.14.conv.1`) give the best names; otherwise the weight initializer's
// name (`layer1.0.conv1.weight` → `layer1.0.conv1`), then op + index.
import { nearestNames } from '../nearest-names.ts';
import type { Graph } from './graph.ts';
import { DType, type NodeProto } from './proto.ts';

export interface Layer {
  /** the name users write (`layer3.2.conv3`) */
  name: string;
  /** the tensor in the graph */
  tensor: string;
  op: string;
  /** output dims, batch first (as probed) */
  dims: number[];
}

const MODULE_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$/;
const INTERNAL = /^(normalize|grad|objective)\//;

export function layerInventory(graph: Graph, info: (tensor: string) => { dims: number[]; elemType: number } | undefined): Layer[] {
  const layers: Layer[] = [];
  const used = new Set<string>();
  graph.nodes.forEach((node, index) => {
    if (INTERNAL.test(node.name ?? '')) return;
    const base = humanName(graph, node, index);
    (node.output ?? []).forEach((tensor, k) => {
      const t = tensor ? info(tensor) : undefined;
      if (!t || (t.elemType !== DType.FLOAT && t.elemType !== DType.DOUBLE)) return;
      let name = k === 0 ? base : `${base}:${k}`;
      for (let n = 2; used.has(name); n++) name = `${k === 0 ? base : `${base}:${k}`}#${n}`;
      used.add(name);
      layers.push({ name, tensor, op: node.opType ?? '', dims: t.dims });
    });
  });
  return layers;
}

function humanName(graph: Graph, node: NodeProto, index: number): string {
  if (node.name && MODULE_PATH.test(node.name)) return node.name;
  const weight = (node.input ?? []).slice(1).find((i) => graph.initializers.has(i) && /\.weight$/.test(i));
  if (weight) return weight.replace(/\.weight$/, '');
  return `${node.opType}_${index}`;
}

/** Find a layer by its human name or its tensor name; a helpful error otherwise. */
export function findLayer(layers: readonly Layer[], name: string): Layer {
  const hit = layers.find((l) => l.name === name) ?? layers.find((l) => l.tensor === name);
  if (hit) return hit;
  const near = nearestNames(name, layers.map((l) => l.name));
  throw new Error(`no layer named '${name}'${near.length ? ` (did you mean: ${near.join(', ')})` : ''}; run \`atlas inspect <model>\` for the list`);
}
