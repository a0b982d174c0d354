// NIfTI-1 volumes in and out: readNifti (header through nifti-reader-js, voxels decoded here), writeNifti (a small
// hand-written single-file writer), and the checks a training pipeline wants before it trusts a file.
//
// Axis convention (see volume.ts): NIfTI stores i fastest, then j, then k, then the 4th dim. Our arrays are
// [D, H, W] = [k, j, i] row-major, so a 3D file needs no transpose. A 4D file (dim[4] > 1) is volume-major on disk,
// [C][k][j][i], while our channels are the fastest axis, [k][j][i][C], so those get transposed both ways.
//
// Where we differ from nifti-reader-js 0.8 (so we compute the affine ourselves from the raw header fields):
// - it uses the qform whenever qform_code > sform_code, even when sform_code > 0; the NIfTI spec and nibabel prefer
//   the sform whenever sform_code > 0;
// - it takes qfac = pixdim[0] as is (any non-zero value), the spec says only its sign counts;
// - it computes quatern_a = sqrt(1 - b^2 - c^2 - d^2), which is NaN when rounding pushes the sum past 1.
// We hand it only the first 352 bytes so a malformed extension block cannot make it throw.
import * as fs from "fs";
import * as zlib from "zlib";
import { Affine, Shape3, Volume, VoxelArray, numVoxels } from "./volume";
import { importEsm } from "../runtime/esm";
import { writeFileAtomic } from "../runtime/files";

type NiftiLib = typeof import("nifti-reader-js");

/** Default ceiling on D*H*W*C read from a header before anything is allocated (512^3, 512 MB as float32). */
export const DEFAULT_MAX_VOXELS = 512 ** 3;

/** Integer arrays a label map is returned in (the smallest that holds its range). */
export type LabelArray = Uint8Array | Uint16Array | Int32Array;

export interface ReadNiftiOptions {
  /** "image" (default): Float32Array with scl_slope/scl_inter applied. "label": whole numbers in a LabelArray. */
  as?: "image" | "label";
  /** Refuse headers whose D*H*W*C exceeds this, before reading the voxels. Default DEFAULT_MAX_VOXELS. */
  maxVoxels?: number;
  /** Keep NaN/Inf voxels in an image instead of throwing. Default false. */
  allowNonFinite?: boolean;
}

/** The header fields worth printing, in NIfTI's own order (dims and pixdim are i, j, k, ...). */
export interface NiftiHeader {
  /** Raw dim[0..7]. */
  dim: number[];
  /** Raw pixdim[0..7]; pixdim[0] is qfac. */
  pixdim: number[];
  datatype: number;
  datatypeName: string;
  littleEndian: boolean;
  voxOffset: number;
  /** Scaling as applied: slope 1, inter 0 when the file has none (scl_slope 0 or not finite). */
  sclSlope: number;
  sclInter: number;
  qformCode: number;
  sformCode: number;
  /** Which of the three NIfTI methods produced the affine. */
  affineFrom: "sform" | "qform" | "pixdim";
  /** xyzt_units byte (2 = mm, 10 = mm + s). Spacing is not converted; we assume mm. */
  xyztUnits: number;
  description: string;
}

/** A volume read from disk, with its orientation code ("RAS", "LAS", ...) and header summary. */
export interface NiftiVolume<T extends VoxelArray = VoxelArray> extends Volume<T> {
  orientation: string;
  header: NiftiHeader;
}

/** Datatype code -> name and bytes per voxel; `null` bytes marks types we refuse (complex, RGB, float128, bits). */
const DATATYPES: Record<number, { name: string; bytes: number | null }> = {
  1: { name: "binary", bytes: null },
  2: { name: "uint8", bytes: 1 },
  4: { name: "int16", bytes: 2 },
  8: { name: "int32", bytes: 4 },
  16: { name: "float32", bytes: 4 },
  32: { name: "complex64", bytes: null },
  64: { name: "float64", bytes: 8 },
  128: { name: "RGB24", bytes: null },
  256: { name: "int8", bytes: 1 },
  512: { name: "uint16", bytes: 2 },
  768: { name: "uint32", bytes: 4 },
  1024: { name: "int64", bytes: 8 },
  1280: { name: "uint64", bytes: 8 },
  1536: { name: "float128", bytes: null },
  1792: { name: "complex128", bytes: null },
  2048: { name: "complex256", bytes: null },
  2304: { name: "RGBA32", bytes: null },
};

