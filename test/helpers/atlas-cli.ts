// Runs the `atlas` command as a user would (a child process on this Node), returning its exit code and output
// instead of throwing, so tests can assert on failures too.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

export const CLI = path.resolve(import.meta.dirname, '../../src/cli/atlas.ts');

export async function atlas(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], { maxBuffer: 1 << 24 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
