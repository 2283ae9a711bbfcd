// `--out` never deletes or overwrites what the command did not write: every refusal is one line, before any
// computation, and leaves the folder exactly as it was. Refusals are checked before the model is even read: each CLI
// case names a model that does not exist, so an error about --out proves the check came first.
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { OUTPUT_MANIFEST, OutputDir } from '../src/compute/io/output-dir.ts';
import { atlas, CLI, expectOneLineError } from './helpers/atlas-cli.ts';
import { shared } from './helpers/shared.ts';

const MODEL = () => shared('models', 'mobilenetv2.onnx');
const WEASEL = 'n02441942';
const tmp = () => mkdtemp(path.join(os.tmpdir(), 'atlas-out-'));

/** A folder of the user's: a photograph and a note. */
async function userFolder(): Promise<string> {
  const dir = await tmp();
  await copyFile(shared('images', 'imagenet-samples', `${WEASEL}.jpg`), path.join(dir, `${WEASEL}.jpg`));
  await writeFile(path.join(dir, 'notes.txt'), 'mine');
  return dir;
}

/** Every file under `dir` with its bytes, to show a refusal changed nothing. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out[path.relative(dir, path.join(e.parentPath, e.name))] = (await readFile(path.join(e.parentPath, e.name))).toString('base64');
  }
  return out;
}

describe('atlas attack/featurevis --out refuses what it did not write', () => {
  it('--images photos --out photos: the output would contain the input', async () => {
    const photos = await userFolder();
    const before = await snapshot(photos);
    const r = await atlas('attack', '--model', path.join(photos, 'missing.onnx'), '--images', photos, '--out', photos);
    expectOneLineError(r, /--out .* contains the input/);
    expect(await snapshot(photos)).toEqual(before);
    // A folder above the inputs holds them too, and --force does not change that.
    const parent = path.dirname(photos);
    const r2 = await atlas('attack', '--model', path.join(photos, 'missing.onnx'), '--images', path.join(photos, `${WEASEL}.jpg`), '--out', parent, '--force');
    expectOneLineError(r2, /contains the input/);
    expect(await snapshot(photos)).toEqual(before);
  });

  it('--out . in the folder of the inputs', async () => {
    const photos = await userFolder();
    const before = await snapshot(photos);
    const r = await promisify(execFile)(process.execPath, [CLI, 'attack', '--model', 'missing.onnx', '--images', `${WEASEL}.jpg`, '--out', '.'], { cwd: photos })
      .then(() => ({ code: 0, stderr: '' }), (err: { code: number; stderr: string }) => err);
    expectOneLineError(r, /--out .* contains the input/);
    expect(await snapshot(photos)).toEqual(before);
  });

  it('--out an existing file', async () => {
    const dir = await userFolder();
    const r = await atlas('featurevis', '--model', path.join(dir, 'missing.onnx'), '--neuron', 'features.14.conv.1:37', '--out', path.join(dir, 'notes.txt'));
    expectOneLineError(r, /--out .*notes\.txt is an existing file/);
    expect(await readFile(path.join(dir, 'notes.txt'), 'utf8')).toBe('mine');
  });

  it('--out a non-empty folder that is not an earlier output, with or without --force', async () => {
    const dir = await userFolder();
    const out = path.join(dir, 'results');
    await mkdir(out);
    await writeFile(path.join(out, 'results.json'), 'a file of the same name, written by someone else');
    const before = await snapshot(dir);
    for (const force of [[], ['--force']]) {
      expectOneLineError(await atlas('attack', '--model', path.join(dir, 'missing.onnx'), '--images', path.join(dir, `${WEASEL}.jpg`), '--out', out, ...force),
        /--out .*results is a folder with files atlas attack did not write/);
    }
    expect(await snapshot(dir)).toEqual(before);
  });

  it('--out an earlier output of another command', async () => {
    const dir = await tmp();
    const out = path.join(dir, 'fv');
    await mkdir(out);
    await writeFile(path.join(out, 'x.png'), 'png');
    await writeFile(path.join(out, OUTPUT_MANIFEST), JSON.stringify({ command: 'featurevis', files: ['x.png'] }));
    const before = await snapshot(dir);
    expectOneLineError(await atlas('attack', '--model', path.join(dir, 'missing.onnx'), '--input', path.join(dir, 'x.npy'), '--out', out, '--force'),
      /holds the output of atlas featurevis, not of atlas attack/);
    expect(await snapshot(dir)).toEqual(before);
  });

  it('a folder that cannot be written is reported before the computation', async () => {
    // root writes into a read-only folder anyway: /sys is not writable even for root.
    const root = process.getuid?.() === 0;
    const dir = await tmp();
    let out = '/sys/atlas-test/out';
    if (!root) {
      const locked = path.join(dir, 'locked');
      await mkdir(locked, { mode: 0o555 });
      out = path.join(locked, 'out');
    }
    const r = await atlas('attack', '--model', path.join(dir, 'missing.onnx'), '--images', shared('images', 'imagenet-samples', `${WEASEL}.jpg`), '--out', out);
    expectOneLineError(r, /cannot write --out .*out: (permission denied|operation not permitted|read-only file system)/);
  });

  it('an earlier output of the same command is replaced only with --force, and never with files it did not write', async () => {
    const dir = await tmp();
    const out = path.join(dir, 'adv');
    const args = ['attack', '--model', MODEL(), '--images', shared('images', 'imagenet-samples', `${WEASEL}.jpg`), '--steps', '1', '--out', out];
    const first = await atlas(...args);
    expect(first.code, first.stderr).toBe(0);
    const manifest = JSON.parse(await readFile(path.join(out, OUTPUT_MANIFEST), 'utf8'));
    expect(manifest.command).toBe('attack');
    expect([...manifest.files, OUTPUT_MANIFEST].sort()).toEqual((await readdir(out)).sort());
    expectOneLineError(await atlas(...args), /holds an earlier output of atlas attack; give --force/);
    await writeFile(path.join(out, 'my-notes.txt'), 'mine');
    expectOneLineError(await atlas(...args, '--force'), /did not write \(my-notes\.txt\)/);
    expect(await readFile(path.join(out, 'my-notes.txt'), 'utf8')).toBe('mine');
    await unlink(path.join(out, 'my-notes.txt'));
    const forced = await atlas(...args, '--force');
    expect(forced.code, forced.stderr).toBe(0);
    expect((await readdir(out)).sort()).toEqual([...manifest.files, OUTPUT_MANIFEST].sort());
    expect((await readdir(dir)).sort()).toEqual(['adv']); // no staging folder left behind
  }, 120_000);
});

describe('atlas analyse/patch --out add their own files and overwrite only their own', () => {
  it('refuses a polysemantic.json, fragility.json or patching.json they did not write, before reading anything', async () => {
    const dir = await userFolder();
    const missing = path.join(dir, 'missing.onnx');
    for (const name of ['polysemantic.json', 'fragility.json']) {
      const out = await tmp();
      await writeFile(path.join(out, name), '{"mine": true}');
      expectOneLineError(await atlas('analyse', '--model', missing, '--reference', dir, '--layer', 'features.17.conv.2', '--out', out),
        new RegExp(`--out .* already has a ${name.replace('.', '\\.')} that atlas analyse did not write`));
      expect(await readFile(path.join(out, name), 'utf8')).toBe('{"mine": true}');
    }
    const out = await tmp();
    await writeFile(path.join(out, 'patching.json'), '[]');
    expectOneLineError(await atlas('patch', '--model', missing, '--clean', dir, '--adversarial', dir, '--layer', 'features.17.conv.2', '--out', out),
      /--out .* already has a patching\.json that atlas patch did not write/);
    expect(await readFile(path.join(out, 'patching.json'), 'utf8')).toBe('[]');
  });
});

describe('OutputDir', () => {
  it('writes nothing over files that appear while the command computes', async () => {
    const dir = await tmp();
    const out = path.join(dir, 'out');
    const claim = await OutputDir.claim(out, { command: 'attack', inputs: [] });
    await mkdir(out);
    await writeFile(path.join(out, 'late.txt'), 'mine');
    await expect(claim.commit(new Map([['results.json', new Uint8Array([1])]]))).rejects.toThrow(/did not write/);
    expect(await readdir(dir)).toEqual(['out']);
    expect(await readdir(out)).toEqual(['late.txt']);
  });

  it('replacing an earlier output removes exactly the files its manifest lists', async () => {
    const dir = await tmp();
    const out = path.join(dir, 'out');
    await (await OutputDir.claim(out, { command: 'featurevis', inputs: [] })).commit(new Map([['a.png', new Uint8Array([1])], ['b.png', new Uint8Array([2])]]));
    const again = await OutputDir.claim(out, { command: 'featurevis', inputs: [], force: true });
    await again.commit(new Map([['c.png', new Uint8Array([3])]]));
    expect((await readdir(out)).sort()).toEqual([OUTPUT_MANIFEST, 'c.png']);
    expect(JSON.parse(await readFile(path.join(out, OUTPUT_MANIFEST), 'utf8'))).toEqual({ command: 'featurevis', files: ['c.png'] });
  });
});

describe('atlas grad --out', () => {
  it('creates a missing folder, and refuses an input or an existing file without --force', async () => {
    const dir = await tmp();
    const photo = shared('images', 'imagenet-samples', `${WEASEL}.jpg`);
    const out = path.join(dir, 'new', 'deeper', 'g.npy');
    const r = await atlas('grad', '--model', MODEL(), '--input', photo, '--objective', 'ce', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect((await readFile(out)).length).toBeGreaterThan(3 * 224 * 224 * 4);
    expectOneLineError(await atlas('grad', '--model', path.join(dir, 'missing.onnx'), '--input', photo, '--objective', 'ce', '--out', out), /g\.npy already exists; give --force/);
    const x = path.join(dir, 'x.npy');
    await writeFile(x, 'an input');
    expectOneLineError(await atlas('grad', '--model', path.join(dir, 'missing.onnx'), '--input', x, '--objective', 'ce', '--out', x, '--force'), /x\.npy is one of the inputs/);
    expect(await readFile(x, 'utf8')).toBe('an input');
  }, 60_000);
});
