// Several builds on one cache at once (two terminals, `npm run dev` beside `npm run compute`, CI jobs sharing a
// cache): every build finishes, every entry is computed once, index.json keeps every build's records, and nothing
// temporary is left behind.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CacheStore } from '../src/compute/cache/store.ts';
import { runPipeline } from '../src/compute/pipeline/run-pipeline.ts';
import { testProject } from './helpers/project.ts';

const exec = promisify(execFile);
const STORE = path.resolve(import.meta.dirname, '../src/compute/cache/store.ts');
const CLI = path.resolve(import.meta.dirname, '../src/cli/atlas.ts');

/** Run a module body in a fresh Node process (a separate pid, as a second build would be). */
function node(body: string, ...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return exec(process.execPath, ['--input-type=module', '-e', `import { CacheStore } from ${JSON.stringify(STORE)};\n${body}`, ...args]);
}

/** Everything in the cache that is not an entry, a manifest'd file or index.json. */
async function leftovers(root: string): Promise<string[]> {
  const all = (await readdir(root, { recursive: true })).map(String);
  return all.filter((f) => /\.lock|\.draft$|(^|\/)\.tmp-|(^|\/)\.index-/.test(f));
}

const tmp = () => mkdtemp(path.join(os.tmpdir(), 'atlas-concurrent-'));

describe('cache store under concurrent writers', () => {
  it('merges index.json updates from concurrent processes instead of losing them', async () => {
    const root = await tmp();
    const writers = 4;
    const each = 15;
    await Promise.all(Array.from({ length: writers }, (_, w) => node(`
      const store = new CacheStore(process.argv[1]);
      for (let i = 0; i < ${each}; i++) await store.updateIndex({ ['w${w}_' + i]: { kind: 'k', key: String(i), inputs: { w: ${w} } } });
    `, root)));
    const index = await new CacheStore(root).readIndex();
    expect(Object.keys(index)).toHaveLength(writers * each);
    expect(await leftovers(root)).toEqual([]);
  });

  it('lets exactly one of several processes compute a claimed entry; the others find it', async () => {
    const root = await tmp();
    const log = path.join(root, 'computed.log');
    const results = await Promise.all(Array.from({ length: 4 }, () => node(`
      import { appendFile } from 'node:fs/promises';
      const store = new CacheStore(process.argv[1]);
      const claim = await store.claim('attack', 'abc');
      try {
        if ((await store.lookup('attack', 'abc')).status === 'hit') { console.log('found'); }
        else {
          await appendFile(process.argv[2], process.pid + '\\n');
          await new Promise((r) => setTimeout(r, 300));
          await store.put('attack', 'abc', { x: 1 }, new Map([['out.json', new TextEncoder().encode('{"pid":' + process.pid + '}')]]));
          console.log('computed');
        }
      } finally { await claim.release(); }
    `, root, log)));
    expect(results.map((r) => r.stdout.trim()).sort()).toEqual(['computed', 'found', 'found', 'found']);
    expect((await readFile(log, 'utf8')).trim().split('\n')).toHaveLength(1);
    expect((await new CacheStore(root).lookup('attack', 'abc')).status).toBe('hit');
    expect(await leftovers(root)).toEqual([]);
  });

  it('takes over a claim whose process died, and sweep removes what dead builds left', async () => {
    const root = await tmp();
    const store = new CacheStore(root);
    await mkdir(path.join(root, 'attack'), { recursive: true });
    const dead = JSON.stringify({ pid: 999999999, host: os.hostname(), since: 0, serial: 1 });
    await writeFile(path.join(root, 'attack', 'abc.lock'), dead);
    const waits: number[] = [];
    const claim = await store.claim('attack', 'abc', (o) => waits.push(o.pid));
    expect(claim.waited).toBe(false);
    expect(waits).toEqual([]);
    await claim.release();
    expect(existsSync(path.join(root, 'attack', 'abc.lock'))).toBe(false);

    for (const f of ['attack/def.lock', 'index.lock']) await writeFile(path.join(root, f), dead);
    await writeFile(path.join(root, 'attack', 'def.lock.999999999-1.draft'), dead);
    await writeFile(path.join(root, '.index-999999999-1.json'), '{');
    // A live holder's claim stays.
    await writeFile(path.join(root, 'attack', 'live.lock'), JSON.stringify({ pid: process.pid, host: os.hostname(), since: 0, serial: 0 }));
    expect(await store.sweep()).toBe(4);
    expect(await leftovers(root)).toEqual(['attack/live.lock']);
  });

  it('a put onto an existing entry replaces it, also when several race', async () => {
    const root = await tmp();
    const store = new CacheStore(root);
    const bytes = (s: string) => new Map([['out.json', new TextEncoder().encode(s)]]);
    await store.put('attack', 'abc', {}, bytes('"old"'));
    await Promise.all(['"a"', '"b"', '"c"'].map((s) => store.put('attack', 'abc', {}, bytes(s))));
    const found = await store.lookup('attack', 'abc');
    expect(found.status).toBe('hit');
    expect(['"a"', '"b"', '"c"']).toContain(await readFile(path.join(root, 'attack', 'abc', 'out.json'), 'utf8'));
    expect(await leftovers(root)).toEqual([]);
  });

  it('two processes putting the same entry 300 times each: no put fails, no lookup after a put misses', async () => {
    const root = await tmp();
    const runs = await Promise.all([0, 1].map(() => node(`
      const store = new CacheStore(process.argv[1]);
      const files = new Map([['out.json', new TextEncoder().encode('{"same":true}')], ['x.bin', new Uint8Array(4096).fill(7)]]);
      let failures = 0, misses = 0;
      for (let i = 0; i < 300; i++) {
        try { await store.put('attack', 'same', { n: 1 }, files); } catch { failures++; continue; }
        if ((await store.lookup('attack', 'same')).status !== 'hit') misses++;
      }
      console.log(JSON.stringify({ failures, misses }));
    `, root)));
    expect(runs.map((r) => JSON.parse(r.stdout))).toEqual([{ failures: 0, misses: 0 }, { failures: 0, misses: 0 }]);
    expect(await leftovers(root)).toEqual([]);
  }, 120_000);
});

