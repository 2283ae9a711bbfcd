// Canonical JSON for cache keys and cached results: object keys sorted, floats rounded to 7 significant digits
// (last-bit differences between machines must not change a key or a cached byte), two-space indentation.
import { roundSignificant } from '../numbers.ts';

export function canonical(value: unknown): unknown {
  if (typeof value === 'number') return Number.isInteger(value) ? value : roundSignificant(value);
  if (Array.isArray(value) || ArrayBuffer.isView(value)) return Array.from(value as ArrayLike<unknown>, canonical);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = canonical(v);
    }
    return out;
  }
  return value;
}

export function stableJson(value: unknown): string {
  return JSON.stringify(canonical(value), null, 2) + '\n';
}
