// The safetensors format, read and written by hand (https://github.com/huggingface/safetensors, format section):
// 8-byte little-endian header length n, then n bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]},
// "__metadata__": {string: string}}, then the raw little-endian data; offsets count from the start of the data.
// Floats of every supported width come back as Float32Array, integers as Int32Array (I64 must fit in int32).
import * as fs from "fs";
import * as os from "os";
import { writeFileAtomic } from "../runtime/files";

/** Dtypes this reader accepts. */
export const SAFETENSORS_READ_DTYPES = ["F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"] as const;
export type SafeDtype = (typeof SAFETENSORS_READ_DTYPES)[number];

const BYTES: Record<SafeDtype, number> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** One tensor as read: its stored dtype and shape, and values widened to Float32Array (floats) or Int32Array (ints). */
export interface SafeTensor {
  dtype: SafeDtype;
  shape: number[];
  data: Float32Array | Int32Array;
}

/** A parsed file: tensors in header order and the string metadata. */
export interface SafetensorsFile {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

/** What the writer takes: F32 from a Float32Array, I64 or I32 from an Int32Array. */
export interface TensorToWrite {
  dtype: "F32" | "I64" | "I32";
  shape: number[];
  data: Float32Array | Int32Array;
}

const LITTLE_ENDIAN_HOST = os.endianness() === "LE";
const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1,
    e = (h >> 10) & 0x1f,
    m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function decode(dtype: SafeDtype, raw: Uint8Array, n: number, where: string): Float32Array | Int32Array {
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (dtype) {
    case "F32": {
      if (LITTLE_ENDIAN_HOST) return new Float32Array(raw.slice().buffer, 0, n); // copy (aligned), no per-element decode
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      return out;
    }
    case "F64": {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
      return out;
    }
    case "F16": {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f16ToF32(dv.getUint16(2 * i, true));
      return out;
    }
    case "BF16": {
      const out = new Float32Array(n);
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = dv.getUint16(2 * i, true) << 16;
      return out;
    }
    case "I64": {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = dv.getBigInt64(8 * i, true);
        if (v > 2147483647n || v < -2147483648n)
          throw new Error(`${where}: I64 value ${v} at element ${i} does not fit in int32`);
        out[i] = Number(v);
      }
      return out;
    }
    case "I32": {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true);
      return out;
    }
    case "I16": {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(2 * i, true);
      return out;
    }
    case "I8":
      return Int32Array.from(new Int8Array(raw.buffer, raw.byteOffset, n));
    case "U8":
    case "BOOL":
      return Int32Array.from(raw.subarray(0, n));
  }
}

/** Parses safetensors bytes; `source` names the file in every error. */
export function parseSafetensors(input: Uint8Array, source = "<buffer>"): SafetensorsFile {
  // a plain Uint8Array view: a Node Buffer's slice() shares memory instead of copying, which decode relies on
  const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  if (bytes.length < 8)
    throw new Error(
      `${source}: truncated safetensors file (${bytes.length} bytes; the 8-byte header length is missing)`,
    );
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8)) {
    throw new Error(
      `${source}: header length ${n} runs past the end of the file (${bytes.length} bytes): truncated or not a safetensors file`,
    );
  }
  const headerEnd = 8 + Number(n);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(8, headerEnd)).toString("utf8"));
  } catch (e) {
    throw new Error(`${source}: bad header JSON (${(e as Error).message})`);
  }
  if (!header || typeof header !== "object" || Array.isArray(header))
    throw new Error(`${source}: bad header JSON (not an object)`);
  const dataLen = bytes.length - headerEnd;
  const tensors = new Map<string, SafeTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (!entry || typeof entry !== "object" || Object.values(entry).some((v) => typeof v !== "string")) {
        throw new Error(`${source}: __metadata__ must map strings to strings`);
      }
      metadata = { ...(entry as Record<string, string>) };
      continue;
    }
    const where = `${source}: tensor '${name}'`;
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!e || typeof e !== "object") throw new Error(`${where}: header entry is not an object`);
    if (!SAFETENSORS_READ_DTYPES.includes(e.dtype as SafeDtype)) {
      throw new Error(
        `${where}: unsupported dtype ${JSON.stringify(e.dtype)} (supported: ${SAFETENSORS_READ_DTYPES.join(", ")})`,
      );
    }
    const dtype = e.dtype as SafeDtype;
    if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new Error(`${where}: shape ${JSON.stringify(e.shape)} is not a list of non-negative integers`);
    }
    const shape = e.shape as number[];
    const off = e.data_offsets;
    if (
      !Array.isArray(off) ||
      off.length !== 2 ||
      !off.every((v) => Number.isInteger(v) && v >= 0) ||
      off[0] > off[1]
    ) {
      throw new Error(`${where}: data_offsets ${JSON.stringify(off)} must be two integers 0 ≤ begin ≤ end`);
    }
    const [b, end] = off as [number, number];
    if (end > dataLen) {
      throw new Error(
        `${where}: data_offsets [${b}, ${end}] out of range: the data section has ${dataLen} bytes (file truncated?)`,
      );
    }
    const count = numel(shape);
    if (end - b !== count * BYTES[dtype]) {
      throw new Error(
        `${where}: data_offsets span ${end - b} bytes but shape [${shape}] of ${dtype} needs ${count * BYTES[dtype]}`,
      );
    }
    tensors.set(name, {
      dtype,
      shape,
      data: decode(dtype, bytes.subarray(headerEnd + b, headerEnd + end), count, where),
    });
  }
  return { tensors, metadata };
}