let niftiLib: Promise<NiftiLib> | undefined;
function loadNiftiLib(): Promise<NiftiLib> {
  niftiLib ??= importEsm<NiftiLib>("nifti-reader-js");
  return niftiLib;
}

interface Parsed {
  header: NiftiHeader;
  shape: Shape3;
  channels: number;
  spacing: Shape3;
  affine: Affine;
  offset: number;
  dataBytes: number;
}

/** Read a .nii or .nii.gz file (gzip is detected from the bytes, not the name). */
export async function readNifti(file: string, opts: ReadNiftiOptions & { as: "label" }): Promise<NiftiVolume<LabelArray>>;
export async function readNifti(file: string, opts?: ReadNiftiOptions & { as?: "image" }): Promise<NiftiVolume<Float32Array>>;
export async function readNifti(file: string, opts?: ReadNiftiOptions): Promise<NiftiVolume<Float32Array | LabelArray>>;
export async function readNifti(file: string, opts: ReadNiftiOptions = {}): Promise<NiftiVolume<Float32Array | LabelArray>> {
  const as = opts.as ?? "image";
  if (as !== "image" && as !== "label") throw new Error(`readNifti ${file}: option as = ${JSON.stringify(as)}; use "image" or "label"`);
  const { parsed, bytes } = await loadNifti(file, opts.maxVoxels ?? DEFAULT_MAX_VOXELS);
  const { header, shape, channels } = parsed;
  const raw = decodeVoxels(bytes, header.datatype, header.littleEndian, file);
  const data = as === "image"
    ? toImage(raw, shape, channels, header, file, opts.allowNonFinite ?? false)
    : toLabels(raw, shape, channels, header, file);
  return {
    data, shape, channels, spacing: parsed.spacing, affine: parsed.affine, source: file,
    orientation: orientationCodes(parsed.affine), header,
  };
}

/** Read and check only the header: shape, spacing, affine, orientation, datatype. Cheap even for big files. */
export async function readNiftiHeader(file: string): Promise<Omit<NiftiVolume, "data">> {
  const parsed = await loadNifti(file, Infinity, true).then((r) => r.parsed);
  const { header, shape, channels, spacing, affine } = parsed;
  return { shape, channels, spacing, affine, source: file, orientation: orientationCodes(affine), header };
}

/** Reads the file, checks the header, and returns exactly the voxel bytes (an aligned copy we may byte-swap). */
async function loadNifti(file: string, maxVoxels: number, headerOnly = false): Promise<{ parsed: Parsed; bytes: Uint8Array }> {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new Error(`readNifti: ${file} does not exist; check the path (relative paths start at ${process.cwd()})`);
  }
  if (!stat.isFile()) throw new Error(`readNifti: ${file} is not a file; pass the path of a .nii or .nii.gz file`);
  if (stat.size === 0) throw new Error(`readNifti: ${file} is empty (0 bytes); re-download or re-export it`);
  const lib = await loadNiftiLib();

  const fd = fs.openSync(file, "r");
  try {
    const head = Buffer.alloc(Math.min(352, stat.size));
    fs.readSync(fd, head, 0, head.length, 0);
    if (head[0] === 0x1f && head[1] === 0x8b) {
      const gz = fs.readFileSync(fd);
      const parsed = parseHeader(gunzipPrefix(gz, file), file, lib, maxVoxels);
      if (headerOnly) return { parsed, bytes: new Uint8Array(0) };
      const need = parsed.offset + parsed.dataBytes;
      const all = gunzipAll(gz, file, need + Math.max(1 << 20, need / 100));
      if (all.length < need) throw truncated(file, parsed, all.length, "decompressed data");
      // vox_offset is normally 352 (a multiple of 8), so this is a view; odd offsets get an aligned copy.
      const bytes = (all.byteOffset + parsed.offset) % 8 === 0
        ? new Uint8Array(all.buffer, all.byteOffset + parsed.offset, parsed.dataBytes)
        : new Uint8Array(all.subarray(parsed.offset, need));
      return { parsed, bytes };
    }
    const parsed = parseHeader(head, file, lib, maxVoxels);
    if (headerOnly) return { parsed, bytes: new Uint8Array(0) };
    if (stat.size < parsed.offset + parsed.dataBytes) throw truncated(file, parsed, stat.size);
    const bytes = new Uint8Array(parsed.dataBytes);
    for (let done = 0; done < bytes.length;) {
      const n = fs.readSync(fd, bytes, done, bytes.length - done, parsed.offset + done);
      if (n <= 0) throw truncated(file, parsed, parsed.offset + done);
      done += n;
    }
    return { parsed, bytes };
  } finally {
    fs.closeSync(fd);
  }
}

