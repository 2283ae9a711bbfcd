// The atlas of neurons' addresses: one page per analysed neuron and one per layer, stable across builds (a layer's
// name and a channel number), so a colleague can be sent a neuron. Every figure that names a neuron links here.
import { BASE } from '../base-url.ts';

export function layerPath(layer: string): string {
  return `${BASE}neurons/${encodeURIComponent(layer)}/`;
}

export function neuronPath(layer: string, channel: number): string {
  return `${layerPath(layer)}${channel}/`;
}