/** A tensor's header entry: what it is and where its bytes lie (offsets from the start of the data section). */
export interface SafeTensorInfo {
  dtype: SafeDtype;
  shape: number[];
  dataOffsets: [number, number];
}

/**
 * Reads only the header of a .safetensors file (cheap for big files): tensor entries and metadata. Throws naming the
 * file when the header is damaged or when the file is shorter than its header says (a truncated copy or an
 * interrupted write), so a caller can refuse it before loading anything.
 */
export function readSafetensorsHeader(file: string): {
  tensors: Map<string, SafeTensorInfo>;
  metadata: Record<string, string>;
} {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const head = Buffer.alloc(8);
    if (size < 8 || fs.readSync(fd, head, 0, 8, 0) < 8)
      throw new Error(`${file}: truncated safetensors file (${size} bytes; the 8-byte header length is missing)`);
    const n = head.readBigUInt64LE(0);
    if (n > BigInt(size - 8))
      throw new Error(
        `${file}: header length ${n} runs past the end of the file (${size} bytes): truncated or not a safetensors file`,
      );
    const json = Buffer.alloc(Number(n));
    for (let done = 0; done < json.length; ) {
      const got = fs.readSync(fd, json, done, json.length - done, 8 + done);
      if (got <= 0) throw new Error(`${file}: could not read the header`);
      done += got;
    }
    // Check each entry's form, then the real size against the largest end offset.
    const tensors = new Map<string, SafeTensorInfo>();
    let metadata: Record<string, string> = {};
    let end = 0;
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(json.toString("utf8"));
    } catch (e) {
      throw new Error(`${file}: bad header JSON (${(e as Error).message})`);
    }
    if (!header || typeof header !== "object" || Array.isArray(header))
      throw new Error(`${file}: bad header JSON (not an object)`);
    for (const [name, entry] of Object.entries(header)) {
      if (name === "__metadata__") {
        if (!entry || typeof entry !== "object" || Object.values(entry).some((v) => typeof v !== "string"))
          throw new Error(`${file}: __metadata__ must map strings to strings`);
        metadata = { ...(entry as Record<string, string>) };
        continue;
      }
      const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const off = e?.data_offsets;
      if (
        !e ||
        !SAFETENSORS_READ_DTYPES.includes(e.dtype as SafeDtype) ||
        !Array.isArray(e.shape) ||
        !Array.isArray(off) ||
        off.length !== 2 ||
        !off.every((v) => Number.isInteger(v) && v >= 0)
      ) {
        // let the full parser produce its detailed message for this entry
        parseSafetensors(handOver(name, entry), file);
        throw new Error(`${file}: tensor '${name}': bad header entry`);
      }
      tensors.set(name, { dtype: e.dtype as SafeDtype, shape: e.shape as number[], dataOffsets: [off[0], off[1]] });
      end = Math.max(end, off[1]);
    }
    const need = 8 + json.length + end;
    if (size < need)
      throw new Error(
        `${file} is truncated: its header describes ${need} bytes but the file has only ${size} (an interrupted ` +
          `copy or write)`,
      );
    return { tensors, metadata };
  } finally {
    fs.closeSync(fd);
  }
}

