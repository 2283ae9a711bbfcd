// A program is the model compiled for one question: forward outputs, chosen activations and, when an objective is
// given, d(objective)/d(pixels) — all from one onnxruntime session, in one run. Everything not needed for the
// requested outputs is pruned, so a channel objective in layer3 never computes layer4. A loop that steps on the device
// (PGD, feature visualization) adds its step through a graph extension (graph-extension.ts); this module knows no loop.
import { backprop } from '../autodiff/backprop.ts';
import { foldChannelScales } from '../autodiff/fold-channel-scales.ts';
import { buildObjective, usesLabels, type Objective } from '../autodiff/objectives.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { Graph } from '../onnx/graph.ts';
import { findLayer, type Layer } from '../onnx/layers.ts';
import { PIXELS } from '../onnx/normalize.ts';
import { DType, type NodeProto } from '../onnx/proto.ts';
import type { GraphExtension } from './graph-extension.ts';
import type { TensorInfo } from './probe.ts';
import { createSession, ort, providerLimits, type ExecutionProvider, type SessionOptions } from './session.ts';

export interface ProgramSpec {
  objective?: Objective;
  /** layer names (or tensor names) whose activations to return */
  activations?: readonly string[];
  /**
   * layer names whose per-channel spatial means [N,C] to return, averaged in the graph (GlobalAveragePool): a few
   * numbers per image leave onnxruntime instead of the whole maps
   */
  means?: readonly string[];
  /** return the logits (default true unless an objective makes them unnecessary and `logits: false`) */
  logits?: boolean;
  /**
   * with an objective: false returns its value without d(objective)/d(pixels) — no backward nodes, a forward pass's
   * cost (an attack's evaluations before and after, which read only the loss and the logits)
   */
  gradient?: boolean;
  /**
   * A whole loop step around the gradient (a PGD update, a feature-visualization render): the extension adds its
   * inputs, nodes and state outputs, and the gradient itself is no longer an output (graph-extension.ts).
   */
  extension?: GraphExtension;
}

/** The key programs are compiled once per: the spec, with an extension standing for its key. */
export function programKey(spec: ProgramSpec): string {
  return JSON.stringify({ ...spec, extension: spec.extension?.key });
}

export interface PreparedModel {
  /** the normalized, opset-lifted model with `pixels` [N,C,H,W] in [0,1] as its input */
  bytes: Uint8Array;
  logits: string;
  tensors: ReadonlyMap<string, TensorInfo>;
  layers: readonly Layer[];
  floatType: number;
  /** [C,H,W] of the pixels input */
  inputDims: readonly [number, number, number];
}

export type FloatArray = Float32Array | Float64Array;

export interface ProgramResult {
  logits?: FloatArray; // [N,K]
  objective?: FloatArray; // [N]
  grad?: FloatArray; // [N,C,H,W]
  activations: Map<string, { data: FloatArray; dims: number[] }>;
  /** the `means` layers' spatial means [N,C] */
  means: Map<string, { data: FloatArray; dims: [number, number] }>;
}

export const LABELS = 'labels';
const OBJECTIVE = 'objective';

export class Program {
  readonly session: ort.InferenceSession;
  readonly spec: ProgramSpec;
  private readonly model: PreparedModel;
  /** `state`: the extension's device-resident outputs, output name → the input it feeds on the next step */
  readonly outputs: { logits?: string; objective?: string; grad?: string; state: Readonly<Record<string, string>>; activations: [string, string][]; means: [string, string][] };
  readonly needsLabels: boolean;
  /** run-time objective inputs (`direction`/`map` terms): name → dims after the batch */
  readonly inputs: ReadonlyMap<string, number[]>;

  private constructor(session: ort.InferenceSession, model: PreparedModel, spec: ProgramSpec, outputs: Program['outputs'], needsLabels: boolean, inputs: ReadonlyMap<string, number[]>) {
    this.session = session;
    this.model = model;
    this.spec = spec;
    this.outputs = outputs;
    this.needsLabels = needsLabels;
    this.inputs = inputs;
  }

