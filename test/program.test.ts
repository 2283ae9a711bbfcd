// Programs without their gradient (runtime/program.ts, `gradient: false`): an attack's evaluations before and after
// read only the loss and the logits, so they run a forward pass, not a forward and backward one.
import { describe, expect, it } from 'vitest';
import { crossEntropy } from '../src/compute/autodiff/objectives.ts';
import { DifferentiableModel } from '../src/compute/model/differentiable-model.ts';
import { buildProgramGraph } from '../src/compute/runtime/program.ts';
import { FLOAT, head, named, tinyModel } from './helpers/tiny-net.ts';

const DIMS: [number, number, number] = [3, 4, 4];

const tiny = () => tinyModel(FLOAT, DIMS, (n, x) => {
  const conv = named(n, 'conv', 'Conv', [x, n.weight('conv.weight', [4, 3, 3, 3], 0.5)], { pads: [1, 1, 1, 1] });
  return head(n, named(n, 'act', 'Relu', [conv]), 4 * 4 * 4);
});

describe('an objective evaluated without its gradient', () => {
  it('gives the cross-entropy of the forward pass\'s logits, per image, from a graph with no backward nodes', async () => {
    const model = await DifferentiableModel.fromBytes(tiny(), { name: 'x', dims: DIMS });
    const n = 4;
    const pixels = Float32Array.from({ length: n * 48 }, (_, i) => ((i * 37) % 101) / 100);
    const labels = [0, 1, 2, 1];
    const r = await model.evaluate(pixels, crossEntropy(), labels);
    const logits = (await model.forward(pixels)).logits!;
    const k = logits.length / n;
    expect(k).toBeGreaterThan(1);
    for (let i = 0; i < n; i++) {
      const row = Array.from(logits.subarray(i * k, (i + 1) * k));
      const max = Math.max(...row);
      const logSum = max + Math.log(row.reduce((a, z) => a + Math.exp(z - max), 0));
      expect(r.objective[i]).toBeCloseTo(logSum - row[labels[i]], 5);
      for (let j = 0; j < k; j++) expect(r.logits[i * k + j]).toBeCloseTo(row[j], 5);
    }
    // The same value as the gradient program's.
    const g = await model.gradient(pixels, crossEntropy(), labels);
    for (let i = 0; i < n; i++) expect(r.objective[i]).toBeCloseTo(g.objective[i], 5);
    const ops = (gradient: boolean) => buildProgramGraph(model.prepared, { objective: crossEntropy(), gradient }).nodes.map((x) => x.opType);
    // The Relu's backward mask and the convolution's input gradient are the gradient program's only.
    expect(ops(true)).toContain('HardSigmoid');
    expect(ops(false)).not.toContain('HardSigmoid');
    expect(ops(true).filter((op) => op === 'Conv')).toHaveLength(2);
    expect(ops(false).filter((op) => op === 'Conv')).toHaveLength(1);
  });
});