/** A one-entry file with no data, so parseSafetensors reports what is wrong with that entry. */
function handOver(name: string, entry: unknown): Uint8Array {
  const json = Buffer.from(JSON.stringify({ [name]: entry }), "utf8");
  const out = new Uint8Array(8 + json.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

/** Reads and parses a .safetensors file. */
export function readSafetensors(file: string): SafetensorsFile {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  return parseSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file);
}

/** Where a tensor holds a value that is not finite: how many, and the first one's flat index and value. */
export interface NonFiniteReport {
  name: string;
  count: number;
  index: number;
  value: number;
  shape: number[];
}

/** The first tensor (in iteration order) with a NaN or infinite value, or undefined when all are finite. */
export function findNonFinite(
  tensors: Iterable<[string, { shape: number[]; data: ArrayLike<number> }]>,
): NonFiniteReport | undefined {
  for (const [name, t] of tensors) {
    if (t.data instanceof Int32Array) continue; // integers are always finite
    let count = 0,
      first = -1;
    for (let i = 0; i < t.data.length; i++) {
      if (!Number.isFinite(t.data[i])) {
        if (first < 0) first = i;
        count++;
      }
    }
    if (count) return { name, count, index: first, value: t.data[first], shape: t.shape };
  }
  return undefined;
}

/** [i, j, k] of a flat row-major index in `shape`. */
function unflatten(index: number, shape: number[]): number[] {
  const out = new Array<number>(shape.length);
  for (let a = shape.length - 1; a >= 0; a--) {
    out[a] = index % shape[a];
    index = Math.floor(index / shape[a]);
  }
  return out;
}

/**
 * Throws unless every value of every float tensor is finite, naming the file, the tensor, the flat index (and the
 * element) of the first bad value and how many there are. Call it on weights before using them: a checkpoint with
 * NaN weights otherwise predicts an all-background map without a word.
 */
export function assertFiniteTensors(
  tensors: Iterable<[string, { shape: number[]; data: ArrayLike<number> }]>,
  source: string,
  fix = "the weights are unusable (did training diverge?); use another checkpoint or train again",
): void {
  const bad = findNonFinite(tensors);
  if (!bad) return;
  const at = bad.shape.length > 1 ? ` (element [${unflatten(bad.index, bad.shape).join(", ")}] of [${bad.shape}])` : "";
  throw new Error(
    `${source}: tensor '${bad.name}' holds ${bad.count} non-finite value${bad.count > 1 ? "s" : ""}; the first, ` +
      `${bad.value}, is at flat index ${bad.index}${at}; ${fix}`,
  );
}

/** Serialises tensors (in the given order) and string metadata. */
export function serializeSafetensors(
  tensors: Map<string, TensorToWrite>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const parts: Array<[TensorToWrite, number]> = [];
  for (const [name, t] of tensors) {
    if (name === "__metadata__") throw new Error("safetensors: '__metadata__' is reserved and cannot name a tensor");
    const n = numel(t.shape);
    if (t.data.length !== n)
      throw new Error(`safetensors: tensor '${name}' has ${t.data.length} values for shape [${t.shape}]`);
    const bytes = n * BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    parts.push([t, offset]);
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), "utf8");
  const pad = (8 - (json.length % 8)) % 8; // keep the data 8-byte aligned, as the reference writer does
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const out = new Uint8Array(8 + json.length + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  const base = 8 + json.length;
  for (const [t, off] of parts) {
    const at = base + off;
    if (t.dtype === "F32" && LITTLE_ENDIAN_HOST && t.data instanceof Float32Array)
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    else if (t.dtype === "F32") for (let i = 0; i < t.data.length; i++) dv.setFloat32(at + 4 * i, t.data[i], true);
    else if (t.dtype === "I32") for (let i = 0; i < t.data.length; i++) dv.setInt32(at + 4 * i, t.data[i], true);
    else for (let i = 0; i < t.data.length; i++) dv.setBigInt64(at + 8 * i, BigInt(t.data[i]), true);
  }
  return out;
}

/** Writes a .safetensors file atomically. */
export function writeSafetensors(
  file: string,
  tensors: Map<string, TensorToWrite>,
  metadata: Record<string, string> = {},
): void {
  writeFileAtomic(file, serializeSafetensors(tensors, metadata));
}