function truncated(file: string, p: Parsed, have: number, what = "file"): Error {
  const dims = p.header.dim.slice(1, p.header.dim[0] + 1).join("x");
  return new Error(
    `readNifti: ${file} is truncated: its header (dims ${dims}, ${p.header.datatypeName}) needs ${p.offset + p.dataBytes} ` +
    `bytes (${p.dataBytes} of voxels after offset ${p.offset}) but the ${what} has only ${have}; ` +
    `re-download or re-export the file`);
}

function gzipError(file: string, e: unknown): Error {
  const msg = (e as Error).message;
  if (/unexpected end/i.test(msg)) {
    return new Error(`readNifti: ${file}: the gzip stream ends early, so the file is truncated (an interrupted copy or ` +
      `download?); re-download or re-export it`);
  }
  return new Error(`readNifti: ${file}: the gzip data is corrupt (zlib: ${msg}); re-download or re-export the file`);
}

/** Inflate just enough of a .gz to see the 352-byte header, without inflating the whole file. */
function gunzipPrefix(gz: Buffer, file: string): Buffer {
  for (let n = 4096; ; n *= 4) {
    const part = gz.subarray(0, Math.min(n, gz.length));
    let out: Buffer;
    try {
      // Z_SYNC_FLUSH lets zlib return what it has from a cut-off input instead of failing with "unexpected end".
      out = zlib.gunzipSync(part, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    } catch (e) {
      throw gzipError(file, e);
    }
    if (out.length >= 352 || part.length === gz.length) return out.subarray(0, 352);
  }
}

function gunzipAll(gz: Buffer, file: string, limit: number): Buffer {
  try {
    return zlib.gunzipSync(gz, { maxOutputLength: Math.min(limit, 2 ** 32) });
  } catch (e) {
    if ((e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
      throw new Error(`readNifti: ${file} inflates to more than the ${Math.floor(limit)} bytes its header accounts for; ` +
        `the header dims or datatype are probably wrong; check the file with nibabel or fslhd`);
    }
    throw gzipError(file, e);
  }
}

/** Checks sizeof_hdr, magic, dims, datatype and spacing, and works out shape, channels and the affine. */
function parseHeader(head: Buffer, file: string, lib: NiftiLib, maxVoxels: number): Parsed {
  const where = `readNifti: ${file}`;
  if (head.length < 348) {
    throw new Error(`${where} has only ${head.length} bytes, fewer than a NIfTI-1 header (348); it is truncated or not NIfTI`);
  }
  const view = new DataView(head.buffer, head.byteOffset, head.length);
  let le = true;
  if (view.getInt32(0, true) !== 348) {
    if (view.getInt32(0, false) === 348) le = false;
    else if (view.getInt32(0, true) === 540 || view.getInt32(0, false) === 540) {
      throw new Error(`${where} is NIfTI-2, which we do not read; convert it to NIfTI-1 (nibabel: nib.Nifti1Image(img.dataobj, img.affine))`);
    } else {
      throw new Error(`${where} is not a NIfTI-1 file: sizeof_hdr is ${view.getInt32(0, true)}, expected 348; ` +
        `pass a .nii or .nii.gz image`);
    }
  }
  const magic = head.subarray(344, 348).toString("latin1");
  if (magic === "ni1\0") {
    throw new Error(`${where} is the header of a .hdr/.img pair; convert it to a single .nii file (nibabel or fslchfiletype)`);
  }
  if (magic !== "n+1\0") {
    throw new Error(`${where} is not a NIfTI-1 file: magic is ${JSON.stringify(magic)}, expected "n+1\\0" ` +
      `(an old Analyze 7.5 header?); convert it to .nii`);
  }
  // The library parses the fields; we check them and build the affine (see the top of the file for why).
  const h = lib.readHeader(head.buffer.slice(head.byteOffset, head.byteOffset + head.length) as ArrayBuffer);

  const dim = Array.from(h.dims);
  const nd = dim[0];
  if (nd < 1 || nd > 7) throw new Error(`${where}: dim[0] = ${nd} (number of dimensions) is outside 1..7; the header is broken`);
  for (let a = 1; a <= nd; a++) {
    if (dim[a] <= 0) {
      throw new Error(`${where}: dim[${a}] = ${dim[a]}, but every size must be >= 1 (dim = [${dim.join(", ")}]); the header is broken`);
    }
  }
  const size = (a: number) => (a <= nd ? dim[a] : 1);
  const shape: Shape3 = [size(3), size(2), size(1)];
  // dims 5..7 (vector components etc.) are volume-major like dim 4, so they all fold into channels.
  const channels = size(4) * size(5) * size(6) * size(7);
  const total = numVoxels(shape) * channels;
  if (total > maxVoxels) {
    throw new Error(`${where}: the header claims ${dim.slice(1, nd + 1).join("x")} = ${total} voxels, more than ` +
      `maxVoxels = ${maxVoxels}; crop or downsample the file, or pass a larger maxVoxels if you have the memory`);
  }

  const datatype = h.datatypeCode;
  const dt = DATATYPES[datatype];
  if (!dt || dt.bytes === null) {
    throw new Error(`${where}: unsupported datatype ${datatype} (${dt?.name ?? "unknown"}); we read uint8, int8, int16, ` +
      `uint16, int32, uint32, int64, uint64, float32, float64; convert the file (e.g. nibabel set_data_dtype)`);
  }

  const pixdim = Array.from(h.pixDims);
  const step = (a: number) => {
    const s = Math.abs(pixdim[a]);
    if (a > nd && !(s > 0 && Number.isFinite(s))) return 1; // 2D files may leave pixdim[3] at 0
    if (!(s > 0 && Number.isFinite(s))) {
      throw new Error(`${where}: pixdim[${a}] = ${pixdim[a]} is not a voxel size; spacing must be positive (fix the header, ` +
        `e.g. nibabel header.set_zooms)`);
    }
    return s;
  };
  const spacing: Shape3 = [step(3), step(2), step(1)];

  const voxOffset = h.vox_offset;
  const offset = voxOffset === 0 ? 352 : voxOffset;
  if (!Number.isInteger(offset)) {
    throw new Error(`${where}: vox_offset = ${voxOffset} must be an integer (the byte offset of the voxel data, ` +
      `normally 352); the header is broken; rewrite the file (e.g. nibabel load and save)`);
  }
  if (offset < 348) {
    throw new Error(`${where}: vox_offset = ${voxOffset} points inside the header (it must be at least 348, ` +
      `normally 352); the header is broken; rewrite the file (e.g. nibabel load and save)`);
  }
  let sclSlope = h.scl_slope, sclInter = h.scl_inter;
  if (sclSlope === 0 || !Number.isFinite(sclSlope)) { sclSlope = 1; sclInter = 0; } // slope 0 means "no scaling"
  if (!Number.isFinite(sclInter)) sclInter = 0;

  const qformCode = h.qform_code, sformCode = h.sform_code;
  let affine: Affine, affineFrom: NiftiHeader["affineFrom"];
  if (sformCode > 0) {
    affineFrom = "sform";
    // srow_x/y/z read directly: the library only exposes them through h.affine, and only when it picks the sform
    affine = [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => view.getFloat32(280 + 16 * r + 4 * c, le)));
    affine.push([0, 0, 0, 1]);
  } else if (qformCode > 0) {
    affineFrom = "qform";
    affine = qformToAffine(h.quatern_b, h.quatern_c, h.quatern_d, pixdim[0] < 0 ? -1 : 1, [spacing[2], spacing[1], spacing[0]],
      [h.qoffset_x, h.qoffset_y, h.qoffset_z]);
  } else {
    affineFrom = "pixdim"; // NIfTI method 1, for Analyze-era files: no rotation, no origin
    affine = [[spacing[2], 0, 0, 0], [0, spacing[1], 0, 0], [0, 0, spacing[0], 0], [0, 0, 0, 1]];
  }
  if (!affine.flat().every(Number.isFinite)) {
    throw new Error(`${where}: the ${affineFrom} affine has non-finite entries (${JSON.stringify(affine)}); fix the header`);
  }

  const header: NiftiHeader = {
    dim, pixdim, datatype, datatypeName: dt.name, littleEndian: le, voxOffset: offset, sclSlope, sclInter,
    qformCode, sformCode, affineFrom, xyztUnits: h.xyzt_units, description: h.description.replace(/\0.*$/s, ""),
  };
  return { header, shape, channels, spacing, affine, offset, dataBytes: total * dt.bytes };
}

/** NIfTI method 2: rotation from the quaternion (b, c, d), scaled by pixdim, k column flipped when qfac = -1. */
function qformToAffine(b: number, c: number, d: number, qfac: number, ijkSpacing: number[], offset: number[]): Affine {
  let a = 1 - (b * b + c * c + d * d);
  if (a < 1e-7) { // |(b,c,d)| >= 1 by rounding: a 180-degree rotation, renormalize like nifti1_io does
    const n = Math.hypot(b, c, d);
    b /= n; c /= n; d /= n; a = 0;
  } else {
    a = Math.sqrt(a);
  }
  const R = [
    [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
    [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
    [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
  ];
  const scale = [ijkSpacing[0], ijkSpacing[1], ijkSpacing[2] * qfac];
  const rows = R.map((row, r) => [...row.map((v, col) => v * scale[col]), offset[r]]);
  return [...rows, [0, 0, 0, 1]];
}

type Numeric = VoxelArray;

/** Bytes -> typed array of the file's datatype (byte-swapped in place for big-endian files). */
function decodeVoxels(bytes: Uint8Array, datatype: number, littleEndian: boolean, file: string): Numeric {
  const size = DATATYPES[datatype].bytes as number;
  if (littleEndian !== HOST_LE && size > 1) swapBytes(bytes, size);
  const buf = bytes.buffer, off = bytes.byteOffset, n = bytes.length / size;
  switch (datatype) {
    case 2: return bytes;
    case 256: return new Int8Array(buf, off, n);
    case 4: return new Int16Array(buf, off, n);
    case 512: return new Uint16Array(buf, off, n);
    case 8: return new Int32Array(buf, off, n);
    case 768: return new Uint32Array(buf, off, n);
    case 16: return new Float32Array(buf, off, n);
    case 64: return new Float64Array(buf, off, n);
    default: { // int64 / uint64: fine as long as every value is an exact double
      const big = datatype === 1024 ? new BigInt64Array(buf, off, n) : new BigUint64Array(buf, off, n);
      const out = new Float64Array(n);
      for (let v = 0; v < n; v++) {
        const x = Number(big[v]);
        if (!Number.isSafeInteger(x)) {
          throw new Error(`readNifti: ${file}: ${DATATYPES[datatype].name} value ${big[v]} at flat index ${v} does not fit a double; convert the file to int32`);
        }
        out[v] = x;
      }
      return out;
    }
  }
}

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function swapBytes(bytes: Uint8Array, size: number): void {
  for (let o = 0; o < bytes.length; o += size) {
    for (let x = 0, y = size - 1; x < y; x++, y--) {
      const t = bytes[o + x]; bytes[o + x] = bytes[o + y]; bytes[o + y] = t;
    }
  }
}

/** "[d=.., h=.., w=..(, c=..)]" for a flat index in our [D, H, W, C] layout. */
function voxelName(shape: Shape3, channels: number, flat: number): string {
  const c = flat % channels, v = Math.floor(flat / channels);
  const w = v % shape[2], h = Math.floor(v / shape[2]) % shape[1], d = Math.floor(v / (shape[1] * shape[2]));
  return `[d=${d}, h=${h}, w=${w}${channels > 1 ? `, c=${c}` : ""}] (flat index ${flat})`;
}

/** raw (NIfTI order, [C][D][H][W]) -> out ([D][H][W][C]), times m plus b when scaled. No closures: this runs per voxel. */
function gather(raw: Numeric, out: Float32Array | LabelArray, channels: number, scaled: boolean, m: number, b: number): void {
  if (channels === 1 && !scaled) {
    (out as { set(src: ArrayLike<number>): void }).set(raw); // native type conversion
    return;
  }
  const nvox = raw.length / channels;
  for (let c = 0; c < channels; c++) {
    const base = c * nvox;
    if (scaled) for (let v = 0; v < nvox; v++) out[v * channels + c] = raw[base + v] * m + b;
    else for (let v = 0; v < nvox; v++) out[v * channels + c] = raw[base + v];
  }
}

const isFloat = (raw: Numeric) => raw instanceof Float32Array || raw instanceof Float64Array;

function toImage(raw: Numeric, shape: Shape3, channels: number, h: NiftiHeader, file: string, allowNonFinite: boolean): Float32Array {
  let out: Float32Array;
  const scaled = h.sclSlope !== 1 || h.sclInter !== 0;
  if (raw instanceof Float32Array && !scaled && channels === 1) {
    out = raw.byteOffset === 0 && raw.buffer.byteLength === raw.byteLength ? raw : raw.slice();
  } else {
    out = new Float32Array(raw.length);
    gather(raw, out, channels, scaled, h.sclSlope, h.sclInter);
  }
  // Integers stay finite unless a scale overflows float32, so only floats and scaled data need the scan.
  if (!allowNonFinite && (isFloat(raw) || scaled)) {
    let count = 0, first = -1;
    for (let v = 0; v < out.length; v++) {
      if (!Number.isFinite(out[v])) { if (first < 0) first = v; count++; }
    }
    if (count > 0) {
      throw new Error(`readNifti: ${file} has ${count} NaN/Inf voxels, the first ${out[first]} at ${voxelName(shape, channels, first)}; ` +
        `clean the image, or pass { allowNonFinite: true } to keep them`);
    }
  }
  return out;
}

function toLabels(raw: Numeric, shape: Shape3, channels: number, h: NiftiHeader, file: string): LabelArray {
  const scaled = h.sclSlope !== 1 || h.sclInter !== 0;
  const m = h.sclSlope, b = h.sclInter;
  const checkWhole = scaled || isFloat(raw);
  let lo = Infinity, hi = -Infinity;
  for (let v = 0; v < raw.length; v++) {
    const x = scaled ? raw[v] * m + b : raw[v];
    if (checkWhole && !Number.isInteger(x)) {
      // raw is volume-major; name the voxel in our channels-last layout
      const nvox = raw.length / channels, flat = (v % nvox) * channels + Math.floor(v / nvox);
      throw new Error(`readNifti: ${file} is not a label map: value ${x} at ${voxelName(shape, channels, flat)} is not a whole ` +
        `number; read it with { as: "image" }, or fix the segmentation (round it, check scl_slope/scl_inter)`);
    }
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  if (lo < -(2 ** 31) || hi >= 2 ** 31) {
    throw new Error(`readNifti: ${file}: label values ${lo}..${hi} do not fit int32; relabel the segmentation`);
  }
  const out = lo >= 0 && hi <= 255 ? new Uint8Array(raw.length) : lo >= 0 && hi <= 65535 ? new Uint16Array(raw.length) : new Int32Array(raw.length);
  gather(raw, out, channels, scaled, m, b);
  return out;
}

/**
 * Throws unless `volume` has `expected` channels (default 1: a 3D image), naming its file and saying what to do.
 * `what` says where the volume came from, e.g. "--image". A 4D file where a 3D one is expected gets its dims named.
 */
export function checkChannels(volume: Pick<Volume, "channels" | "shape" | "source">, expected = 1, what = "image"): void {
  if (volume.channels === expected) return;
  const dims = `${volume.shape[2]}x${volume.shape[1]}x${volume.shape[0]}x${volume.channels}`;
  if (expected === 1) {
    throw new Error(`${what} ${volume.source} is a 4D image (dims ${dims}: ${volume.channels} volumes or channels), ` +
      `but a 3D image is expected here; pass one 3D volume (extract it with e.g. fslroi, or nibabel img.slicer[..., 0])`);
  }
  throw new Error(`${what} ${volume.source} has ${volume.channels} channel${volume.channels > 1 ? "s" : ""} (dims ` +
    `${dims}), but the model expects ${expected}; pass an image with ${expected} channels in the 4th dimension`);
}

/** Axis codes of voxel axes i, j, k in RAS+ world space: "RAS" when i points right, j anterior, k superior. */
export function orientationCodes(affine: Affine): string {
  const pos = ["R", "A", "S"], neg = ["L", "P", "I"];
  const codes = ["?", "?", "?"];
  const rowsLeft = new Set([0, 1, 2]), colsLeft = new Set([0, 1, 2]);
  // Oblique grids: greedily give the largest remaining |entry| its world axis, so each axis is used once.
  for (let k = 0; k < 3; k++) {
    let best = 0, br = -1, bc = -1;
    for (const r of rowsLeft) for (const c of colsLeft) {
      if (Math.abs(affine[r][c]) > best) { best = Math.abs(affine[r][c]); br = r; bc = c; }
    }
    if (br < 0) break; // degenerate column(s) stay "?"
    codes[bc] = affine[br][bc] > 0 ? pos[br] : neg[br];
    rowsLeft.delete(br); colsLeft.delete(bc);
  }
  return codes.join("");
}

/** Throws unless image and label share shape and affine (entries within tolMm, default 1e-3 mm). */
export function checkSameGrid(image: Volume, label: Volume, tolMm = 1e-3): void {
  if (image.shape.some((s, a) => s !== label.shape[a])) {
    throw new Error(`grid mismatch: ${image.source} has shape [${image.shape}] but ${label.source} has [${label.shape}] ` +
      `([D, H, W]); resample the label onto the image grid (nearest neighbour) or pair the right files`);
  }
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 4; c++) {
      const d = Math.abs(image.affine[r][c] - label.affine[r][c]);
      if (!(d <= tolMm)) {
        throw new Error(`grid mismatch: affines differ by ${d} at [${r}][${c}] (tolerance ${tolMm} mm): ${image.source} has ` +
          `${fmtAffine(image.affine)}, ${label.source} has ${fmtAffine(label.affine)}; resample the label onto the image grid ` +
          `or fix the header that is wrong`);
      }
    }
  }
}

function fmtAffine(a: Affine): string {
  return "[" + a.slice(0, 3).map((row) => "[" + row.map((v) => +v.toFixed(4)).join(", ") + "]").join(", ") + "]";
}

export interface WriteNiftiOptions {
  /** Up to 80 characters stored in descrip. */
  description?: string;
}

/** Datatype code for the arrays a Volume may hold. */
function datatypeOf(data: VoxelArray): number {
  if (data instanceof Float32Array) return 16;
  if (data instanceof Float64Array) return 64;
  if (data instanceof Uint8Array) return 2;
  if (data instanceof Int8Array) return 256;
  if (data instanceof Int16Array) return 4;
  if (data instanceof Uint16Array) return 512;
  if (data instanceof Int32Array) return 8;
  if (data instanceof Uint32Array) return 768;
  return 0;
}

/** Write a volume as single-file NIfTI-1 (.nii, or gzipped when the name ends in .gz), atomically. */
export function writeNifti(file: string, volume: Volume, opts: WriteNiftiOptions = {}): void {
  const where = `writeNifti ${file} (from ${volume.source})`;
  if (!/\.nii(\.gz)?$/i.test(file)) throw new Error(`${where}: the file name must end in .nii or .nii.gz`);
  const { data, shape, channels, spacing, affine } = volume;
  const datatype = datatypeOf(data);
  if (!datatype) throw new Error(`${where}: cannot store a ${(data as object)?.constructor?.name}; use a Float32Array or an integer typed array`);
  for (const [name, v] of [["D", shape[0]], ["H", shape[1]], ["W", shape[2]], ["channels", channels]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 32767) throw new Error(`${where}: ${name} = ${v}; NIfTI-1 sizes are whole numbers 1..32767`);
  }
  if (data.length !== numVoxels(shape) * channels) {
    throw new Error(`${where}: data has ${data.length} values but shape [${shape}] x ${channels} channels needs ` +
      `${numVoxels(shape) * channels}; fix the shape or the array`);
  }
  if (!spacing.every((s) => s > 0 && Number.isFinite(s))) throw new Error(`${where}: spacing [${spacing}] must be positive mm`);
  if (affine.length !== 4 || !affine.every((row) => row.length === 4 && row.every(Number.isFinite))) {
    throw new Error(`${where}: affine must be a finite 4x4 matrix, got ${JSON.stringify(affine)}`);
  }

  const bytesPer = DATATYPES[datatype].bytes as number;
  const out = new Uint8Array(352 + data.length * bytesPer);
  const view = new DataView(out.buffer);
  view.setInt32(0, 348, true);
  out[38] = 0x72; // regular = 'r', as nibabel and FSL write it
  const dim = [channels > 1 ? 4 : 3, shape[2], shape[1], shape[0], channels, 1, 1, 1];
  dim.forEach((v, a) => view.setInt16(40 + 2 * a, v, true));
  view.setInt16(70, datatype, true);
  view.setInt16(72, bytesPer * 8, true);
  const ijkSpacing = [spacing[2], spacing[1], spacing[0]];
  const q = affineToQuaternion(affine, ijkSpacing);
  [q?.qfac ?? 1, ...ijkSpacing, 1, 1, 1, 1].forEach((v, a) => view.setFloat32(76 + 4 * a, v, true));
  view.setFloat32(108, 352, true); // vox_offset
  view.setFloat32(112, 1, true); // scl_slope
  view.setFloat32(116, 0, true); // scl_inter
  out[123] = 10; // xyzt_units: mm + s
  Buffer.from((opts.description ?? "mae-nnformer").slice(0, 79), "latin1").copy(out, 148);
  view.setInt16(252, q ? 2 : 0, true); // qform_code: aligned anat when the affine is a rotation (+ flip) times pixdim
  view.setInt16(254, 2, true); // sform_code: aligned anat; readers take the sform first
  if (q) {
    [q.b, q.c, q.d].forEach((v, a) => view.setFloat32(256 + 4 * a, v, true));
    [affine[0][3], affine[1][3], affine[2][3]].forEach((v, a) => view.setFloat32(268 + 4 * a, v, true));
  }
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) view.setFloat32(280 + 16 * r + 4 * c, affine[r][c], true);
  out.set([0x6e, 0x2b, 0x31, 0x00], 344); // "n+1\0"; bytes 348..351 (extension flag) stay 0

  // Voxels: typed array over the output buffer in the file's type; channels-last -> volume-major for 4D.
  const Ctor = data.constructor as new (buf: ArrayBuffer, off: number, n: number) => VoxelArray;
  const body = new Ctor(out.buffer, 352, data.length);
  if (channels === 1) (body as { set(src: ArrayLike<number>): void }).set(data);
  else {
    const nvox = data.length / channels;
    for (let c = 0; c < channels; c++) for (let v = 0; v < nvox; v++) body[c * nvox + v] = data[v * channels + c];
  }
  if (!HOST_LE && bytesPer > 1) swapBytes(out.subarray(352), bytesPer);
  writeFileAtomic(file, /\.gz$/i.test(file) ? zlib.gzipSync(out) : out);
}

/** qform parameters for an affine that is rotation (+ a k flip) times pixdim; null when it is sheared or scaled otherwise. */
function affineToQuaternion(affine: Affine, ijkSpacing: number[]): { b: number; c: number; d: number; qfac: number } | null {
  const cols = [0, 1, 2].map((c) => [affine[0][c], affine[1][c], affine[2][c]]);
  const norms = cols.map((v) => Math.hypot(...v));
  // pixdim comes from spacing; when it disagrees with the affine's column lengths the qform would be wrong, so skip it.
  if (norms.some((n, a) => !(Math.abs(n - ijkSpacing[a]) <= 1e-4 * Math.max(1, n)))) return null;
  const u = cols.map((v, a) => v.map((x) => x / norms[a]));
  const dot = (p: number[], q: number[]) => p[0] * q[0] + p[1] * q[1] + p[2] * q[2];
  if (Math.abs(dot(u[0], u[1])) > 1e-4 || Math.abs(dot(u[0], u[2])) > 1e-4 || Math.abs(dot(u[1], u[2])) > 1e-4) return null;
  const det = u[0][0] * (u[1][1] * u[2][2] - u[1][2] * u[2][1]) - u[1][0] * (u[0][1] * u[2][2] - u[0][2] * u[2][1])
    + u[2][0] * (u[0][1] * u[1][2] - u[0][2] * u[1][1]);
  const qfac = det < 0 ? -1 : 1;
  if (qfac < 0) u[2] = u[2].map((x) => -x);
  const R = (r: number, c: number) => u[c][r]; // columns of R are the unit voxel axes
  const trace = R(0, 0) + R(1, 1) + R(2, 2);
  let a: number, b: number, c: number, d: number;
  if (trace > -0.5) {
    a = 0.5 * Math.sqrt(1 + trace);
    b = (R(2, 1) - R(1, 2)) / (4 * a); c = (R(0, 2) - R(2, 0)) / (4 * a); d = (R(1, 0) - R(0, 1)) / (4 * a);
  } else if (R(0, 0) >= R(1, 1) && R(0, 0) >= R(2, 2)) {
    b = 0.5 * Math.sqrt(1 + R(0, 0) - R(1, 1) - R(2, 2));
    c = (R(0, 1) + R(1, 0)) / (4 * b); d = (R(0, 2) + R(2, 0)) / (4 * b); a = (R(2, 1) - R(1, 2)) / (4 * b);
  } else if (R(1, 1) >= R(2, 2)) {
    c = 0.5 * Math.sqrt(1 + R(1, 1) - R(0, 0) - R(2, 2));
    b = (R(0, 1) + R(1, 0)) / (4 * c); d = (R(1, 2) + R(2, 1)) / (4 * c); a = (R(0, 2) - R(2, 0)) / (4 * c);
  } else {
    d = 0.5 * Math.sqrt(1 + R(2, 2) - R(0, 0) - R(1, 1));
    b = (R(0, 2) + R(2, 0)) / (4 * d); c = (R(1, 2) + R(2, 1)) / (4 * d); a = (R(1, 0) - R(0, 1)) / (4 * d);
  }
  if (a < 0) { b = -b; c = -c; d = -d; } // the file stores b, c, d and implies a >= 0
  return { b, c, d, qfac };
}
