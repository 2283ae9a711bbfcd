// A spec's layer and neuron names checked against the model when the plan is made, so `atlas compute --dry-run`
// catches a mistyped layer or an out-of-range channel instead of the build failing after every attack has run.
import { parseChannel } from '../featurevis/neuron-id.ts';
import { findLayer, type Layer } from '../onnx/layers.ts';
import type { ExperimentSpec } from './spec.ts';

/** Throws `<spec>: <field>: <what is wrong>` for the first name the model does not have. */
export function checkSpecNames(spec: ExperimentSpec, layers: readonly Layer[], specPath: string): void {
  const fail = (field: string, message: string) => new Error(`${specPath}: ${field}: ${message}`);
  const layer = (field: string, name: string): Layer => {
    try {
      return findLayer(layers, name);
    } catch (err) {
      throw fail(field, (err as Error).message);
    }
  };
  spec.layers.forEach((name, k) => {
    const l = layer(`layers.${k}`, name);
    if (l.dims.length !== 4 && l.dims.length !== 2) throw fail(`layers.${k}`, `layer '${name}' has output shape [${l.dims.join(',')}]; neuron analyses need channels: [N,C,H,W] or [N,C]`);
  });
  (spec.featurevis?.neurons ?? []).forEach((text, k) => {
    const field = `featurevis.neurons.${k}`;
    const { layer: name, channel } = parseChannel(text);
    const channels = layer(field, name).dims[1] ?? 0;
    if (channel >= channels) throw fail(field, `channel ${channel} of '${name}' is out of range: the layer has channels 0..${channels - 1}`);
  });
}
