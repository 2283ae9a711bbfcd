// NumPy .npy read/write. Hand-written because the format is tiny and frozen (a magic string, a Python-dict header,
// raw little-endian data), and the npm packages for it only parse; we also need to write, atomically.
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';

export type NpyData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
export type NpyDType = 'float32' | 'float64' | 'int64' | 'int32' | 'uint8';

export interface NpyArray {
  data: NpyData;
  shape: number[];
  dtype: NpyDType;
}

const DESCR: Record<string, NpyDType> = { '<f4': 'float32', '<f8': 'float64', '<i8': 'int64', '<i4': 'int32', '|u1': 'uint8', '<u1': 'uint8' };
const BYTES: Record<NpyDType, number> = { float32: 4, float64: 8, int64: 8, int32: 4, uint8: 1 };

export function parseNpy(bytes: Uint8Array, name = 'array'): NpyArray {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((m, i) => bytes[i] !== m)) throw new Error(`${name}: not a .npy file`);
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder('latin1').decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new Error(`${name}: malformed .npy header`);
  if (fortran === 'True') throw new Error(`${name}: Fortran-ordered arrays are not supported (save with np.ascontiguousarray)`);
  const dtype = DESCR[descr];
  if (!dtype) throw new Error(`${name}: dtype '${descr}' is not supported (float32, float64, int64, int32 or uint8, little-endian)`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  if (bytes.length - offset < count * BYTES[dtype]) throw new Error(`${name}: file is truncated`);
  // Copy (Node's Buffer#slice would be a view into a shared pool) so the typed array is aligned and exact.
  const raw = new Uint8Array(bytes.subarray(offset, offset + count * BYTES[dtype])).buffer;
  const data = dtype === 'float32' ? new Float32Array(raw)
    : dtype === 'float64' ? new Float64Array(raw)
      : dtype === 'int64' ? new BigInt64Array(raw)
        : dtype === 'int32' ? new Int32Array(raw)
          : new Uint8Array(raw);
  return { data, shape, dtype };
}

export async function readNpy(path: string): Promise<NpyArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch {
    throw new Error(`cannot read ${path}`);
  }
  return parseNpy(bytes, path);
}

export function toFloat32(a: NpyArray): Float32Array {
  if (a.data instanceof Float32Array) return a.data;
  return Float32Array.from(a.data as ArrayLike<number | bigint>, Number);
}

export function encodeNpy(data: NpyData, shape: readonly number[]): Uint8Array {
  const descr = data instanceof Float32Array ? '<f4' : data instanceof Float64Array ? '<f8' : data instanceof BigInt64Array ? '<i8' : data instanceof Int32Array ? '<i4' : '|u1';
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`encodeNpy: shape [${shape}] holds ${count} values, data has ${data.length}`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // numpy pads the header with spaces and a newline so the data starts on a 64-byte boundary.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const out = new Uint8Array(total + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), total);
  return out;
}

/** Write via a temporary file and rename, so a crash never leaves a truncated array behind. */
export async function writeNpy(path: string, data: NpyData, shape: readonly number[]): Promise<void> {
  await writeFileAtomic(path, encodeNpy(data, shape));
}

export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
