// Where a command's results go, without harming what is already there. A command that writes a folder claims it
// before computing anything: the claim refuses an existing file, a folder that holds one of the command's inputs, and
// a non-empty folder that is not an earlier output of the same command (recognised by the manifest every output
// carries); it replaces an earlier output only when forced. Nothing is written until the end, and then atomically:
// the files go into a staging sibling created at claim time (so an unwritable location is reported before the
// computation, not after it), which is renamed into place. Files are only ever removed when a manifest lists them.
import { access, constants, lstat, mkdir, mkdtemp, readdir, readFile, realpath, rename, rm, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** The file that marks a folder as an output of an `atlas` command, listing what the command wrote there. */
export const OUTPUT_MANIFEST = 'atlas-output.json';

interface OutputManifest {
  command: string;
  files: string[];
}

export interface OutputClaim {
  /** which command writes the folder (`attack`): only an earlier output of this command may be replaced */
  command: string;
  /** the files and folders the command reads: the output may not contain any of them */
  inputs: readonly string[];
  /** replace an earlier output of the same command */
  force?: boolean;
  /** how the option is spelled in messages */
  flag?: string;
}

/** What the folder holds now: nothing, nothing yet, or an earlier output of the command (its files listed). */
type Existing = { kind: 'none' } | { kind: 'empty' } | { kind: 'previous'; files: string[] };

export class OutputDir {
  readonly dir: string;
  private readonly staging: string;
  private readonly claimed: OutputClaim;
  /** the outermost folder the claim created for `dir`'s parent, if any: removed again if nothing is written */
  private readonly created: string | undefined;

  private constructor(dir: string, staging: string, claimed: OutputClaim, created: string | undefined) {
    this.dir = dir;
    this.staging = staging;
    this.claimed = claimed;
    this.created = created;
  }

  /** Check `dir` as a place for this command's output and reserve a staging folder beside it; throws one line. */
  static async claim(dir: string, claim: OutputClaim): Promise<OutputDir> {
    const out = path.resolve(dir);
    await inspect(out, claim);
    await checkWritable(out, claim);
    let created: string | undefined;
    let staging: string;
    try {
      created = await mkdir(path.dirname(out), { recursive: true });
      staging = await mkdtemp(`${out}.partial-`);
    } catch (err) {
      throw cannotWrite(out, err, claim);
    }
    return new OutputDir(out, staging, claim, created);
  }

  /** Write the files and move them into place as one folder, with the manifest that marks it as this command's. */
  async commit(files: ReadonlyMap<string, Uint8Array>): Promise<void> {
    try {
      if (files.has(OUTPUT_MANIFEST)) throw new Error(`${OUTPUT_MANIFEST} is the output manifest's name`);
      for (const [name, bytes] of files) await writeFile(path.join(this.staging, name), bytes);
      const manifest: OutputManifest = { command: this.claimed.command, files: [...files.keys()].sort() };
      await writeFile(path.join(this.staging, OUTPUT_MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
      // Checked again: the folder may have changed while the command computed.
      const existing = await inspect(this.dir, this.claimed);
      if (existing.kind === 'previous') await removeListed(this.dir, existing.files, this.claimed);
      else if (existing.kind === 'empty') await rmdir(this.dir);
      await rename(this.staging, this.dir);
    } catch (err) {
      await this.abandon();
      throw err;
    }
  }

  /** Remove the staging folder (only ever holding what this run wrote), and the empty folders the claim made. */
  async abandon(): Promise<void> {
    await rm(this.staging, { recursive: true, force: true });
    if (this.created === undefined) return;
    for (let d = path.dirname(this.dir); d.length >= this.created.length; d = path.dirname(d)) {
      if (!(await rmdir(d).then(() => true, () => false))) break; // not empty: someone else's now
    }
  }
}

/**
 * Check `file` as the place for a command's single output file: not a folder, not one of the inputs, and not an
 * existing file unless forced; its folder may be missing (the command makes it when it writes) but must be creatable.
 * Throws one line.
 */
export async function claimOutputFile(file: string, claim: Omit<OutputClaim, 'command'>): Promise<void> {
  const out = path.resolve(file);
  const flag = claim.flag ?? '--out';
  const info = await lstat(out).catch(() => undefined);
  if (info?.isDirectory()) throw new Error(`${flag} ${file} is a folder; name a file`);
  for (const input of claim.inputs) {
    if (await samePath(input, out)) throw new Error(`${flag} ${file} is one of the inputs; atlas never overwrites its inputs`);
  }
  if (info && !claim.force) throw new Error(`${flag} ${file} already exists; give --force to overwrite it, or name a new file`);
  await checkWritable(out, { ...claim, command: '' });
}

/**
 * Check `dir` as the folder a command adds its own named files to, leaving every other file there alone: each name
 * it will write or remove must be absent or an earlier output of the command, which `ours` recognises by its bytes.
 * The folder may be missing (the command makes it when it writes) but must be creatable. Throws one line.
 */
export async function claimNamedFiles(dir: string, names: readonly string[], claim: { command: string; ours: (name: string, bytes: Uint8Array) => boolean; flag?: string }): Promise<void> {
  const out = path.resolve(dir);
  const flag = claim.flag ?? '--out';
  const info = await stat(out).catch(() => undefined);
  if (info && !info.isDirectory()) throw new Error(`${flag} ${dir} is an existing file; name a folder`);
  for (const name of names) {
    const bytes = await readFile(path.join(out, name)).catch(() => undefined);
    if (bytes && !claim.ours(name, bytes)) throw new Error(`${flag} ${dir} already has a ${name} that atlas ${claim.command} did not write; move it or name another folder`);
  }
  await checkWritable(path.join(out, names[0] ?? 'x'), { command: claim.command, inputs: [], flag });
}

async function inspect(out: string, claim: OutputClaim): Promise<Existing> {
  const flag = claim.flag ?? '--out';
  const info = await lstat(out).catch(() => undefined);
  if (info && info.isSymbolicLink()) throw new Error(`${flag} ${out} is a symbolic link; name a new folder`);
  if (info && !info.isDirectory()) throw new Error(`${flag} ${out} is an existing file; name a new folder (atlas writes a folder there and never replaces a file)`);
  const real = info ? await realpath(out) : out;
  for (const input of claim.inputs) {
    if (await within(input, real)) throw new Error(`${flag} ${out} contains the input ${input}; name a new folder for the output`);
  }
  if (!info) return { kind: 'none' };
  const entries = await readdir(out);
  if (entries.length === 0) return { kind: 'empty' };
  const manifest = await readManifest(out);
  if (!manifest) throw new Error(`${flag} ${out} is a folder with files atlas ${claim.command} did not write; name a new or empty folder`);
  if (manifest.command !== claim.command) throw new Error(`${flag} ${out} holds the output of atlas ${manifest.command}, not of atlas ${claim.command}; name another folder`);
  const listed = new Set([...manifest.files, OUTPUT_MANIFEST]);
  const foreign = entries.filter((e) => !listed.has(e));
  if (foreign.length) throw new Error(`${flag} ${out} holds files atlas ${claim.command} did not write (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''}); move them or name another folder`);
  if (!claim.force) throw new Error(`${flag} ${out} holds an earlier output of atlas ${claim.command}; give --force to replace it, or name a new folder`);
  return { kind: 'previous', files: manifest.files.filter((f) => entries.includes(f)) };
}

async function readManifest(dir: string): Promise<OutputManifest | undefined> {
  try {
    const m = JSON.parse(await readFile(path.join(dir, OUTPUT_MANIFEST), 'utf8')) as Partial<OutputManifest>;
    if (typeof m.command !== 'string' || !Array.isArray(m.files) || !m.files.every((f) => typeof f === 'string' && !f.includes('/') && !f.includes('\\') && f !== '..')) return undefined;
    return { command: m.command, files: m.files };
  } catch {
    return undefined;
  }
}

/** Remove an earlier output: exactly the files its manifest lists, then the folder, which must then be empty. */
async function removeListed(dir: string, files: readonly string[], claim: OutputClaim): Promise<void> {
  for (const f of files) {
    const info = await lstat(path.join(dir, f)).catch(() => undefined);
    if (info?.isFile()) await unlink(path.join(dir, f));
  }
  await unlink(path.join(dir, OUTPUT_MANIFEST));
  try {
    await rmdir(dir);
  } catch {
    throw new Error(`${claim.flag ?? '--out'} ${dir}: files appeared there that atlas ${claim.command} did not write; they were left alone and nothing was written`);
  }
}

/**
 * Whether `out` can be created: its nearest existing ancestor is a folder this process may write in. Nothing is created
 * here, so a command refused later leaves no folder behind.
 */
async function checkWritable(out: string, claim: OutputClaim): Promise<void> {
  let at = path.dirname(out);
  let info = await stat(at).catch(() => undefined);
  while (!info && path.dirname(at) !== at) {
    at = path.dirname(at);
    info = await stat(at).catch(() => undefined);
  }
  if (info && !info.isDirectory()) throw new Error(`cannot write ${claim.flag ?? '--out'} ${out}: ${at} is a file, not a folder`);
  try {
    await access(at, constants.W_OK);
  } catch (err) {
    throw cannotWrite(out, err, claim);
  }
}

const REASONS: Record<string, string> = {
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on the device',
  ENOENT: 'the location cannot hold files',
  ENOTDIR: 'a part of the path is a file',
};

function cannotWrite(out: string, err: unknown, claim: OutputClaim): Error {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  return new Error(`cannot write ${claim.flag ?? '--out'} ${out}: ${REASONS[code] ?? (err as Error).message}`);
}

/** Whether `inner` (an input, if it exists) is `outer` or lies inside it, following links on both sides. */
async function within(inner: string, outer: string): Promise<boolean> {
  let real: string;
  try {
    real = await realpath(inner);
  } catch {
    return false;
  }
  const rel = path.relative(outer, real);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

async function samePath(a: string, b: string): Promise<boolean> {
  const ra = await realpath(a).catch(() => path.resolve(a));
  const rb = await realpath(b).catch(() => path.resolve(b));
  return ra === rb;
}
