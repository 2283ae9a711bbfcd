// Where the test data lives: ../shared beside the checkout (CI has it too), or ATLAS_SHARED. Tests that need it fail
// loudly when it is missing rather than skipping, so a CI run without the data cannot pass by testing nothing.
import { existsSync } from 'node:fs';
import path from 'node:path';

export const SHARED = process.env.ATLAS_SHARED ?? path.resolve(import.meta.dirname, '../../../shared');

export function shared(...parts: string[]): string {
  const p = path.join(SHARED, ...parts);
  if (!existsSync(p)) throw new Error(`test data missing: ${p} (set ATLAS_SHARED to the shared/ folder)`);
  return p;
}

/** Relative L2 error ‖a − b‖ / ‖b‖. */
export function relativeL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}
