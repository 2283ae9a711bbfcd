// Why a worker refuses a job: it builds the job's step from its own data directory and code, and a key that differs
// from the coordinator's means it would compute something else. The message names what differs — above all a model
// file with another sha256 — so the user knows which file to copy.
import os from 'node:os';
import { changedPaths } from '../pipeline/plan.ts';

export function refusal(job: { stepId: string; record: Record<string, unknown> }, own: Record<string, unknown>, dataDir: string): string {
  const where = `worker ${os.hostname()} (pid ${process.pid}, data ${dataDir})`;
  const theirs = (job.record.model ?? {}) as Record<string, unknown>;
  const mine = (own.model ?? {}) as Record<string, unknown>;
  if (theirs.sha256 !== mine.sha256) {
    return `${where} refuses step ${job.stepId}: its model file has sha256 ${String(mine.sha256)}, the coordinator's has ${String(theirs.sha256)}; give every worker the same model file (same data directory layout)`;
  }
  if (theirs.ep !== mine.ep) {
    return `${where} refuses step ${job.stepId}: it runs on ${String(mine.ep)}, the coordinator planned ${String(theirs.ep)} (results differ in the last bits between providers); start the worker with --ep ${String(theirs.ep)}`;
  }
  const changed = changedPaths(job.record, own);
  return `${where} refuses step ${job.stepId}: its inputs differ from the coordinator's (${changed.join('; ') || 'unknown'}); give every worker the same data files and the same version of Atlas`;
}