  static async compile(model: PreparedModel, spec: ProgramSpec, opts: SessionOptions = {}): Promise<Program> {
    const { bytes, outputs, needsLabels, inputs, nodes } = buildProgramGraph(model, spec, opts.ep);
    const cpuNodes = providerLimits(nodes, opts.ep ?? 'cpu').map((n) => n.node);
    // A loop feeds these back in; everything else (loss, logits, objective) is small and read on the host.
    const deviceOutputs = Object.keys(outputs.state);
    const session = await createSession(bytes, { ...opts, deviceOutputs, cpuNodes });
    return new Program(session, model, spec, outputs, needsLabels, inputs);
  }

  /** pixels: [N,C,H,W] in [0,1]; labels: [N] class per image when the objective reads labels. */
  async run(pixels: FloatArray, labels?: ArrayLike<number>, extra: Readonly<Record<string, FloatArray>> = {}): Promise<ProgramResult> {
    const [c, h, w] = this.model.inputDims;
    const per = c * h * w;
    if (pixels.length === 0 || pixels.length % per !== 0) {
      throw new Error(`pixels has ${pixels.length} values, not a multiple of ${c}×${h}×${w}`);
    }
    if (this.spec.extension) throw new Error('internal: a program with a graph extension runs through runTensors and nextState');
    const n = pixels.length / per;
    const feeds: Record<string, ort.Tensor> = { [PIXELS]: floatTensor(this.model.floatType, pixels, [n, c, h, w]) };
    if (this.needsLabels) {
      if (!labels || labels.length !== n) throw new Error(`this objective needs one label per image (${n}), got ${labels?.length ?? 0}`);
      feeds[LABELS] = labelTensor(labels);
    }
    Object.assign(feeds, this.inputFeeds(n, extra));
    const out = await this.session.run(feeds);
    const data = (name: string | undefined) => (name ? (out[name].data as FloatArray) : undefined);
    const result: ProgramResult = {
      logits: data(this.outputs.logits),
      objective: data(this.outputs.objective),
      grad: data(this.outputs.grad),
      activations: new Map(),
      means: new Map(),
    };
    for (const [layer, tensor] of this.outputs.activations) {
      result.activations.set(layer, { data: out[tensor].data as FloatArray, dims: [...out[tensor].dims] });
    }
    for (const [layer, tensor] of this.outputs.means) {
      const [rows, channels = 1] = out[tensor].dims;
      result.means.set(layer, { data: out[tensor].data as FloatArray, dims: [rows, channels] });
    }
    return result;
  }

  /** The run-time objective inputs for a batch of n, checked against the shapes the objective declared. */
  inputFeeds(n: number, extra: Readonly<Record<string, ArrayLike<number>>>): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, dims] of this.inputs) {
      const data = extra[name];
      const per = dims.reduce((a, b) => a * b, 1);
      if (!data || data.length !== n * per) throw new Error(`objective input '${name}' needs ${n}×${dims.join('×')} values, got ${data?.length ?? 0}`);
      feeds[name] = floatTensor(this.model.floatType, data, [n, ...dims]);
    }
    return feeds;
  }

  /**
   * The extension's state outputs of a run, renamed to the inputs they feed next: `{ ...feeds, ...nextState(r) }` is
   * the next step's feeds.
   */
  nextState(result: Readonly<Record<string, ort.Tensor>>): Record<string, ort.Tensor> {
    return Object.fromEntries(Object.entries(this.outputs.state).map(([output, input]) => [input, result[output]]));
  }

  /** One run on tensors that may live on the device (IO binding); the caller owns and disposes the results. */
  runTensors(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    return this.session.run(feeds) as Promise<Record<string, ort.Tensor>>;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** A feed in the model's float type; the array itself when it already has that type (onnxruntime only reads it). */
export function floatTensor(floatType: number, data: ArrayLike<number>, dims: readonly number[]): ort.Tensor {
  return floatType === DType.DOUBLE
    ? new ort.Tensor('float64', data instanceof Float64Array ? data : Float64Array.from(data), dims)
    : new ort.Tensor('float32', data instanceof Float32Array ? data : Float32Array.from(data), dims);
}

/** Class indices [N] as the int64 `labels` feed. */
export function labelTensor(labels: ArrayLike<number>): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(Array.from(labels, (v) => BigInt(v))), [labels.length]);
}

/**
 * The augmented graph, exposed for tests and for `atlas` users who want to look at it in Netron. `ep`: the provider
 * it is built for (default the CPU); its backward pass may use ops only that provider was measured with.
 */
