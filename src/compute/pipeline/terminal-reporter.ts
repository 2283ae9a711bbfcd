// How a build talks to the terminal: the plan (what runs and why), a progress bar with ETA per computing step, and a
// closing summary of steps run, cached and time taken.
import { progress, type Progress } from '../progress.ts';
import type { PipelineReporter } from './run-pipeline.ts';

export function terminalReporter(write: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): PipelineReporter {
  let bar: Progress | undefined;
  let barTotal = 0;
  return {
    log: write,
    plan(steps) {
      for (const s of steps) write(`  ${s.run ? 'run ' : 'skip'} ${s.kind}:${s.id} — ${s.reason}`);
    },
    stepProgress(step, done, total, label) {
      if (!bar || barTotal !== total) {
        bar?.stop();
        bar = progress(total, `${step.kind}:${step.id}`);
        barTotal = total;
      }
      bar.update(done, label);
    },
    stepEnd(outcome) {
      bar?.stop();
      bar = undefined;
      if (outcome.status === 'computed') write(`  done ${outcome.kind}:${outcome.id} in ${outcome.seconds.toFixed(1)} s`);
    },
    done(result) {
      const ran = result.steps.filter((s) => s.status === 'computed').length;
      const cached = result.steps.filter((s) => s.status === 'cached').length;
      const planned = result.steps.filter((s) => s.status === 'planned' && s.run).length;
      write(planned || result.steps.every((s) => s.status === 'planned')
        ? `atlas: ${planned} step(s) would run, ${result.steps.length - planned} cached (dry run)`
        : `atlas: ${ran} step(s) run, ${cached} cached, ${result.seconds.toFixed(1)} s`);
    },
  };
}
