// Progress on stderr: a live bar (cli-progress) on a terminal, one line per batch in logs and CI where a bar would
// only add carriage returns.
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, label: string): void;
  stop(): void;
}

export function progress(total: number, title: string): Progress {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar({
      stream: process.stderr,
      format: `${title} [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted} | {label}`,
      hideCursor: true,
    }, cliProgress.Presets.shades_classic);
    bar.start(total, 0, { label: '' });
    return { update: (done, label) => bar.update(done, { label }), stop: () => bar.stop() };
  }
  const started = Date.now();
  let lastLine = 0;
  return {
    update(done, label) {
      const now = Date.now();
      if (done < total && now - lastLine < 2000) return;
      lastLine = now;
      const eta = done > 0 ? ((now - started) / done) * (total - done) / 1000 : NaN;
      process.stderr.write(`${title}: ${done}/${total} ${label}${Number.isFinite(eta) && done < total ? ` (ETA ${eta.toFixed(0)} s)` : ''}\n`);
    },
    stop() {},
  };
}