export function buildProgramGraph(model: PreparedModel, spec: ProgramSpec, ep: ExecutionProvider = 'cpu') {
  const graph = Graph.decode(model.bytes);
  const { extension } = spec;
  if (extension && (!spec.objective || spec.gradient === false)) throw new Error('a graph extension needs an objective to take the gradient of');
  const ctx = { graph, floatType: model.floatType, inputDims: model.inputDims };
  const extended = extension?.prepare?.(ctx) ?? {};
  const dims = (t: string): number[] => {
    const own = extended.dims?.get(t);
    if (own) return own;
    const info = model.tensors.get(t);
    if (info) return info.dims;
    const init = graph.initializers.get(t);
    if (init) return (init.dims ?? []).map(Number);
    throw new Error(`internal: no static shape for tensor '${t}'`);
  };
  const outputs: Program['outputs'] = { state: extension?.state ?? {}, activations: [], means: [] };
  let labelsCreated = false;
  const inputs = new Map<string, number[]>();
  let forwardNodes: Set<NodeProto> | undefined;
  graph.outputs = [];
  if (spec.logits !== false) {
    outputs.logits = model.logits;
    graph.addOutput(model.logits);
  }
  for (const name of spec.activations ?? []) {
    const layer = findLayer(model.layers, name);
    outputs.activations.push([name, layer.tensor]);
    graph.addOutput(layer.tensor);
  }
  if (spec.means?.length) {
    const b = new GraphBuilder(graph, model.floatType, 'means');
    for (const name of spec.means) {
      const layer = findLayer(model.layers, name);
      // [N,C,spatial...] → [N,C,1,...]; an [N,C] layer is its own mean.
      const mean = layer.dims.length > 2 ? b.op('GlobalAveragePool', [layer.tensor]) : b.op('Identity', [layer.tensor]);
      outputs.means.push([name, mean]);
      graph.addOutput(mean);
    }
  }
  if (spec.objective) {
    const b = new GraphBuilder(graph, model.floatType);
    const built = buildObjective(spec.objective, {
      b,
      opset: graph.opset,
      logits: model.logits,
      dims,
      tensorOf: (layer) => findLayer(model.layers, layer).tensor,
      input: (name, inputDims) => {
        if (inputs.has(name) || name === LABELS || name === PIXELS) throw new Error(`objective input name '${name}' is used twice`);
        graph.reserve(name);
        const batch = graph.inputs.find((i) => i.name === PIXELS)?.type?.tensorType?.shape?.dim?.[0] ?? { dimParam: 'N' };
        graph.inputs.push({ name, type: { tensorType: { elemType: model.floatType, shape: { dim: [batch, ...inputDims.map((d) => ({ dimValue: d }))] } } } });
        inputs.set(name, [...inputDims]);
        return name;
      },
      labels: () => {
        if (!labelsCreated) {
          graph.reserve(LABELS);
          graph.inputs.push({ name: LABELS, type: { tensorType: { elemType: DType.INT64, shape: { dim: [{ dimParam: 'N' }] } } } });
          labelsCreated = true;
        }
        return LABELS;
      },
    });
    // The objective's value gets a stable name so callers can fetch it.
    graph.reserve(OBJECTIVE);
    graph.nodes.push({ name: graph.fresh('objective/value'), opType: 'Identity', input: [built.value], output: [OBJECTIVE] });
    graph.addOutput(OBJECTIVE);
    outputs.objective = OBJECTIVE;
    forwardNodes = new Set(graph.nodes);
    if (spec.gradient !== false) {
      const grad = backprop(graph, { wrt: extended.wrt ?? PIXELS, seeds: built.seeds, dims, floatType: model.floatType, adjoints: extended.adjoints, stepMasks: ep === 'cpu' });
      if (extension) {
        extension.extend(ctx, grad);
        const missing = Object.keys(extension.state).filter((o) => !graph.outputs.some((g) => g.name === o));
        if (missing.length) throw new Error(`internal: graph extension '${extension.key}' declared state it did not output: ${missing.join(', ')}`);
      } else {
        graph.addOutput(grad);
        outputs.grad = grad;
      }
    }
  }
  if (graph.outputs.length === 0) throw new Error('a program must return something: logits, activations, means or an objective');
  graph.prune();
  if (forwardNodes) foldChannelScales(graph, model.floatType, forwardNodes);
  graph.prune();
  return { bytes: graph.encode(), outputs, needsLabels: labelsCreated, inputs, nodes: graph.nodes };
}
