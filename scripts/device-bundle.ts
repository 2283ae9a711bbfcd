// Packs what the compute layer needs on a machine with a GPU but no Node.js and no network (the device machine of
// issue 7's benchmarks): this Node binary and the node_modules that src/compute, src/cli and bench import, with their
// dependencies, for this platform only (onnxruntime-node and sharp ship binaries for every OS; only ours travel).
// Astro and the site's packages stay behind: the device runs benchmarks and the compute core, not the site build.
//
//   node scripts/device-bundle.ts [out.tar.xz]      (default device-bundle/bundle.tar.xz, ignored by git)
//
// On the device: tar -xJf device-bundle/bundle.tar.xz && PATH=$PWD/.device-node/bin:$PATH node bench/run.ts …
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const out = path.resolve(process.argv[2] ?? path.join(root, 'device-bundle', 'bundle.tar.xz'));
// The packages the compute core, the CLI and the benchmarks import (bare specifiers under src/compute, src/cli, bench).
const ENTRY = ['onnxruntime-node', 'onnx-proto', 'sharp', 'fft.js', 'pure-rand', 'zod', 'yaml', 'commander', 'cli-progress', 'esbuild'];
const platform = `${process.platform}-${process.arch}`; // sharp's naming: linux-x64

/** Every installed package reachable from ENTRY through dependencies and (installed) optional dependencies. */
function closure(): string[] {
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    const dir = path.join(root, 'node_modules', name);
    if (!existsSync(path.join(dir, 'package.json'))) return; // an optional dependency for another platform
    seen.add(name);
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) visit(dep);
  };
  for (const name of ENTRY) {
    if (!existsSync(path.join(root, 'node_modules', name))) throw new Error(`node_modules/${name} is missing: run npm ci first`);
    visit(name);
  }
  // sharp's optional binaries: keep ours, drop the other platforms'.
  return [...seen].filter((n) => !n.startsWith('@img/sharp-') || n.endsWith(platform)).sort();
}

const packages = closure();
const nodeBin = process.execPath;
const [major] = process.versions.node.split('.').map(Number);
if (major < 22) throw new Error(`bundle Node ≥ 22.12 (this is ${process.version}): put Node 24 first on PATH`);
// onnxruntime-node's binaries for other systems are most of its size.
const ortPlatform = `node_modules/onnxruntime-node/bin/napi-v6/${process.platform}/${process.arch}`;
const excludes = ['node_modules/onnxruntime-node/bin/napi-v6/*'].map((p) => `--exclude=${p}`);
mkdirSync(path.dirname(out), { recursive: true });
const staging = path.join(path.dirname(out), 'staging');
execFileSync('rm', ['-rf', staging]);
mkdirSync(path.join(staging, '.device-node', 'bin'), { recursive: true });
execFileSync('cp', [nodeBin, path.join(staging, '.device-node', 'bin', 'node')]);
const files = packages.map((p) => `node_modules/${p}`);
execFileSync('tar', ['-cf', path.join(staging, 'modules.tar'), ...excludes, ...files], { cwd: root });
execFileSync('tar', ['-rf', path.join(staging, 'modules.tar'), ortPlatform], { cwd: root });
execFileSync('tar', ['-xf', 'modules.tar'], { cwd: staging });
execFileSync('rm', [path.join(staging, 'modules.tar')]);
process.stderr.write(`packing Node ${process.version} and ${packages.length} packages (xz, about a minute)…\n`);
execFileSync('tar', ['-cJf', out, '-C', staging, '.device-node', 'node_modules'], { env: { ...process.env, XZ_OPT: '-6 -T0' } });
execFileSync('rm', ['-rf', staging]);
const mib = statSync(out).size / 2 ** 20;
process.stdout.write(`${path.relative(process.cwd(), out)}: ${mib.toFixed(1)} MiB (the device tool carries at most 64 MiB)\n`);
if (mib > 64) process.exitCode = 1;
