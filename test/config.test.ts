// Configuration: every ATLAS_* variable is declared and read in src/config.ts, with one precedence (flag over variable
// over default), a clear error for a value that cannot be used, and a row in README's table.
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  articlePath, bibPath, browserBase, browserDist, cacheDir, dataDir, debug, modelsDir, outDir, PROVIDER_NAMES, providerChoice,
  sharedDir, siteBase, specPath, unknownVariables, VARIABLES,
} from '../src/config.ts';
import { runPipeline } from '../src/compute/pipeline/run-pipeline.ts';
import { probeProvider, PROVIDER_CHOICES } from '../src/compute/runtime/execution-provider.ts';
import { testProject } from './helpers/project.ts';

const REPO = path.resolve(import.meta.dirname, '..');
const CLI = path.join(REPO, 'src/cli/atlas.ts');
const exec = promisify(execFile);

describe('src/config.ts', () => {
  it('resolves flag over variable over default, an empty variable counting as unset', () => {
    const root = '/project';
    expect(dataDir(root, undefined, {})).toBe('/project/data');
    expect(dataDir(root, undefined, { ATLAS_DATA: '/d' })).toBe('/d');
    expect(dataDir(root, '/flag', { ATLAS_DATA: '/d' })).toBe('/flag');
    expect(dataDir(root, undefined, { ATLAS_DATA: '' })).toBe('/project/data');
    expect(cacheDir(root, undefined, {})).toBe('/project/.cache/atlas');
    expect(cacheDir(root, undefined, { ATLAS_CACHE: '/c' })).toBe('/c');
    expect(cacheDir(root, '/flag', { ATLAS_CACHE: '/c' })).toBe('/flag');
    expect(providerChoice(undefined, {})).toBe('cpu');
    expect(providerChoice(undefined, { ATLAS_EP: 'webgpu' })).toBe('webgpu');
    expect(providerChoice('cpu', { ATLAS_EP: 'webgpu' })).toBe('cpu');
    expect(providerChoice(undefined, { ATLAS_EP: '' })).toBe('cpu');
    expect(specPath(undefined, {})).toBe('content/article.experiments.yaml');
    expect(specPath('x.yaml', { ATLAS_SPEC: 'y.yaml' })).toBe('x.yaml');
    expect(specPath(undefined, { ATLAS_SPEC: 'y.yaml' })).toBe('y.yaml');
    expect(articlePath(undefined, {})).toBe('content/article.mdx');
    expect(articlePath(undefined, { ATLAS_ARTICLE: 'a.mdx' })).toBe('a.mdx');
    expect(bibPath(undefined, {})).toBe('content/references.bib');
    expect(bibPath('f.bib', { ATLAS_BIB: 'b.bib' })).toBe('f.bib');
    expect(siteBase(undefined, {})).toBe('/');
    expect(siteBase(undefined, { ATLAS_BASE: '/atlas/' })).toBe('/atlas/');
    expect(siteBase('/flag/', { ATLAS_BASE: '/atlas/' })).toBe('/flag/');
    expect(outDir(undefined, {})).toBe('./dist');
    expect(outDir(undefined, { ATLAS_OUT: '/tmp/out' })).toBe('/tmp/out');
    expect(debug({})).toBe(false);
    expect(debug({ ATLAS_DEBUG: '1' })).toBe(true);
    expect(debug({ ATLAS_DEBUG: 'off' })).toBe(false);
    expect(sharedDir({})).toBe(path.resolve(REPO, '../shared'));
    expect(modelsDir(undefined, { ATLAS_SHARED: '/s' })).toBe('/s/models');
    expect(modelsDir(undefined, { ATLAS_SHARED: '/s', ATLAS_MODELS: '/m' })).toBe('/m');
    expect(modelsDir('/flag', { ATLAS_MODELS: '/m' })).toBe('/flag');
    expect(browserDist({})).toBeUndefined();
    expect(browserBase({})).toBe('/atlas/');
  });

  it('refuses a value it cannot use, naming the variable and what it accepts', () => {
    expect(() => providerChoice(undefined, { ATLAS_EP: 'foo' })).toThrow("unknown execution provider 'foo' (ATLAS_EP or --ep): use cpu, webgpu, cuda, auto");
    expect(() => siteBase(undefined, { ATLAS_BASE: 'atlas/' })).toThrow("ATLAS_BASE='atlas/': a base path starts with '/'");
    expect(() => debug({ ATLAS_DEBUG: 'maybe' })).toThrow(/^ATLAS_DEBUG='maybe': use 1 or 0/);
  });

  it('accepts exactly the providers the runtime has', () => {
    expect([...PROVIDER_NAMES]).toEqual([...PROVIDER_CHOICES]);
  });

  it('names ATLAS_* variables it does not read', () => {
    expect(unknownVariables({ ATLAS_CAHCE: '/c', ATLAS_CACHE: '/c', PATH: '/bin' })).toEqual(['ATLAS_CAHCE']);
  });

  it('is the only place that reads an ATLAS_* variable', async () => {
    const offenders: string[] = [];
    const files = ['astro.config.mjs', 'vitest.config.ts'];
    for (const dir of ['src', 'bench', 'scripts', 'test/helpers']) {
      for (const f of await readdir(path.join(REPO, dir), { recursive: true })) if (/\.(ts|mjs|js|astro)$/.test(f)) files.push(path.join(dir, f));
    }
    for (const f of files.filter((f) => f !== 'src/config.ts')) {
      const text = await readFile(path.join(REPO, f), 'utf8');
      if (/\benv\s*(\.\s*ATLAS_|\[\s*['"`]ATLAS_)/.test(text)) offenders.push(f);
    }
    expect(offenders).toEqual([]);
  });

  it('README lists every variable, with its default and the flag that overrides it, and no other', async () => {
    const readme = await readFile(path.join(REPO, 'README.md'), 'utf8');
    const rows = new Map([...readme.matchAll(/^\| `(ATLAS_[A-Z_]+)` \|(.*)$/gm)].map((m) => [m[1], m[2]]));
    expect([...rows.keys()].sort()).toEqual(VARIABLES.map((v) => v.name).sort());
    for (const v of VARIABLES) {
      const cells = rows.get(v.name)!.split(' | ').map((c) => c.replace(/\|\s*$/, '').trim());
      expect(cells, v.name).toEqual([v.meaning, v.default, v.flag]);
    }
    const mentioned = new Set([...readme.matchAll(/\bATLAS_[A-Z_]+\b/g)].map((m) => m[0]));
    expect([...mentioned].filter((n) => !rows.has(n))).toEqual([]);
  });
});

/** A provider that cannot start here, so that choosing it shows as a fallback notice; undefined if all start. */
async function missingProvider(): Promise<'cuda' | 'webgpu' | undefined> {
  for (const ep of ['cuda', 'webgpu'] as const) if (!(await probeProvider(ep)).available) return ep;
  return undefined;
}

describe('ATLAS_EP reaches the pipeline', () => {
  it('is used when no provider is asked for, and a provider asked for beats it', async () => {
    const p = await testProject();
    const run = (extra: Parameters<typeof runPipeline>[0]['provider'], lines: string[]) =>
      runPipeline({ specPath: p.spec, projectRoot: p.root, dataDir: p.data, cacheDir: p.cache, dryRun: true, provider: extra, reporter: { log: (l) => lines.push(l) } });
    const saved = process.env.ATLAS_EP;
    const cpuKeys = (await run('cpu', [])).steps.map((s) => s.key);
    const missing = await missingProvider();
    const ep = missing ?? 'webgpu';
    try {
      process.env.ATLAS_EP = ep;
      const fromVariable: string[] = [];
      const viaVariable = await run(undefined, fromVariable);
      const fromFlag: string[] = [];
      const viaFlag = await run('cpu', fromFlag);
      if (missing) {
        // The variable was followed: the provider was tried and fell back.
        expect(fromVariable).toContain(`${ep} is not available here (${(await probeProvider(ep)).reason}); running on the CPU`);
        expect(viaVariable.steps.map((s) => s.key)).toEqual(cpuKeys);
      } else {
        // The provider is part of every key.
        expect(viaVariable.steps.every((s, k) => s.key !== cpuKeys[k])).toBe(true);
      }
      expect(fromFlag.filter((l) => l.includes('not available'))).toEqual([]);
      expect(viaFlag.steps.map((s) => s.key)).toEqual(cpuKeys);
      process.env.ATLAS_EP = 'foo';
      await expect(run(undefined, [])).rejects.toThrow("unknown execution provider 'foo' (ATLAS_EP or --ep): use cpu, webgpu, cuda, auto");
    } finally {
      if (saved === undefined) delete process.env.ATLAS_EP;
      else process.env.ATLAS_EP = saved;
    }
  });

  it('atlas compute follows ATLAS_EP without --ep, and --ep beats it; bad values are one-line errors', async () => {
    const p = await testProject();
    const missing = await missingProvider();
    const atlas = async (env: Record<string, string>, ...args: string[]) => {
      try {
        const { stderr } = await exec(process.execPath, [CLI, 'compute', p.spec, '--dry-run', ...args], { cwd: p.root, env: { ...process.env, ATLAS_DATA: p.data, ATLAS_CACHE: p.cache, ...env } });
        return { code: 0, stderr };
      } catch (err) {
        const e = err as { code: number; stderr: string };
        return { code: e.code, stderr: e.stderr };
      }
    };
    if (missing) {
      const viaVariable = await atlas({ ATLAS_EP: missing });
      expect(viaVariable.code).toBe(0);
      expect(viaVariable.stderr).toMatch(new RegExp(`${missing} is not available here \\(.+\\); running on the CPU`));
      const viaFlag = await atlas({ ATLAS_EP: missing }, '--ep', 'cpu');
      expect(viaFlag.code).toBe(0);
      expect(viaFlag.stderr).not.toMatch(/not available/);
    } else {
      console.log('every provider starts here: nothing falls back, so the CLI check of ATLAS_EP is left to the pipeline test');
    }
    for (const [env, message] of [
      [{ ATLAS_EP: 'foo' }, "atlas: error: unknown execution provider 'foo' (ATLAS_EP or --ep): use cpu, webgpu, cuda, auto"],
      [{ ATLAS_DEBUG: 'maybe' }, "atlas: error: ATLAS_DEBUG='maybe': use 1 or 0 (or true, yes, on, false, no, off)"],
    ] as const) {
      const r = await atlas(env);
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toEqual([message]);
    }
    // A misspelt variable is named rather than silently ignored.
    const typo = await atlas({ ATLAS_CAHCE: '/tmp/elsewhere' });
    expect(typo.code).toBe(0);
    expect(typo.stderr).toMatch(/ATLAS_CAHCE is set but Atlas reads no such variable/);
  });

  it('atlas compute --data and --cache beat ATLAS_DATA and ATLAS_CACHE', async () => {
    const p = await testProject();
    const { stderr } = await exec(process.execPath, [CLI, 'compute', p.spec, '--dry-run', '--data', p.data, '--cache', p.cache], {
      cwd: p.root, env: { ...process.env, ATLAS_DATA: '/nonexistent/data', ATLAS_CACHE: '/nonexistent/cache' },
    });
    expect(stderr).toMatch(/2 step\(s\) would run/);
  });
});
