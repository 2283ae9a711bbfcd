// Where the test data lives: ../shared beside the checkout (CI has it too), or ATLAS_SHARED. Tests that need it fail
// loudly when it is missing rather than skipping, so a CI run without the data cannot pass by testing nothing.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { sharedDir } from '../../src/config.ts';

export const SHARED = sharedDir();

export function shared(...parts: string[]): string {
  const p = path.join(SHARED, ...parts);
  if (!existsSync(p)) throw new Error(`test data missing: ${p} (set ATLAS_SHARED to the shared/ folder)`);
  return p;
}

// The product's measure (src/compute/numbers.ts), so tests and `auto`'s provider check agree on what an error is.
export { relativeL2 } from '../../src/compute/numbers.ts';
