// Download progress on stderr: a live bar on a terminal, a line every few seconds in logs and CI. Counts bytes, since
// files range from a 1 kB card to a 14 MB model.
import cliProgress from 'cli-progress';

export interface FetchProgress {
  /** bytes received (negative when a restart discards bytes), and whether a file was completed */
  add(bytes: number, fileDone?: boolean): void;
  stop(): void;
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);

export function fetchProgress(totalBytes: number, totalFiles: number, stream: NodeJS.WriteStream = process.stderr): FetchProgress {
  let bytes = 0;
  let files = 0;
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar({
      stream,
      format: 'fetch [{bar}] {percentage}% | {mb} of {totalMb} MB | {files}/{totalFiles} files | ETA {eta_formatted}',
      hideCursor: true,
    }, cliProgress.Presets.shades_classic);
    const payload = () => ({ mb: mb(bytes), totalMb: mb(totalBytes), files, totalFiles });
    bar.start(Math.max(totalBytes, 1), 0, payload());
    return {
      add(n, fileDone) {
        bytes += n;
        if (fileDone) files++;
        bar.update(Math.max(0, bytes), payload());
      },
      stop: () => bar.stop(),
    };
  }
  const started = Date.now();
  let last = started;
  return {
    add(n, fileDone) {
      bytes += n;
      if (fileDone) files++;
      const now = Date.now();
      if (now - last < 3000 && files < totalFiles) return;
      if (files === totalFiles && !fileDone) return;
      last = now;
      const rate = bytes / Math.max((now - started) / 1000, 1e-3);
      const eta = rate > 0 && bytes < totalBytes ? ` (ETA ${((totalBytes - bytes) / rate).toFixed(0)} s)` : '';
      stream.write(`fetch: ${mb(bytes)} of ${mb(totalBytes)} MB, ${files}/${totalFiles} files${eta}\n`);
    },
    stop() {},
  };
}
