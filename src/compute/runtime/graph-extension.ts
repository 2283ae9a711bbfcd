// The one way a caller grows a program beyond "forward, activations, gradient": a graph extension. A loop that takes
// many steps on the device (a PGD attack, a feature-visualization render) writes its whole step as ONNX nodes around
// the model and names the tensors it feeds back from one run to the next; the runtime builds the graph, keeps those
// outputs in device memory, and knows nothing else about the loop. A new loop is a new extension in its own module.
import type { VjpRule } from '../autodiff/vjp/rule.ts';
import type { Graph } from '../onnx/graph.ts';

/** What an extension sees of the program being built. */
export interface ExtensionContext {
  graph: Graph;
  /** the model's float type (DType.FLOAT or DType.DOUBLE) */
  floatType: number;
  /** [C,H,W] of the model's pixels input */
  inputDims: readonly [number, number, number];
}

/** What an extension may change before the objective is differentiated. */
export interface ExtensionInputs {
  /** tensor to differentiate with respect to instead of the pixels */
  wrt?: string;
  /** static shapes of tensors the extension added */
  dims?: ReadonlyMap<string, number[]>;
  /** backward rules for nodes the extension added that the autodiff cannot differentiate in general */
  adjoints?: ReadonlyMap<string, VjpRule>;
}

export interface GraphExtension {
  /** what shapes the graph, as a string: programs are compiled once per model and key */
  readonly key: string;
  /**
   * Device-resident state: output name → the input it is fed back into on the next step. These outputs stay in
   * device memory (IO binding) on providers that have any; every other output comes back to the host.
   */
  readonly state: Readonly<Record<string, string>>;
  /** Called before the objective is built: may replace the pixels input by something computed from new inputs. */
  prepare?(ctx: ExtensionContext): ExtensionInputs;
  /** Called with d(objective)/d(wrt): appends the step's nodes, declares its inputs, and adds the state outputs. */
  extend(ctx: ExtensionContext, grad: string): void;
}
