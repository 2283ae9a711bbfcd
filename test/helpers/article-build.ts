// `astro build` of content/article.mdx against a fixture spec and data directory (article-fixture.ts), into
// `<tmp>/dist`, its output streamed to stderr. The build gets its own public folder and Astro cache (a config in
// `tmp` that extends the project's): the experiments loader prunes public/_atlas to the images of the spec it builds,
// so a build of the real article running at the same time in this checkout would otherwise delete this one's images,
// and the other way round.
import { spawn } from 'node:child_process';
import { cp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { articleFixtureData } from './article-fixture.ts';

const REPO = path.resolve(import.meta.dirname, '..', '..');
const ASTRO = path.join(REPO, 'node_modules', 'astro', 'bin', 'astro.mjs');

/** Vitest puts Vite's import.meta.env (BASE_URL '/', MODE, …) into process.env; a child Astro build would take that
 * BASE_URL over the configured base, so the child gets the environment without them. */
function withoutViteEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { BASE_URL: _b, MODE: _m, DEV: _d, PROD: _p, SSR: _s, ...rest } = env;
  return rest;
}

export interface ArticleBuild {
  /** the experiment spec (its paths relative to the fixture data directory) */
  spec: string;
  /** the step cache (ATLAS_CACHE) */
  cache: string;
  /** the site's base path (ATLAS_BASE) */
  base: string;
}

/** Builds the article and returns its dist folder. */
export async function buildArticle(tmp: string, { spec, cache, base }: ArticleBuild): Promise<string> {
  const outDir = path.join(tmp, 'dist');
  const dataDir = await articleFixtureData(path.join(tmp, 'data'));
  const publicDir = path.join(tmp, 'public');
  // Everything of public/ but the loader's published images (_atlas), which are the other spec's.
  await cp(path.join(REPO, 'public'), publicDir, { recursive: true, filter: (src) => path.relative(path.join(REPO, 'public'), src).split(path.sep)[0] !== '_atlas' });
  const config = path.join(tmp, 'astro.config.mjs');
  await writeFile(config, `import config from ${JSON.stringify(pathToFileURL(path.join(REPO, 'astro.config.mjs')).href)};\n` +
    `export default { ...config, publicDir: ${JSON.stringify(publicDir)}, cacheDir: ${JSON.stringify(path.join(tmp, 'astro-cache'))} };\n`);
  const env = { ATLAS_SPEC: spec, ATLAS_DATA: dataDir, ATLAS_CACHE: cache, ATLAS_BASE: base, ATLAS_OUT: outDir };
  process.stderr.write(`article build: ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')} astro build\n`);
  await new Promise<void>((resolve, reject) => {
    // Astro resolves --config against the root.
    const child = spawn(process.execPath, [ASTRO, 'build', '--config', path.relative(REPO, config)], {
      cwd: REPO,
      env: { ...withoutViteEnv(process.env), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let tail = '';
    const forward = (chunk: Buffer) => {
      process.stderr.write(chunk);
      tail = (tail + chunk.toString()).slice(-4000);
    };
    child.stdout.on('data', forward);
    child.stderr.on('data', forward);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`astro build failed (${signal ?? `exit ${code}`}):\n${tail}`));
    });
  });
  return outDir;
}
