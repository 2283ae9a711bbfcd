// The runtime's one extension point (runtime/graph-extension.ts): a loop's step added to a program without the
// runtime knowing the loop. A toy extension — plain gradient ascent, x ← x + lr·∇ₓL — stands for a new attack: it
// must compile, keep its declared state apart from the host outputs, and compute what the plain gradient program
// says. And the runtime must not import the loops that use it.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { crossEntropy } from '../src/compute/autodiff/objectives.ts';
import { DifferentiableModel } from '../src/compute/model/differentiable-model.ts';
import { GraphBuilder } from '../src/compute/onnx/builder.ts';
import { PIXELS } from '../src/compute/onnx/normalize.ts';
import type { GraphExtension } from '../src/compute/runtime/graph-extension.ts';
import { floatTensor, labelTensor, LABELS } from '../src/compute/runtime/program.ts';
import { DOUBLE, head, named, tinyModel } from './helpers/tiny-net.ts';

const DIMS: [number, number, number] = [3, 4, 4];
const LR = 'ascent/lr';
const NEXT = 'ascent/next';

function ascent(declared: Record<string, string> = { [NEXT]: PIXELS }): GraphExtension {
  return {
    key: 'ascent',
    state: declared,
    extend({ graph, floatType }, grad) {
      graph.reserve(LR);
      graph.inputs.push({ name: LR, type: { tensorType: { elemType: floatType, shape: { dim: [] } } } });
      const b = new GraphBuilder(graph, floatType, 'ascent');
      const next = b.op('Add', [PIXELS, b.op('Mul', [grad, LR])]);
      graph.reserve(NEXT);
      graph.nodes.push({ name: graph.fresh('ascent/next'), opType: 'Identity', input: [next], output: [NEXT] });
      graph.addOutput(NEXT);
    },
  };
}

const tiny = () => tinyModel(DOUBLE, DIMS, (n, x) => {
  // elementwise ops and Gemm only: onnxruntime's CPU provider has no float64 Conv
  const feat = named(n, 'feat', 'Mul', [x, n.weight('feat.weight', DIMS, 2)]);
  return head(n, named(n, 'act', 'Tanh', [feat]), 3 * 4 * 4);
});

describe('graph extensions', () => {
  it('a new loop step compiles through the extension point and computes x + lr·∇ₓL, its state fed back by name', async () => {
    const model = await DifferentiableModel.fromBytes(tiny(), { name: 'x', dims: DIMS });
    try {
      const x = Float64Array.from({ length: 2 * 48 }, (_, i) => 0.5 + 0.4 * Math.sin(i * 0.7));
      const labels = [1, 3];
      const plain = await model.gradient(x, crossEntropy(), labels);
      const program = await model.program({ objective: crossEntropy(), extension: ascent() });
      expect(program.outputs.state).toEqual({ [NEXT]: PIXELS });
      expect(program.outputs.grad).toBeUndefined(); // the step consumes the gradient; it is not sent to the host
      const r = await program.runTensors({
        [PIXELS]: floatTensor(DOUBLE, x, [2, ...DIMS]),
        [LABELS]: labelTensor(labels),
        [LR]: floatTensor(DOUBLE, [0.25], []),
      });
      const state = program.nextState(r);
      expect(Object.keys(state)).toEqual([PIXELS]);
      const next = state[PIXELS].data as Float64Array;
      next.forEach((v, i) => expect(v).toBeCloseTo(x[i] + 0.25 * plain.grad[i], 12));
      expect(Array.from(r[program.outputs.objective!].data as Float64Array)).toEqual(Array.from(plain.objective));
      // Programs are compiled once per extension key: the same key gives the same program.
      expect(await model.program({ objective: crossEntropy(), extension: ascent() })).toBe(program);
    } finally {
      await model.release();
    }
  });

  it('refuses an extension that declares state it does not output, and one without an objective', async () => {
    const model = await DifferentiableModel.fromBytes(tiny(), { name: 'x', dims: DIMS });
    try {
      await expect(model.program({ objective: crossEntropy(), extension: { ...ascent({ missing: PIXELS }), key: 'broken' } })).rejects.toThrow(/declared state it did not output: missing/);
      await expect(model.program({ extension: ascent() })).rejects.toThrow(/needs an objective/);
    } finally {
      await model.release();
    }
  });

  it('the runtime imports no higher layer (attacks, feature visualization, models, analyses, the pipeline)', () => {
    const dir = path.resolve(import.meta.dirname, '../src/compute/runtime');
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const imports = [...readFileSync(path.join(dir, file), 'utf8').matchAll(/from '([^']+)'/g)].map((m) => m[1]);
      expect(imports.filter((i) => /^\.\.\/(attacks|featurevis|model|analysis|pipeline|cache)\//.test(i)), file).toEqual([]);
    }
  });
});
