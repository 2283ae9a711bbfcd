// Runs the `atlas` command as a user would (a child process on this Node), returning its exit code and output
// instead of throwing, so tests can assert on failures too.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';

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

/** A failed command's stderr is one line, `atlas: error: …`, matching `pattern`. */
export function expectOneLineError(r: { code: number; stderr: string }, pattern: RegExp): void {
  expect(r.code).not.toBe(0);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^atlas: error: /);
  expect(lines[0]).toMatch(pattern);
}
