// ONNX protobuf I/O through onnx-proto (protobufjs bindings generated from onnx.proto), plus the few conversions
// between TensorProto/AttributeProto and plain JS values that graph surgery needs.
import onnxProto from 'onnx-proto';

export const onnx = onnxProto.onnx;
export type ModelProto = onnxProto.onnx.IModelProto;
export type GraphProto = onnxProto.onnx.IGraphProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type AttributeProto = onnxProto.onnx.IAttributeProto;
export type ValueInfoProto = onnxProto.onnx.IValueInfoProto;

/** TensorProto.DataType codes used here. */
export const DType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  DOUBLE: 11,
} as const;
export type FloatDType = typeof DType.FLOAT | typeof DType.DOUBLE;

export type TypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;

export function decodeModel(bytes: Uint8Array): ModelProto {
  return onnx.ModelProto.decode(bytes);
}

export function encodeModel(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.fromObject(model as never)).finish();
}

/** protobufjs decodes int64 fields as Long objects (or numbers): make them numbers. */
export function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v && typeof (v as { toNumber?: unknown }).toNumber === 'function') return (v as { toNumber(): number }).toNumber();
  return Number(v);
}

export function tensorDims(t: TensorProto): number[] {
  return (t.dims ?? []).map(num);
}

function copyBytes(raw: Uint8Array): ArrayBuffer {
  // raw_data may be an unaligned view into the model file's buffer: copy to get an aligned typed array.
  const out = new ArrayBuffer(raw.byteLength);
  new Uint8Array(out).set(raw);
  return out;
}

/** The values of a TensorProto as a typed array (raw_data or the typed repeated fields). */
export function tensorValues(t: TensorProto): TypedArray {
  const raw = t.rawData && t.rawData.byteLength > 0 ? t.rawData : undefined;
  if (t.dataLocation === 1) throw new Error(`tensor '${t.name}' uses external data, which is not supported: save the model with its weights inside the .onnx file`);
  switch (t.dataType) {
    case DType.FLOAT:
      return raw ? new Float32Array(copyBytes(raw)) : Float32Array.from(t.floatData ?? []);
    case DType.DOUBLE:
      return raw ? new Float64Array(copyBytes(raw)) : Float64Array.from(t.doubleData ?? []);
    case DType.INT32:
      return raw ? new Int32Array(copyBytes(raw)) : Int32Array.from(t.int32Data ?? []);
    case DType.INT64:
      return raw ? new BigInt64Array(copyBytes(raw)) : BigInt64Array.from((t.int64Data ?? []).map((v) => BigInt(num(v))));
    case DType.UINT8:
      return raw ? new Uint8Array(copyBytes(raw)) : Uint8Array.from(t.int32Data ?? []);
    case DType.INT8:
      return raw ? new Int8Array(copyBytes(raw)) : Int8Array.from(t.int32Data ?? []);
    default:
      throw new Error(`tensor '${t.name}': data type ${t.dataType} is not supported`);
  }
}

/** Numeric values of a tensor as plain numbers (small tensors: shapes, axes, clip bounds). */
export function tensorNumbers(t: TensorProto): number[] {
  return Array.from(tensorValues(t) as ArrayLike<number | bigint>, (v) => Number(v));
}

export function makeTensor(name: string, dataType: number, dims: readonly number[], values: ArrayLike<number> | BigInt64Array): TensorProto {
  let bytes: Uint8Array;
  switch (dataType) {
    case DType.FLOAT: bytes = new Uint8Array(Float32Array.from(values as ArrayLike<number>).buffer); break;
    case DType.DOUBLE: bytes = new Uint8Array(Float64Array.from(values as ArrayLike<number>).buffer); break;
    case DType.INT64:
      bytes = new Uint8Array((values instanceof BigInt64Array ? values : BigInt64Array.from(Array.from(values as ArrayLike<number>, (v) => BigInt(v)))).buffer);
      break;
    case DType.INT32: bytes = new Uint8Array(Int32Array.from(values as ArrayLike<number>).buffer); break;
    case DType.BOOL: bytes = Uint8Array.from(values as ArrayLike<number>); break;
    default: throw new Error(`makeTensor: data type ${dataType} is not supported`);
  }
  return { name, dataType, dims: [...dims], rawData: bytes };
}

// ---- attributes ----

const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

/** Marks a number as a float attribute (plain numbers are written as INT). */
export interface FloatAttr { readonly float: number }
export interface FloatsAttr { readonly floats: readonly number[] }
export const float = (v: number): FloatAttr => ({ float: v });
export const floats = (v: readonly number[]): FloatsAttr => ({ floats: v });
export type AttrInput = number | readonly number[] | string | FloatAttr | FloatsAttr | TensorProto;

export function makeAttribute(name: string, v: AttrInput): AttributeProto {
  if (typeof v === 'number') return { name, type: AttrType.INT, i: v };
  if (typeof v === 'string') return { name, type: AttrType.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AttrType.INTS, ints: [...v] };
  if ('float' in (v as FloatAttr)) return { name, type: AttrType.FLOAT, f: (v as FloatAttr).float };
  if ('floats' in (v as FloatsAttr)) return { name, type: AttrType.FLOATS, floats: [...(v as FloatsAttr).floats] };
  return { name, type: AttrType.TENSOR, t: v as TensorProto };
}

function findAttr(node: NodeProto, name: string): AttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

export function attrInt(node: NodeProto, name: string, dflt: number): number {
  const a = findAttr(node, name);
  return a ? num(a.i) : dflt;
}
export function attrFloat(node: NodeProto, name: string, dflt: number): number {
  const a = findAttr(node, name);
  return a ? (a.f ?? dflt) : dflt;
}
export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = findAttr(node, name);
  return a ? (a.ints ?? []).map(num) : undefined;
}
export function attrString(node: NodeProto, name: string, dflt: string): string {
  const a = findAttr(node, name);
  return a?.s ? new TextDecoder().decode(a.s) : dflt;
}
export function attrTensor(node: NodeProto, name: string): TensorProto | undefined {
  return findAttr(node, name)?.t ?? undefined;
}
export function hasAttr(node: NodeProto, name: string): boolean {
  return findAttr(node, name) !== undefined;
}
export function withoutAttr(node: NodeProto, name: string): void {
  node.attribute = (node.attribute ?? []).filter((a) => a.name !== name);
}
