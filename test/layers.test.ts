import { describe, expect, it } from 'vitest';
import { DifferentiableModel } from '../src/compute/model/differentiable-model.ts';
import { channel, crossEntropy } from '../src/compute/autodiff/objectives.ts';
import { FLOAT, tinyModel } from './helpers/tiny-net.ts';

describe('layer inventory', () => {
  it('names layers by module path, else by weight, else by op and index', async () => {
    const bytes = tinyModel(FLOAT, [3, 4, 4], (net, x) => {
      const b = net.b;
      const conv = b.op('Conv', [x, net.weight('stem.conv.weight', [4, 3, 3, 3])], { pads: [1, 1, 1, 1] });
      net.graph.nodes[net.graph.nodes.length - 1].name = '/stem/conv/Conv'; // an exporter's path, not a module path
      const relu = b.op('Relu', [conv]);
      net.graph.nodes[net.graph.nodes.length - 1].name = '';
      const pooled = b.op('GlobalAveragePool', [relu]);
      net.graph.nodes[net.graph.nodes.length - 1].name = 'head.pool';
      const flat = b.op('Flatten', [pooled], { axis: 1 });
      return b.op('Gemm', [flat, net.weight('fc.weight', [5, 4])], { transB: 1 });
    });
    const model = await DifferentiableModel.fromBytes(bytes, { name: 'x', dims: [3, 4, 4] });
    const names = model.layers.map((l) => `${l.name}:${l.op}:${l.dims.slice(1).join('x')}`);
    expect(names).toContain('stem.conv:Conv:4x4x4');
    expect(names.some((n) => /^Relu_\d+:Relu:4x4x4$/.test(n))).toBe(true);
    expect(names).toContain('head.pool:GlobalAveragePool:4x1x1');
    // The names work as objective targets.
    const r = await model.gradient(new Float32Array(48).fill(0.5), channel('stem.conv', 2));
    expect(r.grad.some((v) => v !== 0)).toBe(true);
  });

  it('names an unsupported op on the path, and ignores one that only feeds shape arithmetic', async () => {
    const build = (onPath: boolean) => tinyModel(FLOAT, [2, 3, 3], (net, x) => {
      const b = net.b;
      const odd = b.op('Erf', [x]);
      net.graph.nodes[net.graph.nodes.length - 1].name = 'odd.erf';
      // Off the path, Erf only decides the batch size of a Reshape (Shape → Gather → Concat), as exporters write it.
      const batch = b.op('Gather', [b.op('Shape', [odd]), b.int64Const('zero', [0])], { axis: 0 });
      const flat = onPath ? b.op('Flatten', [odd], { axis: 1 }) : b.op('Reshape', [x, b.op('Concat', [batch, b.int64Const('rest', [-1])], { axis: 0 })]);
      return b.op('Gemm', [flat, net.weight('fc.weight', [5, 18])], { transB: 1 });
    });
    const onPath = await DifferentiableModel.fromBytes(build(true), { name: 'x', dims: [2, 3, 3] });
    await expect(onPath.gradient(new Float32Array(18), crossEntropy(), [0])).rejects.toThrow(/cannot differentiate Erf node 'odd\.erf'.*Supported ops: .*Conv/);
    const offPath = await DifferentiableModel.fromBytes(build(false), { name: 'x', dims: [2, 3, 3] });
    const r = await offPath.gradient(new Float32Array(18).fill(0.3), crossEntropy(), [0]);
    expect(r.grad.some((v) => v !== 0)).toBe(true);
  });

  it('gives each image the same gradient alone or in a batch', async () => {
    const bytes = tinyModel(FLOAT, [3, 5, 5], (net, x) => {
      const c = net.b.op('Conv', [x, net.weight('c.weight', [4, 3, 3, 3])], { pads: [1, 1, 1, 1] });
      const p = net.b.op('MaxPool', [net.b.op('Relu', [c])], { kernel_shape: [2, 2], strides: [2, 2] });
      return net.b.op('Gemm', [net.b.op('Flatten', [p], { axis: 1 }), net.weight('fc.weight', [5, 16])], { transB: 1 });
    });
    const model = await DifferentiableModel.fromBytes(bytes, { name: 'x', dims: [3, 5, 5] });
    const a = Float32Array.from({ length: 75 }, (_, i) => Math.sin(i) * 0.5 + 0.5);
    const b = Float32Array.from({ length: 75 }, (_, i) => Math.cos(i) * 0.5 + 0.5);
    const both = new Float32Array(150);
    both.set(a);
    both.set(b, 75);
    const batch = await model.gradient(both, crossEntropy(), [1, 2]);
    const alone = await model.gradient(b, crossEntropy(), [2]);
    for (let k = 0; k < 75; k++) expect(batch.grad[75 + k]).toBeCloseTo(alone.grad[k], 6);
  });
});
