import { loadClassifier } from '../../compute/model/classifier.ts';
import { placementNotice, timeGradient } from '../../compute/model/provider-choice.ts';
import { relativeL2 } from '../../compute/numbers.ts';
import { probeProvider } from '../../compute/runtime/execution-provider.ts';
import { bytesPerImage, chooseBatch, deviceMemory } from '../../compute/runtime/memory.ts';
import { EXECUTION_PROVIDERS } from '../../compute/runtime/session.ts';

/**
 * What each execution provider does on this machine: whether it starts, and with a model, one forward+backward timed
 * on it, its gradient's distance from the CPU's, the batch its memory allows and the ops it leaves to the CPU.
 */
export async function providers(model?: string): Promise<void> {
  let cpuGrad: Float32Array | undefined;
  for (const ep of EXECUTION_PROVIDERS) {
    const status = await probeProvider(ep);
    if (!status.available) {
      console.log(`${ep}: not available — ${status.reason}`);
      continue;
    }
    if (!model) {
      console.log(`${ep}: available`);
      continue;
    }
    const classifier = await loadClassifier(model, { ep });
    try {
      const { ms, grad } = await timeGradient(classifier);
      cpuGrad ??= grad;
      const batch = chooseBatch(bytesPerImage(classifier.model.prepared), await deviceMemory(ep));
      const error = ep === 'cpu' ? '' : `, gradient vs CPU ${relativeL2(grad, cpuGrad).toExponential(1)} (relative L2)`;
      console.log(`${ep}: forward+backward ${ms.toFixed(0)} ms at batch 1${error}; ${batch.reason}`);
      const placement = await placementNotice(classifier);
      if (placement) console.log(`  ${placement}`);
    } finally {
      await classifier.model.release();
    }
  }
}
