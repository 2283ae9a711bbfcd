// Every ATLAS_* environment variable Atlas reads is declared and read here, so there is one precedence everywhere:
// a flag (or the matching option of the TypeScript API) over the variable over the default. An empty variable counts
// as unset, so `ATLAS_EP= npm run build` means the default rather than an error. A value that cannot be used is an
// error naming the variable and what it accepts, never a silent fallback.
// Imported by astro.config.mjs and the compute layer alike, so it imports nothing heavier than node:path.
import path from 'node:path';
import type { ProviderChoice } from './compute/runtime/execution-provider.ts';

export type Env = Readonly<Record<string, string | undefined>>;

export interface Variable {
  name: string;
  meaning: string;
  /** the default, as README states it */
  default: string;
  /** what overrides the variable, as README states it */
  flag: string;
  /** who reads it: the build and the `atlas` command, `npm run bench`, or only the tests */
  scope: 'build' | 'bench' | 'test';
}

export const VARIABLES = [
  { name: 'ATLAS_DATA', scope: 'build', meaning: 'data directory: the folder with models/ and images/ that spec paths are relative to', default: '`data/` in the project', flag: '`--data` (`atlas compute`, `atlas analyse`)' },
  { name: 'ATLAS_CACHE', scope: 'build', meaning: 'compute cache (one folder per step kind and key)', default: '`.cache/atlas/` in the project', flag: '`--cache` (`atlas compute`, `atlas analyse`)' },
  { name: 'ATLAS_MIRROR', scope: 'build', meaning: "where `atlas fetch` gets the data manifest's files instead of their public URLs: a base URL (`http://host/shared/`) or a folder laid out like the data directory; the only source of files that have no public URL", default: "unset: each file's public URL", flag: '`--mirror` (`atlas fetch`)' },
  { name: 'ATLAS_EP', scope: 'build', meaning: 'onnxruntime execution provider: `cpu`, `webgpu`, `cuda` or `auto`', default: '`cpu`', flag: '`--ep` (every `atlas` command, `npm run bench`)' },
  { name: 'ATLAS_SPEC', scope: 'build', meaning: 'the experiment spec the site build computes and `atlas compute` runs', default: '`content/article.experiments.yaml`', flag: 'the `[spec]` argument of `atlas compute` / `atlas analyse`' },
  { name: 'ATLAS_ARTICLE', scope: 'build', meaning: 'the MDX article whose citations, figures and cross-references are indexed', default: '`content/article.mdx`', flag: '(none)' },
  { name: 'ATLAS_BIB', scope: 'build', meaning: "the article's BibTeX bibliography", default: '`content/references.bib`', flag: '(none)' },
  { name: 'ATLAS_BASE', scope: 'build', meaning: 'URL path the site is served under (starts and, by convention, ends with `/`)', default: '`/`', flag: '`astro build --base`, `npm run bench -- --base`' },
  { name: 'ATLAS_OUT', scope: 'build', meaning: 'where `astro build` writes the site', default: '`dist/`', flag: '`astro build --outDir`' },
  { name: 'ATLAS_QUEUE', scope: 'build', meaning: 'a Redis server (`redis://host:port`) whose job queue spreads the feature visualization and attack steps over `atlas worker` processes, on this machine or others', default: 'unset: every step computes in this process', flag: '`--queue` (`atlas compute`, `atlas worker`)' },
  { name: 'ATLAS_DEBUG', scope: 'build', meaning: "`1` (or `true`/`yes`/`on`): an `atlas` error prints its stack trace after the one-line message", default: 'off', flag: '(none)' },
  { name: 'ATLAS_MODELS', scope: 'bench', meaning: 'benchmarks only: folder of the models `npm run bench` times', default: '`$ATLAS_SHARED/models`', flag: '`npm run bench -- --models-dir`' },
  { name: 'ATLAS_SHARED', scope: 'test', meaning: 'tests and benchmarks: the shared data folder (models, images, golden values)', default: '`../shared` beside the checkout', flag: '(none)' },
  { name: 'ATLAS_BROWSER_DIST', scope: 'test', meaning: 'tests only: the browser test uses this built site instead of building the article itself', default: 'unset: the test builds it', flag: '(none)' },
  { name: 'ATLAS_TEST_REDIS', scope: 'test', meaning: 'tests only: the Redis server (`redis://127.0.0.1:port`, its databases 1 to 15 free) the job-queue tests use instead of starting their own', default: 'unset: they start a redis-server on a free loopback port, or skip without one', flag: '(none)' },
  { name: 'ATLAS_BROWSER_BASE', scope: 'test', meaning: 'tests only: the `base` that ATLAS_BROWSER_DIST was built with', default: '`/atlas/`', flag: '(none)' },
] as const satisfies readonly Variable[];

export type VariableName = (typeof VARIABLES)[number]['name'];

/** Execution providers `--ep` and ATLAS_EP accept (test/config.test.ts checks it against the runtime's list). */
export const PROVIDER_NAMES = ['cpu', 'webgpu', 'cuda', 'auto'] as const satisfies readonly ProviderChoice[];

const REPO_ROOT = path.resolve(import.meta.dirname, '..');

/** The variable's value, or undefined when it is unset or empty. */
export function variable(name: VariableName, env: Env = process.env): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

/** flag over variable over default; `check` turns a raw value into the setting or says what is wrong with it. */
function resolve<T>(name: VariableName, flag: string | undefined, env: Env, fallback: () => T, check: (raw: string) => T): T {
  if (flag !== undefined) return check(flag);
  const raw = variable(name, env);
  return raw === undefined ? fallback() : check(raw);
}

