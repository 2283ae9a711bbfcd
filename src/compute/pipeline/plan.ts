// The step graph's keys. Steps declare their own parameters, the steps they need and the modules that compute them;
// the planner orders the graph and derives each key from those alone:
//   key = sha256 of { ...params, kind, code: code version of the step's modules, needs: { id: key of that step } }
// so a key changes exactly when something its outputs depend on changed — including anything upstream, through the
// keys of its needs.
import { canonical } from '../cache/stable-json.ts';
import { codeVersion } from '../cache/code-version.ts';
import { hashJson } from '../cache/hash.ts';
import type { Step } from './step.ts';

const RESERVED = ['kind', 'code', 'needs'] as const;

export interface KeyedStep {
  step: Step;
  key: string;
  /** what the key is the hash of (canonical JSON), kept to explain a later re-run */
  record: Record<string, unknown>;
}

/** The steps in dependency order (the given order where it allows), each with its key. */
export async function planKeys(steps: readonly Step[]): Promise<KeyedStep[]> {
  const byId = new Map<string, Step>();
  for (const s of steps) {
    if (byId.has(s.id)) throw new Error(`internal: two steps are named '${s.id}'`);
    for (const r of RESERVED) if (r in s.params) throw new Error(`internal: step '${s.id}' declares '${r}' among its params; the planner derives it`);
    byId.set(s.id, s);
  }
  for (const s of steps) {
    for (const d of s.needs ?? []) if (!byId.has(d)) throw new Error(`internal: step '${s.id}' needs '${d}', which this spec has no step for`);
  }
  const keyed = new Map<string, KeyedStep>();
  const order: KeyedStep[] = [];
  const visiting = new Set<string>();
  const visit = async (s: Step): Promise<KeyedStep> => {
    const done = keyed.get(s.id);
    if (done) return done;
    if (visiting.has(s.id)) throw new Error(`internal: steps depend on each other in a cycle through '${s.id}'`);
    visiting.add(s.id);
    const needs: Record<string, string> = {};
    for (const d of s.needs ?? []) needs[d] = (await visit(byId.get(d)!)).key;
    const code = await codeVersion(s.code);
    const record = canonical({ ...s.params, kind: s.kind, code: { modules: code.modules, packages: code.packages }, needs }) as Record<string, unknown>;
    const k: KeyedStep = { step: s, key: hashJson(record), record };
    visiting.delete(s.id);
    keyed.set(s.id, k);
    order.push(k);
    return k;
  };
  for (const s of steps) await visit(s);
  return order;
}

/**
 * Why a key changed, as short paths: `params.eps`, `model.sha256`, `needs.weasel_to_truck`, and for code the modules
 * and packages that differ (`code: src/compute/onnx/dequantize.ts`).
 */
export function changedPaths(before: unknown, after: unknown): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
  if (!isObj(before) || !isObj(after)) return ['(inputs)'];
  const out: string[] = [];
  for (const k of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
    if (k === 'code' && isObj(before.code) && isObj(after.code)) {
      const names = (['modules', 'packages'] as const).flatMap((part) => differing(before.code as Record<string, unknown>, after.code as Record<string, unknown>, part));
      if (names.length) out.push(`code: ${names.join(', ')}`);
    } else {
      out.push(...leafPaths(before[k], after[k], k, 1));
    }
  }
  return out;
}

function differing(a: Record<string, unknown>, b: Record<string, unknown>, part: 'modules' | 'packages'): string[] {
  const x = (a[part] ?? {}) as Record<string, unknown>;
  const y = (b[part] ?? {}) as Record<string, unknown>;
  return [...new Set([...Object.keys(x), ...Object.keys(y)])].sort().filter((n) => x[n] !== y[n]).map((n) => (part === 'packages' ? `${n}@${y[n] ?? 'removed'}` : n));
}

/** Leaf paths (two levels deep) where two values differ. */
function leafPaths(before: unknown, after: unknown, prefix: string, depth: number): string[] {
  if (JSON.stringify(canonical(before)) === JSON.stringify(canonical(after))) return [];
  const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
  if (depth >= 2 || !isObj(before) || !isObj(after)) return [prefix];
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return keys.flatMap((k) => leafPaths(before[k], after[k], `${prefix}.${k}`, depth + 1));
}
