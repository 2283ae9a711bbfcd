// Any ONNX image model made differentiable: lifted to a recent opset, given a [0,1]-pixels input, probed for shapes
// and named layers once, then compiled into programs (forward, activations, input gradients) on demand.
import { type Objective } from '../autodiff/objectives.ts';
import { dequantizeGraph, isQuantized } from '../onnx/dequantize.ts';
import { Graph } from '../onnx/graph.ts';
import { layerInventory, type Layer } from '../onnx/layers.ts';
import { PIXELS, prependNormalization, type Normalization } from '../onnx/normalize.ts';
import { upgradeOpset } from '../onnx/opset.ts';
import { DType, num } from '../onnx/proto.ts';
import { PROBE_BATCH, probeTensors } from '../runtime/probe.ts';
import { Program, programKey, type FloatArray, type PreparedModel, type ProgramResult, type ProgramSpec } from '../runtime/program.ts';
import type { SessionOptions } from '../runtime/session.ts';

export interface ModelInput {
  /** the model's own input name */
  name: string;
  /** [C,H,W] */
  dims: readonly [number, number, number];
  /** (x − mean)/std applied inside the graph; omit when the model takes [0,1] pixels */
  normalization?: Normalization;
  /** output to treat as logits (default: the first graph output) */
  output?: string;
  /** the output holds probabilities: logits are taken as their log */
  probabilities?: boolean;
  /** how messages name the model (its file) */
  source?: string;
}

export class DifferentiableModel {
  readonly prepared: PreparedModel;
  readonly session: SessionOptions;
  private readonly programs = new Map<string, Promise<Program>>();

  private constructor(prepared: PreparedModel, session: SessionOptions) {
    this.prepared = prepared;
    this.session = session;
  }

  static async fromBytes(bytes: Uint8Array, input: ModelInput, session: SessionOptions = {}): Promise<DifferentiableModel> {
    const source = input.source ?? 'the model';
    let graph: Graph;
    try {
      graph = Graph.decode(bytes);
    } catch {
      throw new Error(`not an ONNX model: ${source}`);
    }
    // Arbitrary bytes can decode as an empty message: a model has nodes and an input.
    if (graph.nodes.length === 0 || graph.inputs.length === 0) throw new Error(`not an ONNX model: ${source}`);
    checkInput(graph, input, source);
    if (isQuantized(graph)) dequantizeGraph(graph); // int8 models run as float graphs on the int8 grid (fake-quant)
    upgradeOpset(graph);
    prependNormalization(graph, input.name, input.normalization);
    const output = input.output ?? graph.outputs[0]?.name ?? '';
    if (!graph.outputs.some((o) => o.name === output)) throw new Error(`model has no output named '${output}'`);
    let logits = output;
    if (input.probabilities) {
      logits = graph.fresh(`${output}/log`);
      graph.nodes.push({ name: graph.fresh('logits/Log'), opType: 'Log', input: [output], output: [logits] });
    }
    const floatType = graph.inputs.find((i) => i.name === PIXELS)?.type?.tensorType?.elemType ?? DType.FLOAT;
    const prepared = graph.encode();
    let tensors: Awaited<ReturnType<typeof probeTensors>>;
    try {
      tensors = await probeTensors(prepared, { [PIXELS]: [PROBE_BATCH, ...input.dims] }, session);
    } catch (err) {
      // onnxruntime's messages run over several lines; the CLI prints one.
      const why = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ');
      throw new Error(`${source} does not run on [${PROBE_BATCH},${input.dims.join(',')}] pixels (the input its model card declares): ${why}`);
    }
    const layers = layerInventory(Graph.decode(prepared), (t) => tensors.get(t));
    return new DifferentiableModel({ bytes: prepared, logits, tensors, layers, floatType, inputDims: input.dims }, session);
  }

  get layers(): readonly Layer[] {
    return this.prepared.layers;
  }

  get inputDims(): readonly [number, number, number] {
    return this.prepared.inputDims;
  }

  get numClasses(): number {
    return this.prepared.tensors.get(this.prepared.logits)?.dims[1] ?? 0;
  }