describe('two atlas compute at once on one cache', () => {
  it('both finish, each step is computed once, and a third build finds everything cached', async () => {
    const p = await testProject();
    const env = { ...process.env, ATLAS_DATA: p.data, ATLAS_CACHE: p.cache };
    const build = () => new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, 'compute', p.spec], { env, cwd: p.root });
      let stderr = '';
      child.stderr.on('data', (c) => (stderr += c));
      child.on('exit', (code) => resolve({ code, stderr }));
    });
    const [a, b] = await Promise.all([build(), build()]);
    expect([a.code, b.code], a.stderr + b.stderr).toEqual([0, 0]);
    for (const id of ['weasel_to_truck', 'panda_untargeted']) {
      const done = (a.stderr + b.stderr).match(new RegExp(`done attack:${id} `, 'g')) ?? [];
      expect(done, `${id} computed by both builds`).toHaveLength(1);
    }
    // Both builds report the whole spec, whichever computed a step.
    for (const r of [a, b]) expect(r.stderr).toMatch(/atlas: \d step\(s\) run, \d cached/);
    expect(a.stderr + b.stderr).toMatch(/waiting for another build \(pid \d+ on .+\) that is computing it/);

    const third = await runPipeline({ specPath: p.spec, projectRoot: p.root, dataDir: p.data, cacheDir: p.cache });
    expect(third.steps.map((s) => s.status)).toEqual(['cached', 'cached']);
    const index = await new CacheStore(p.cache).readIndex();
    expect(Object.keys(index).sort()).toEqual(['panda_untargeted', 'weasel_to_truck']);
    expect(await leftovers(p.cache)).toEqual([]);
  });
});