function invalid(name: VariableName, raw: string, why: string): Error {
  return new Error(`${name}='${raw}': ${why}`);
}

/** Where models and images live. */
export function dataDir(projectRoot: string, flag?: string, env: Env = process.env): string {
  return path.resolve(resolve('ATLAS_DATA', flag, env, () => path.join(projectRoot, 'data'), (v) => v));
}

export function cacheDir(projectRoot: string, flag?: string, env: Env = process.env): string {
  return path.resolve(resolve('ATLAS_CACHE', flag, env, () => path.join(projectRoot, '.cache', 'atlas'), (v) => v));
}

/**
 * Where `atlas fetch` downloads from instead of each file's public URL: an http(s) base URL, a file: URL or a folder
 * (relative to the working directory), kept as given; undefined when unset.
 */
export function mirror(flag?: string, env: Env = process.env): string | undefined {
  return resolve('ATLAS_MIRROR', flag, env, () => undefined, (v) => {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v) && !/^(https?|file):\/\//i.test(v)) {
      throw invalid('ATLAS_MIRROR', v, 'use an http(s) or file: URL, or a folder');
    }
    return v;
  });
}

/** The job queue's Redis URL, or undefined: compute everything in this process. */
export function queueUrl(flag?: string, env: Env = process.env): string | undefined {
  return resolve('ATLAS_QUEUE', flag, env, () => undefined, (v) => {
    let url: URL;
    try {
      url = new URL(v);
    } catch {
      throw invalid('ATLAS_QUEUE', v, 'expected a Redis URL such as redis://127.0.0.1:6379');
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw invalid('ATLAS_QUEUE', v, 'expected a redis:// (or rediss://) URL such as redis://127.0.0.1:6379');
    if (!url.hostname) throw invalid('ATLAS_QUEUE', v, 'the URL names no host (redis://host:port)');
    return v;
  });
}

/** The execution provider a run asks for (a provider that cannot start later falls back to the CPU, with a notice). */
export function providerChoice(flag?: string, env: Env = process.env): ProviderChoice {
  return resolve('ATLAS_EP', flag, env, () => 'cpu' as ProviderChoice, (v) => {
    if (!(PROVIDER_NAMES as readonly string[]).includes(v)) {
      throw new Error(`unknown execution provider '${v}' (ATLAS_EP or --ep): use ${PROVIDER_NAMES.join(', ')}`);
    }
    return v as ProviderChoice;
  });
}

/** The experiment spec, relative to the project root unless absolute. */
export function specPath(flag?: string, env: Env = process.env): string {
  return resolve('ATLAS_SPEC', flag, env, () => 'content/article.experiments.yaml', (v) => v);
}

/** The article, relative to the working directory unless absolute. */
export function articlePath(flag?: string, env: Env = process.env): string {
  return resolve('ATLAS_ARTICLE', flag, env, () => 'content/article.mdx', (v) => v);
}

export function bibPath(flag?: string, env: Env = process.env): string {
  return resolve('ATLAS_BIB', flag, env, () => 'content/references.bib', (v) => v);
}

/** The site's base path. Astro accepts a base without a leading slash but then builds links that miss. */
export function siteBase(flag?: string, env: Env = process.env): string {
  return resolve('ATLAS_BASE', flag, env, () => '/', (v) => {
    if (!v.startsWith('/')) throw invalid('ATLAS_BASE', v, `a base path starts with '/' (e.g. /atlas/)`);
    return v;
  });
}

export function outDir(flag?: string, env: Env = process.env): string {
  return resolve('ATLAS_OUT', flag, env, () => './dist', (v) => v);
}

const TRUE = ['1', 'true', 'yes', 'on'];
const FALSE = ['0', 'false', 'no', 'off'];

export function debug(env: Env = process.env): boolean {
  return resolve('ATLAS_DEBUG', undefined, env, () => false, (v) => {
    if (TRUE.includes(v.toLowerCase())) return true;
    if (FALSE.includes(v.toLowerCase())) return false;
    throw invalid('ATLAS_DEBUG', v, `use 1 or 0 (or ${[...TRUE.slice(1), ...FALSE.slice(1)].join(', ')})`);
  });
}

export function sharedDir(env: Env = process.env): string {
  return path.resolve(resolve('ATLAS_SHARED', undefined, env, () => path.join(REPO_ROOT, '..', 'shared'), (v) => v));
}

export function modelsDir(flag?: string, env: Env = process.env): string {
  return path.resolve(resolve('ATLAS_MODELS', flag, env, () => path.join(sharedDir(env), 'models'), (v) => v));
}

export function browserDist(env: Env = process.env): string | undefined {
  return variable('ATLAS_BROWSER_DIST', env);
}

/** The Redis server the queue tests use; undefined: they start their own. */
export function testRedis(env: Env = process.env): string | undefined {
  return variable('ATLAS_TEST_REDIS', env);
}

export function browserBase(env: Env = process.env): string {
  return resolve('ATLAS_BROWSER_BASE', undefined, env, () => '/atlas/', (v) => v);
}

/**
 * ATLAS_* variables in the environment that Atlas does not read: almost always a typo (ATLAS_CAHCE) whose effect the
 * user would otherwise wait a whole build to miss.
 */
export function unknownVariables(env: Env = process.env): string[] {
  const known = new Set<string>(VARIABLES.map((v) => v.name));
  return Object.keys(env).filter((k) => k.startsWith('ATLAS_') && !known.has(k)).sort();
}

export function unknownVariableNotice(name: string): string {
  return `${name} is set but Atlas reads no such variable (known: ${VARIABLES.map((v) => v.name).join(', ')}; README, "Configuration")`;
}
