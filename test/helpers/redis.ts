// A throwaway Redis server for the queue tests: Debian's redis-server (installed by .ci/run) on a free port of the
// loopback address only, without persistence, stopped by the test. Tests skip, saying why, where no binary exists.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** The redis-server binary on PATH, or undefined. */
export function redisServerBinary(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export interface TestRedis {
  /** redis://127.0.0.1:<port> */
  url: string;
  stop(): Promise<void>;
}

/** A port the kernel says is free on 127.0.0.1 now. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A server on `port` (default: a free one); `port` lets a test start an empty server where one was stopped. */
export async function startRedis(binary: string, port?: number, timeoutMs = 10_000): Promise<TestRedis & { port: number }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'atlas-redis-'));
  port ??= await freePort();
  const child: ChildProcess = spawn(binary, ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.stdout!.on('data', () => {
      if (/ready to accept connections/i.test(output)) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  if (!ready) {
    await stop();
    throw new Error(`redis-server did not start on 127.0.0.1:${port}: ${output.slice(-500)}`);
  }
  return { url: `redis://127.0.0.1:${port}`, port, stop };
}
