// `npm run build` and `npm run compute` both land here: read the spec, plan every step with its cache key, run only
// the steps whose key has no valid cache entry (or that are forced), and report what ran, what was cached and why.
import { CacheStore, type CacheEntry } from '../cache/store.ts';
import type { ProviderChoice } from '../runtime/execution-provider.ts';
import { cacheDir, dataDir as configuredDataDir, unknownVariableNotice, unknownVariables } from '../../config.ts';
import type { SessionOptions } from '../runtime/session.ts';
import { pipelineSteps } from './build-steps.ts';
import { checkSpecNames } from './spec-model-check.ts';
import { loadSpec, type ExperimentSpec } from './spec.ts';
import { changedPaths, planKeys } from './plan.ts';
import type { ShardedStep, Step, StepContext } from './step.ts';

export interface PipelineOptions {
  specPath: string;
  /** the project root: default data and cache folders live there */
  projectRoot: string;
  /** default: ATLAS_DATA, else <project>/data */
  dataDir?: string;
  /** default: ATLAS_CACHE, else <project>/.cache/atlas */
  cacheDir?: string;
  /** step ids to recompute even when cached; 'all' for every step */
  force?: readonly string[] | 'all';
  /** plan only: say what would run and why */
  dryRun?: boolean;
  /** run only the steps of these kinds (and the steps they depend on) */
  kinds?: readonly string[];
  session?: SessionOptions;
  /** execution provider: cpu, webgpu, cuda or auto; default ATLAS_EP, else cpu */
  provider?: ProviderChoice;
  reporter?: PipelineReporter;
  /**
   * Computes the steps that declare shards elsewhere (a job queue: src/compute/queue/coordinator.ts); without it
   * every step computes in this process.
   */
  shardRunner?: ShardRunner;
}

/** What a shard runner is given: a step to compute by shards, with its key, and where this build caches. */
export interface ShardedCompute {
  step: ShardedStep;
  key: string;
  /** what the key is the hash of */
  record: Record<string, unknown>;
  /** recompute even what is cached */
  forced: boolean;
  specPath: string;
  store: CacheStore;
  ctx: StepContext;
}

export type ShardRunner = (job: ShardedCompute) => Promise<Map<string, Uint8Array>>;

export interface PlannedStep {
  id: string;
  kind: string;
  key: string;
  /** why it will run, or 'cached' */
  reason: string;
  run: boolean;
}

export interface StepOutcome extends PlannedStep {
  status: 'cached' | 'computed' | 'planned';
  seconds: number;
  entry?: CacheEntry;
}

export interface PipelineResult {
  spec: ExperimentSpec;
  /** why the spec's compare: block was left out of this build (written for another model), or null */
  compareSkipped: string | null;
  /** the main model as figures name it, and its card's `task` */
  model: { label: string; task: string | null };
  steps: StepOutcome[];
  seconds: number;
}

export interface PipelineReporter {
  plan?(steps: readonly PlannedStep[]): void;
  stepStart?(step: PlannedStep): void;
  stepProgress?(step: PlannedStep, done: number, total: number, label: string): void;
  stepEnd?(outcome: StepOutcome): void;
  done?(result: PipelineResult): void;
  log?(line: string): void;
}

