// onnx.proto is proto2, whose repeated numbers are written unpacked (one tag per value) by the onnx Python package and
// protobuf's C++ runtime; protobufjs writes them packed. Both decode to the same model, but the bytes — and so the
// sha256 a download is checked against — differ. `unpackRepeated` rewrites protobufjs's output into the unpacked form
// for the fields a dequantized model has (TensorProto.dims, AttributeProto.ints and floats, in initializers, node
// attributes and Constant tensors), so a graph this project writes can equal, byte for byte, the same graph written
// by Python.
//
// A walk over the wire format rather than a second encoder: every other field is copied as it is, so nothing else
// the encoder decided can change.

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

// Field numbers in onnx.proto.
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const NODE_ATTRIBUTE = 5;
const ATTRIBUTE_T = 5;
const ATTRIBUTE_FLOATS = 7;
const ATTRIBUTE_INTS = 8;
const TENSOR_DIMS = 1;

function readVarint(buf: Uint8Array, at: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (let p = at; p < buf.length; p++) {
    const byte = buf[p];
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if (byte < 0x80) return [value, p + 1];
  }
  throw new Error('truncated varint in the encoded model');
}

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

/** How to rewrite a length-delimited field of a message: descend into it, unpack it, or keep it. */
interface Schema {
  [field: number]: Schema | 'varints' | 'fixed32';
}

const TENSOR: Schema = { [TENSOR_DIMS]: 'varints' };
const ATTRIBUTE: Schema = { [ATTRIBUTE_INTS]: 'varints', [ATTRIBUTE_FLOATS]: 'fixed32', [ATTRIBUTE_T]: TENSOR };
const MODEL: Schema = {
  [MODEL_GRAPH]: { [GRAPH_INITIALIZER]: TENSOR, [GRAPH_NODE]: { [NODE_ATTRIBUTE]: ATTRIBUTE } },
};

function rewrite(buf: Uint8Array, schema: Schema): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let p = 0;
  while (p < buf.length) {
    const start = p;
    const [key, afterKey] = readVarint(buf, p);
    const field = Math.floor(key / 8);
    const wire = key % 8;
    p = afterKey;
    let body = p;
    if (wire === WIRE_VARINT) p = readVarint(buf, p)[1];
    else if (wire === WIRE_FIXED64) p += 8;
    else if (wire === WIRE_FIXED32) p += 4;
    else if (wire === WIRE_LEN) {
      const [length, at] = readVarint(buf, p);
      body = at;
      p = at + length;
    } else throw new Error(`unsupported wire type ${wire} in the encoded model`);
    if (p > buf.length) throw new Error('truncated field in the encoded model');
    const how = schema[field];
    if (wire !== WIRE_LEN || how === undefined) {
      chunks.push(buf.subarray(start, p));
      continue;
    }
    const content = buf.subarray(body, p);
    if (how === 'varints') {
      const out: number[] = [];
      for (let q = 0; q < content.length;) {
        const next = readVarint(content, q)[1];
        out.push(...varint(field * 8 + WIRE_VARINT), ...content.subarray(q, next));
        q = next;
      }
      chunks.push(Uint8Array.from(out));
    } else if (how === 'fixed32') {
      for (let q = 0; q < content.length; q += 4) chunks.push(Uint8Array.from([...varint(field * 8 + WIRE_FIXED32), ...content.subarray(q, q + 4)]));
    } else {
      const inner = concat(rewrite(content, how));
      chunks.push(Uint8Array.from([...varint(key), ...varint(inner.length)]), inner);
    }
  }
  return chunks;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** An encoded ModelProto with its packed repeated numbers written unpacked, as proto2 writers do. */
export function unpackRepeated(model: Uint8Array): Uint8Array {
  return concat(rewrite(model, MODEL));
}
