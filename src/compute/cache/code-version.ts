// A step's code version: what its outputs depend on in code. It hashes the modules the step runs — its entry
// modules and everything they import, followed by esbuild, which resolves imports as Node does — the data files they
// import (imagenet-hierarchy.json), and the version of every package they import (onnxruntime-node and sharp compute
// numbers; a new version may compute other bits). A module is hashed as esbuild prints it with types and comments
// removed, so editing a comment or re-flowing a line does not re-run a five-minute feature visualization, while any
// change to what runs does. esbuild is the reason for the dependency: its metafile is the import graph, and its
// printer is a TypeScript normal form; writing either by hand would be a parser.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { build, transform } from 'esbuild';
import { sha256 } from './hash.ts';

/** The repository root: module paths in a code version are relative to it, so a checkout's location is not part of a key. */
const ROOT = path.resolve(import.meta.dirname, '..', '..', '..');

// Node runs the modules by stripping types, which keeps every import statement (`import { type X } from './x.ts'`
// still loads x.ts): esbuild reads them the same way, whatever tsconfig.json a checkout has.
const TSCONFIG = { compilerOptions: { verbatimModuleSyntax: true } };

export interface CodeVersion {
  /** sha256 over every entry of `modules` and `packages` */
  hash: string;
  /** repository-relative path → sha256 of the module's normal form (or of the data file's bytes) */
  modules: Record<string, string>;
  /** package name → version, for every package a module of the closure imports */
  packages: Record<string, string>;
}

const versions = new Map<string, Promise<CodeVersion>>();
const moduleHashes = new Map<string, Promise<string>>();

/** The code version of the import closure of `entries` (absolute paths of modules). Computed once per process. */
export function codeVersion(entries: readonly string[]): Promise<CodeVersion> {
  const id = [...new Set(entries.map((e) => path.resolve(e)))].sort().join('\n');
  let v = versions.get(id);
  if (!v) versions.set(id, (v = computeCodeVersion(id.split('\n'))));
  return v;
}

async function computeCodeVersion(entries: string[]): Promise<CodeVersion> {
  const result = await build({
    entryPoints: entries, absWorkingDir: ROOT, bundle: true, metafile: true, write: false, outdir: 'out',
    platform: 'node', format: 'esm', packages: 'external', logLevel: 'silent', tsconfigRaw: TSCONFIG,
  });
  const modules: Record<string, string> = {};
  const packages: Record<string, string> = {};
  for (const [file, input] of Object.entries(result.metafile!.inputs).sort(([a], [b]) => a.localeCompare(b))) {
    modules[file] = await moduleHash(path.join(ROOT, file));
    for (const im of input.imports) {
      if (!im.external || im.path.startsWith('node:')) continue;
      if (im.path.startsWith('.')) throw new Error(`code version: ${file} imports ${im.path}, which esbuild could not follow`);
      const name = packageName(im.path);
      packages[name] ??= await packageVersion(name, path.dirname(path.join(ROOT, file)));
    }
  }
  const sortedPackages = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => a.localeCompare(b)));
  const hash = sha256(JSON.stringify({ modules, packages: sortedPackages }));
  return { hash, modules, packages: sortedPackages };
}

function moduleHash(file: string): Promise<string> {
  let h = moduleHashes.get(file);
  if (!h) {
    moduleHashes.set(file, (h = (async () => {
      const bytes = await readFile(file);
      if (!/\.[cm]?[jt]s$/.test(file)) return sha256(bytes);
      const { code } = await transform(bytes.toString('utf8'), { loader: file.endsWith('ts') ? 'ts' : 'js', format: 'esm', legalComments: 'none', logLevel: 'silent', tsconfigRaw: TSCONFIG });
      return sha256(code);
    })()));
  }
  return h;
}

/** `pure-rand/distribution/x` → `pure-rand`; `@scope/pkg/sub` → `@scope/pkg`. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** The installed version of a package, found as Node finds it: in the nearest node_modules above the importer. */
async function packageVersion(name: string, from: string): Promise<string> {
  for (let dir = from; ; dir = path.dirname(dir)) {
    try {
      return JSON.parse(await readFile(path.join(dir, 'node_modules', name, 'package.json'), 'utf8')).version;
    } catch {
      if (path.dirname(dir) === dir) throw new Error(`code version: package '${name}' (imported under ${from}) is not installed`);
    }
  }
}