export async function runPipeline(opts: PipelineOptions): Promise<PipelineResult> {
  const started = performance.now();
  const reporter = opts.reporter ?? {};
  const declared = await loadSpec(opts.specPath);
  const dataDir = configuredDataDir(opts.projectRoot, opts.dataDir);
  const store = new CacheStore(cacheDir(opts.projectRoot, opts.cacheDir));
  for (const name of unknownVariables()) reporter.log?.(unknownVariableNotice(name));
  await store.sweep();

  const { steps, model, spec, compareSkipped, classifier } = await pipelineSteps({ spec: declared, dataDir, session: opts.session, provider: opts.provider, log: (l) => reporter.log?.(l) });
  const keyed = await planKeys(steps);
  if (opts.kinds) {
    // Keep the chosen kinds and, transitively, what they depend on.
    const keep = new Set(keyed.filter((k) => opts.kinds!.includes(k.step.kind)).map((k) => k.step.id));
    for (let k = keyed.length - 1; k >= 0; k--) if (keep.has(keyed[k].step.id)) for (const d of keyed[k].step.needs ?? []) keep.add(d);
    keyed.splice(0, keyed.length, ...keyed.filter((k) => keep.has(k.step.id)));
  }
  const ids = new Set(keyed.map((k) => k.step.id));
  if (opts.force && opts.force !== 'all') {
    for (const f of opts.force) if (!ids.has(f)) throw new Error(`--force: no step '${f}' in ${opts.specPath} (steps: ${[...ids].join(', ')})`);
  }

  const index = await store.readIndex();
  const planned: (PlannedStep & { step: Step; record: Record<string, unknown>; entry?: CacheEntry })[] = [];
  for (const { step, key, record } of keyed) {
    const forced = opts.force === 'all' || (opts.force ?? []).includes(step.id);
    const found = await store.lookup(step.kind, key);
    let reason: string;
    if (forced) reason = 'forced';
    else if (found.status === 'hit') reason = 'cached';
    else if (found.status === 'corrupt') reason = `cache entry damaged (${found.reason})`;
    else {
      const previous = index[step.id];
      const changed = previous ? changedPaths(previous.inputs, record) : [];
      reason = changed.length > 0 ? `changed: ${changed.join(', ')}` : 'not computed yet';
    }
    planned.push({ id: step.id, kind: step.kind, key, reason, run: reason !== 'cached', step, record, entry: found.status === 'hit' ? found.entry : undefined });
  }
  // Names are checked against the model only when something is to run: a cached build never loads it.
  if (planned.some((p) => p.run)) checkSpecNames(spec, (await classifier()).model.layers, opts.specPath);
  reporter.plan?.(planned);

  const outcomes: StepOutcome[] = [];
  const entries = new Map<string, CacheEntry>();
  const dependency = (id: string): CacheEntry => {
    const e = entries.get(id);
    if (!e) throw new Error(`internal: step '${id}' has not run`);
    return e;
  };
  for (const p of planned) {
    const { step, record: _record, entry: cached, ...plan } = p;
    if (opts.dryRun) {
      outcomes.push({ ...plan, status: 'planned', seconds: 0, entry: cached });
      continue;
    }
    if (!p.run && cached) {
      entries.set(p.id, cached);
      const outcome: StepOutcome = { ...plan, status: 'cached', seconds: 0, entry: cached };
      reporter.stepEnd?.(outcome);
      outcomes.push(outcome);
      continue;
    }
    // Another build on this cache may be computing the same entry: wait for it, then take its result.
    const claim = await store.claim(step.kind, p.key, (owner) =>
      reporter.log?.(`${step.kind}:${step.id}: waiting for another build (pid ${owner.pid} on ${owner.host}) that is computing it`));
    try {
      // Looked up again even without waiting: a build may have stored the entry between the plan and the claim. A
      // forced step is taken from another build only if that build computed it while this one waited.
      if (claim.waited || p.reason !== 'forced') {
        const found = await store.lookup(step.kind, p.key);
        if (found.status === 'hit') {
          entries.set(p.id, found.entry);
          const outcome: StepOutcome = { ...plan, reason: 'computed by another build meanwhile', status: 'cached', seconds: 0, entry: found.entry };
          reporter.stepEnd?.(outcome);
          outcomes.push(outcome);
          continue;
        }
      }
      reporter.stepStart?.(plan);
      const t = performance.now();
      const ctx: StepContext = { progress: (done, total, label) => reporter.stepProgress?.(plan, done, total, label), dependency };
      const files = step.shards && opts.shardRunner
        ? await opts.shardRunner({ step: step as ShardedStep, key: p.key, record: p.record, forced: p.reason === 'forced', specPath: opts.specPath, store, ctx })
        : await step.compute(ctx);
      const entry = await store.put(step.kind, p.key, p.record, files);
      entries.set(p.id, entry);
      // Recorded after every step, so an interrupted build still explains the steps it finished.
      await store.updateIndex({ [step.id]: { kind: step.kind, key: p.key, inputs: p.record } });
      const outcome: StepOutcome = { ...plan, status: 'computed', seconds: (performance.now() - t) / 1000, entry };
      reporter.stepEnd?.(outcome);
      outcomes.push(outcome);
    } finally {
      await claim.release();
    }
  }
  if (!opts.dryRun) await store.updateIndex(Object.fromEntries(planned.map((p) => [p.id, { kind: p.kind, key: p.key, inputs: p.record }])));
  const result: PipelineResult = { spec, compareSkipped, model, steps: outcomes, seconds: (performance.now() - started) / 1000 };
  reporter.done?.(result);
  return result;
}