  /** A compiled program, shared between calls with the same spec. */
  program(spec: ProgramSpec): Promise<Program> {
    const key = programKey(spec);
    let p = this.programs.get(key);
    if (!p) {
      p = Program.compile(this.prepared, spec, this.session);
      this.programs.set(key, p);
      p.catch(() => this.programs.delete(key));
    }
    return p;
  }

  /** Logits [N,K], the requested activations and the requested layers' spatial means for pixels [N,C,H,W] in [0,1]. */
  async forward(pixels: FloatArray, activations: readonly string[] = [], means: readonly string[] = []): Promise<ProgramResult> {
    return (await this.program({ activations: [...activations], ...(means.length ? { means: [...means] } : {}) })).run(pixels);
  }

  /**
   * The layers' maps and spatial means without the logits: the program stops at the deepest requested layer, so a
   * pass over the reference set never runs the classifier's head. Another graph than forward()'s, so onnxruntime may
   * fuse it differently: the int8 model's values can differ from forward()'s at float rounding (BENCHMARKS.md).
   */
  async activations(pixels: FloatArray, activations: readonly string[], means: readonly string[] = []): Promise<Pick<ProgramResult, 'activations' | 'means'>> {
    // Only what is asked for is in the spec, so means alone share spatialMeans' program.
    return (await this.program({ ...(activations.length ? { activations: [...activations] } : {}), ...(means.length ? { means: [...means] } : {}), logits: false })).run(pixels);
  }

  /** Per-channel spatial means [N,C] of the layers for pixels [N,C,H,W] in [0,1], averaged in the graph. */
  async spatialMeans(pixels: FloatArray, layers: readonly string[]): Promise<Map<string, { data: FloatArray; dims: [number, number] }>> {
    return (await this.activations(pixels, [], layers)).means;
  }

  /** d(Σ_batch objective)/d(pixels) [N,C,H,W], with the objective per image and the logits. */
  async gradient(pixels: FloatArray, objective: Objective, labels?: ArrayLike<number>, inputs?: Readonly<Record<string, FloatArray>>): Promise<Required<Pick<ProgramResult, 'grad' | 'objective' | 'logits'>> & ProgramResult> {
    const r = await (await this.program({ objective })).run(pixels, labels, inputs);
    return r as Required<Pick<ProgramResult, 'grad' | 'objective' | 'logits'>> & ProgramResult;
  }

  /** The objective per image and the logits, without the gradient: a forward pass's cost. */
  async evaluate(pixels: FloatArray, objective: Objective, labels?: ArrayLike<number>): Promise<{ objective: FloatArray; logits: FloatArray }> {
    const r = await (await this.program({ objective, gradient: false })).run(pixels, labels);
    return { objective: r.objective!, logits: r.logits! };
  }

  /**
   * The objective and its input gradient only: the program is pruned at the objective's layers, so nothing after
   * them is computed (feature visualization of a layer3 neuron never runs layer4).
   */
  async objectiveGradient(pixels: FloatArray, objective: Objective, inputs?: Readonly<Record<string, FloatArray>>): Promise<{ objective: FloatArray; grad: FloatArray }> {
    const r = await (await this.program({ objective, logits: false })).run(pixels, undefined, inputs);
    return { objective: r.objective!, grad: r.grad! };
  }

  async release(): Promise<void> {
    for (const p of this.programs.values()) await (await p).release();
    this.programs.clear();
  }
}

/** The card's input against the graph's: its name, and every dimension both give as a number. */
function checkInput(graph: Graph, input: ModelInput, source: string): void {
  const declared = graph.inputs.find((i) => i.name === input.name);
  if (!declared) {
    const names = graph.inputs.filter((i) => !graph.initializers.has(i.name ?? '')).map((i) => `'${i.name}'`);
    throw new Error(`${source} has no input named '${input.name}' (its model card's input.name); its inputs: ${names.join(', ')}`);
  }
  const dims = (declared.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimValue !== undefined && d.dimValue !== null && num(d.dimValue) > 0 ? num(d.dimValue) : d.dimParam || '?'));
  if (dims.length === 0) return;
  const expected = ['N', ...input.dims];
  const differs = dims.length !== 4 || input.dims.some((d, i) => typeof dims[i + 1] === 'number' && dims[i + 1] !== d);
  if (differs) throw new Error(`${source}: input '${input.name}' is [${dims.join(',')}], but input.shape in its model card is [${expected.join(',')}]; correct the card`);
}
