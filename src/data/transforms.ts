// Volume operations for data loading: resampling, cropping/padding and intensity normalisation.
// Plain loops over typed arrays (no tfjs): these run once per case in preprocessing or once per crop in training.
// Recipe: nnU-Net v1 preprocessing (docs/nnformer.md §4): crop to the non-zero box, resample to the
// target spacing, then CT: clip to foreground [0.5, 99.5] percentiles and z-score with foreground mean/std, or
// MRI: per-image z-score (BraTS: over the non-zero mask only, outside = 0).
// Differs from nnU-Net: images are resampled trilinearly (nnU-Net: cubic, separate-z for anisotropic data) and
// labels by nearest neighbour (nnU-Net: linear on the one-hot encoding). Both keep the label set and are much cheaper.
import { Affine, Volume, VoxelArray } from "./volume";
import type { Vec3 } from "../runtime/math";

/** The voxel part of a Volume: enough for crops and augmentation. A Volume is a Grid. */
export interface Grid<T extends VoxelArray = VoxelArray> {
  /** Values, length D*H*W*channels, channels fastest. */
  data: T;
  /** [D, H, W]. */
  shape: Vec3;
  channels: number;
}

/** "linear" (trilinear, for images) or "nearest" (for label maps). */
export type ResampleMode = "linear" | "nearest";

/** An axis-aligned box in voxels: start may be negative and start + size may pass the end (padding). */
export interface Box {
  start: Vec3;
  size: Vec3;
}

/** Foreground intensity statistics of a CT training set (nnU-Net "intensityproperties"). */
export interface CtStats {
  /** [0.5, 99.5] percentiles of foreground voxels, the clip range. */
  clip: [number, number];
  mean: number;
  std: number;
  /** Number of foreground voxels the statistics were computed from. */
  count: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Validation helpers: every error names the argument, its value and what to do about it.

const fmt = (v: unknown): string => {
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as unknown as ArrayLike<number>).length})`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
};

/** Throws unless `shape` is three positive integers. */
export function checkShape3(fn: string, name: string, shape: unknown, allowZero = false): asserts shape is Vec3 {
  const ok =
    Array.isArray(shape) &&
    shape.length === 3 &&
    shape.every((n) => Number.isInteger(n) && (allowZero ? n >= 0 : n > 0));
  if (!ok) {
    throw new Error(
      `${fn}: ${name} must be three ${allowZero ? "non-negative" : "positive"} integers [D, H, W], got ${fmt(shape)}; ` +
        `pass e.g. [64, 64, 64]`,
    );
  }
}

function checkInt3(fn: string, name: string, v: unknown): asserts v is Vec3 {
  if (!(Array.isArray(v) && v.length === 3 && v.every((n) => Number.isInteger(n)))) {
    throw new Error(`${fn}: ${name} must be three integers [d, h, w] (may be negative), got ${fmt(v)}`);
  }
}

function checkSpacing(fn: string, name: string, s: unknown): asserts s is Vec3 {
  if (!(Array.isArray(s) && s.length === 3 && s.every((x) => typeof x === "number" && Number.isFinite(x) && x > 0))) {
    throw new Error(
      `${fn}: ${name} must be three positive voxel sizes in mm [D, H, W], got ${fmt(s)}; ` +
        `fix the header (pixdim) or pass e.g. [1, 1, 1]`,
    );
  }
}

/** Throws unless the grid's data length matches shape and channels. */
export function checkGrid(fn: string, name: string, g: Grid): void {
  if (!g || typeof g !== "object" || !ArrayBuffer.isView(g.data)) {
    throw new Error(`${fn}: ${name} must be a volume/grid with a typed-array 'data', got ${fmt(g)}`);
  }
  checkShape3(fn, `${name}.shape`, g.shape);
  if (!Number.isInteger(g.channels) || g.channels < 1) {
    throw new Error(
      `${fn}: ${name}.channels must be a positive integer, got ${fmt(g.channels)}; use 1 for a plain image`,
    );
  }
  const want = g.shape[0] * g.shape[1] * g.shape[2] * g.channels;
  if (g.data.length !== want) {
    const src = (g as Partial<Volume>).source ? ` (${(g as Volume).source})` : "";
    throw new Error(
      `${fn}: ${name}${src} has ${g.data.length} values but shape ${fmt(g.shape)} x ${g.channels} channel(s) ` +
        `needs ${want}; fix shape/channels to match the data`,
    );
  }
}

function checkVolume(fn: string, name: string, v: Volume): void {
  checkGrid(fn, name, v);
  checkSpacing(fn, `${name}.spacing${v.source ? ` (${v.source})` : ""}`, v.spacing);
  if (!Array.isArray(v.affine) || v.affine.length !== 4 || !v.affine.every((r) => Array.isArray(r) && r.length === 4)) {
    throw new Error(
      `${fn}: ${name}.affine must be a 4x4 matrix (rows), got ${fmt(v.affine)}; use diagonalAffine(spacing)`,
    );
  }
}

function checkMode(fn: string, mode: unknown): asserts mode is ResampleMode {
  if (mode !== "linear" && mode !== "nearest") {
    throw new Error(`${fn}: mode must be "linear" (images) or "nearest" (label maps), got ${fmt(mode)}`);
  }
}

/** A new typed array of the same kind as `like`. */
export function allocLike<T extends VoxelArray>(like: T, n: number): T {
  return new (like.constructor as new (n: number) => T)(n);
}

// ---------------------------------------------------------------------------------------------------------------
// Affine bookkeeping. The NIfTI affine acts on (i, j, k) = (w, h, d): column 0 is the W axis, column 2 the D axis.

const AFFINE_COL_OF_AXIS = [2, 1, 0]; // [D, H, W] axis -> affine column

/** Affine of a grid whose voxel p maps to old voxel p * ratio + offset (per [D, H, W] axis). */
function remapAffine(a: Affine, ratio: number[], offset: number[]): Affine {
  const out = a.map((row) => row.slice());
  for (let r = 0; r < 3; r++) {
    let shift = 0;
    for (let axis = 0; axis < 3; axis++) {
      const c = AFFINE_COL_OF_AXIS[axis];
      out[r][c] = a[r][c] * ratio[axis];
      shift += a[r][c] * offset[axis];
    }
    out[r][3] = a[r][3] + shift;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Resampling

/** Per-axis sampling tables: new index p reads old coordinate x = p * ratio + offset, clamped to [0, n - 1]. */
function linearTable(nOld: number, nNew: number, ratio: number, offset: number) {
  const i0 = new Int32Array(nNew),
    i1 = new Int32Array(nNew),
    t = new Float64Array(nNew);
  for (let p = 0; p < nNew; p++) {
    let x = p * ratio + offset;
    if (x < 0) x = 0;
    if (x > nOld - 1) x = nOld - 1;
    const f = Math.floor(x);
    i0[p] = f;
    i1[p] = Math.min(f + 1, nOld - 1);
    t[p] = x - f;
  }
  return { i0, i1, t };
}

function nearestTable(nOld: number, nNew: number, ratio: number, offset: number): Int32Array {
  const idx = new Int32Array(nNew);
  for (let p = 0; p < nNew; p++) {
    // the tiny epsilon makes exact ties (x.5, common for factor-2 resizes) round up despite float noise
    const r = Math.floor(p * ratio + offset + 0.5 + 1e-9);
    idx[p] = r < 0 ? 0 : r > nOld - 1 ? nOld - 1 : r;
  }
  return idx;
}

/** Axis-aligned resample of a grid: new voxel p reads old coordinate p * ratio + offset (edge-clamped). */
function resampleGrid(g: Grid, newShape: Vec3, ratio: number[], offset: number[], mode: ResampleMode): VoxelArray {
  const [D, H, W] = g.shape;
  const C = g.channels;
  const [nd, nh, nw] = newShape;
  const src = g.data;
  if (mode === "nearest") {
    const out = allocLike(src, nd * nh * nw * C);
    const td = nearestTable(D, nd, ratio[0], offset[0]);
    const th = nearestTable(H, nh, ratio[1], offset[1]);
    const tw = nearestTable(W, nw, ratio[2], offset[2]);
    let o = 0;
    for (let d = 0; d < nd; d++) {
      const bd = td[d] * H;
      for (let h = 0; h < nh; h++) {
        const bh = (bd + th[h]) * W;
        for (let w = 0; w < nw; w++) {
          const s = (bh + tw[w]) * C;
          for (let c = 0; c < C; c++) out[o++] = src[s + c];
        }
      }
    }
    return out;
  }
  const out = new Float32Array(nd * nh * nw * C);
  const td = linearTable(D, nd, ratio[0], offset[0]);
  const th = linearTable(H, nh, ratio[1], offset[1]);
  const tw = linearTable(W, nw, ratio[2], offset[2]);
  const HWC = H * W * C,
    WC = W * C;
  let o = 0;
  for (let d = 0; d < nd; d++) {
    const d0 = td.i0[d] * HWC,
      d1 = td.i1[d] * HWC,
      fd = td.t[d];
    for (let h = 0; h < nh; h++) {
      const h0 = th.i0[h] * WC,
        h1 = th.i1[h] * WC,
        fh = th.t[h];
      const r00 = d0 + h0,
        r01 = d0 + h1,
        r10 = d1 + h0,
        r11 = d1 + h1;
      for (let w = 0; w < nw; w++) {
        const w0 = tw.i0[w] * C,
          w1 = tw.i1[w] * C,
          fw = tw.t[w];
        for (let c = 0; c < C; c++) {
          const a = src[r00 + w0 + c] + (src[r00 + w1 + c] - src[r00 + w0 + c]) * fw;
          const b = src[r01 + w0 + c] + (src[r01 + w1 + c] - src[r01 + w0 + c]) * fw;
          const e = src[r10 + w0 + c] + (src[r10 + w1 + c] - src[r10 + w0 + c]) * fw;
          const f = src[r11 + w0 + c] + (src[r11 + w1 + c] - src[r11 + w0 + c]) * fw;
          const ab = a + (b - a) * fh;
          const ef = e + (f - e) * fh;
          out[o++] = ab + (ef - ab) * fd;
        }
      }
    }
  }
  return out;
}

/**
 * Resamples to a target voxel size [D, H, W] mm: new shape = round(shape * spacing / target) (at least 1).
 * The new grid is centred on the old one (same centre in world space) and has exactly the target spacing;
 * the affine is updated so every new voxel centre keeps its world position. Edges are clamped (no zero fill).
 * "linear" returns float32 (images); "nearest" keeps the array type and the label set (labels).
 */
export function resampleToSpacing(vol: Volume, targetSpacing: Vec3, mode: "linear"): Volume<Float32Array>;
export function resampleToSpacing<T extends VoxelArray>(
  vol: Volume<T>,
  targetSpacing: Vec3,
  mode: "nearest",
): Volume<T>;
export function resampleToSpacing(vol: Volume, targetSpacing: Vec3, mode: ResampleMode): Volume;
export function resampleToSpacing(vol: Volume, targetSpacing: Vec3, mode: ResampleMode): Volume {
  const fn = "resampleToSpacing";
  checkVolume(fn, "vol", vol);
  checkSpacing(fn, "targetSpacing", targetSpacing);
  checkMode(fn, mode);
  const ratio = [0, 1, 2].map((a) => targetSpacing[a] / vol.spacing[a]);
  const shape = [0, 1, 2].map((a) =>
    Math.max(1, Math.round((vol.shape[a] * vol.spacing[a]) / targetSpacing[a])),
  ) as Vec3;
  // centre the new grid on the old one: old centre (n-1)/2 = new centre (n'-1)/2 * ratio + offset
  const offset = [0, 1, 2].map((a) => (vol.shape[a] - 1 - (shape[a] - 1) * ratio[a]) / 2);
  return {
    data: resampleGrid(vol, shape, ratio, offset, mode),
    shape,
    channels: vol.channels,
    spacing: [targetSpacing[0], targetSpacing[1], targetSpacing[2]],
    affine: remapAffine(vol.affine, ratio, offset),
    source: vol.source,
  };
}

/** A grid to resample onto: its shape and voxel size, and optionally the affine to give the result. */
export interface GridGeometry {
  shape: Vec3;
  spacing: Vec3;
  /** The result's affine; default: the input's affine moved to the new grid (same world position per voxel). */
  affine?: Affine;
}

/**
 * Resamples onto a grid of the given shape and spacing that shares the volume's centre: the inverse of
 * resampleToSpacing. A prediction made on `resampleToSpacing(image, s)` goes back to the image's own grid with
 * `resampleToGrid(pred, { shape: image.shape, spacing: image.spacing, affine: image.affine }, mode)`: both calls
 * map voxel centres through the same shared centre, so the round trip is exact where the grids' voxels coincide.
 * Edges are clamped. "linear" returns float32 (probabilities, images); "nearest" keeps the type (labels).
 */
export function resampleToGrid(vol: Volume, grid: GridGeometry, mode: "linear"): Volume<Float32Array>;
export function resampleToGrid<T extends VoxelArray>(vol: Volume<T>, grid: GridGeometry, mode: "nearest"): Volume<T>;
export function resampleToGrid(vol: Volume, grid: GridGeometry, mode: ResampleMode): Volume;
export function resampleToGrid(vol: Volume, grid: GridGeometry, mode: ResampleMode): Volume {
  const fn = "resampleToGrid";
  checkVolume(fn, "vol", vol);
  checkShape3(fn, "grid.shape", grid?.shape);
  checkSpacing(fn, "grid.spacing", grid.spacing);
  checkMode(fn, mode);
  const ratio = [0, 1, 2].map((a) => grid.spacing[a] / vol.spacing[a]);
  const offset = [0, 1, 2].map((a) => (vol.shape[a] - 1 - (grid.shape[a] - 1) * ratio[a]) / 2);
  return {
    data: resampleGrid(vol, grid.shape, ratio, offset, mode),
    shape: [grid.shape[0], grid.shape[1], grid.shape[2]],
    channels: vol.channels,
    spacing: [grid.spacing[0], grid.spacing[1], grid.spacing[2]],
    affine: grid.affine ? grid.affine.map((r) => r.slice()) : remapAffine(vol.affine, ratio, offset),
    source: vol.source,
  };
}

/**
 * Resamples to a given [D, H, W] shape covering the same extent (voxel corners aligned, like skimage/torch
 * resize with align_corners=False). Spacing becomes spacing * oldShape / newShape; the affine is updated.
 */
export function resampleToShape(vol: Volume, shape: Vec3, mode: "linear"): Volume<Float32Array>;
export function resampleToShape<T extends VoxelArray>(vol: Volume<T>, shape: Vec3, mode: "nearest"): Volume<T>;
export function resampleToShape(vol: Volume, shape: Vec3, mode: ResampleMode): Volume;
export function resampleToShape(vol: Volume, shape: Vec3, mode: ResampleMode): Volume {
  const fn = "resampleToShape";
  checkVolume(fn, "vol", vol);
  checkShape3(fn, "shape", shape);
  checkMode(fn, mode);
  const ratio = [0, 1, 2].map((a) => vol.shape[a] / shape[a]);
  const offset = ratio.map((r) => 0.5 * r - 0.5);
  return {
    data: resampleGrid(vol, shape, ratio, offset, mode),
    shape: [shape[0], shape[1], shape[2]],
    channels: vol.channels,
    spacing: [0, 1, 2].map((a) => vol.spacing[a] * ratio[a]) as Vec3,
    affine: remapAffine(vol.affine, ratio, offset),
    source: vol.source,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Cropping and padding

/**
 * Copies box [start, start + size) of a [D, H, W, C] array into `out` (length prod(size) * C);
 * voxels outside the source get `padValue`. The fast path copies whole W-runs with set().
 */
export function copyBox(
  src: VoxelArray,
  shape: Vec3,
  channels: number,
  start: Vec3,
  size: Vec3,
  padValue: number,
  out: VoxelArray,
): void {
  const [D, H, W] = shape;
  const C = channels;
  const [sd, sh, sw] = start;
  const [nd, nh, nw] = size;
  // the W-run [w0, w1) of output indices that falls inside the source
  const w0 = Math.max(0, -sw),
    w1 = Math.min(nw, W - sw);
  const sameKind = src.constructor === out.constructor;
  const rowLen = nw * C;
  for (let d = 0; d < nd; d++) {
    const id = d + sd;
    for (let h = 0; h < nh; h++) {
      const ih = h + sh;
      const o = (d * nh + h) * rowLen;
      if (id < 0 || id >= D || ih < 0 || ih >= H || w1 <= w0) {
        out.fill(padValue, o, o + rowLen);
        continue;
      }
      if (w0 > 0) out.fill(padValue, o, o + w0 * C);
      if (w1 < nw) out.fill(padValue, o + w1 * C, o + rowLen);
      const s = ((id * H + ih) * W + (sw + w0)) * C;
      const len = (w1 - w0) * C;
      if (sameKind) {
        (out as Float32Array).set((src as Float32Array).subarray(s, s + len), o + w0 * C);
      } else {
        for (let k = 0; k < len; k++) out[o + w0 * C + k] = src[s + k];
      }
    }
  }
}

/**
 * Crops box [start, start + size) from a volume; parts of the box outside the volume are filled with padValue.
 * padValue null means padding is not allowed: a box that leaves the volume throws. The affine origin moves to the
 * box's first voxel, so world positions are unchanged.
 */
export function cropBox<T extends VoxelArray>(
  vol: Volume<T>,
  start: Vec3,
  size: Vec3,
  padValue: number | null = 0,
): Volume<T> {
  const fn = "cropBox";
  checkVolume(fn, "vol", vol);
  checkInt3(fn, "start", start);
  checkShape3(fn, "size", size);
  if (padValue === null) {
    for (let a = 0; a < 3; a++) {
      if (start[a] < 0 || start[a] + size[a] > vol.shape[a]) {
        throw new Error(
          `${fn}: box start ${fmt(start)} size ${fmt(size)} leaves volume shape ${fmt(vol.shape)} on axis ${"DHW"[a]} ` +
            `and padValue is null (padding disabled); pass a padValue (e.g. 0) or a box inside the volume`,
        );
      }
    }
  } else if (typeof padValue !== "number" || Number.isNaN(padValue)) {
    throw new Error(`${fn}: padValue must be a number or null (no padding), got ${fmt(padValue)}`);
  }
  const out = allocLike(vol.data, size[0] * size[1] * size[2] * vol.channels);
  copyBox(vol.data, vol.shape, vol.channels, start, size, padValue ?? 0, out);
  return {
    data: out,
    shape: [size[0], size[1], size[2]],
    channels: vol.channels,
    spacing: [vol.spacing[0], vol.spacing[1], vol.spacing[2]],
    affine: remapAffine(vol.affine, [1, 1, 1], start),
    source: vol.source,
  };
}

export interface CropOrPadOptions {
  /** Centre the crop/pad (true, default) or keep voxel (0, 0, 0) fixed and crop/pad at the far end. */
  center?: boolean;
  /** Value for padded voxels (default 0). */
  padValue?: number;
  /** Set false to forbid padding: a target larger than the volume then throws. Default true. */
  allowPad?: boolean;
}

/**
 * Crops and/or pads a volume to `shape` (per axis: crop if larger, pad if smaller). Returns the new volume and the
 * offset: new voxel p is old voxel p + offset (negative where padded). Put predictions back with uncropOrPad.
 * Centred splits follow nnU-Net: crop starts at floor((n - n') / 2), padding puts floor(diff / 2) before.
 */
export function cropOrPad<T extends VoxelArray>(
  vol: Volume<T>,
  shape: Vec3,
  options: CropOrPadOptions = {},
): { volume: Volume<T>; offset: Vec3 } {
  const fn = "cropOrPad";
  checkVolume(fn, "vol", vol);
  checkShape3(fn, "shape", shape);
  const { center = true, padValue = 0, allowPad = true } = options;
  if (!allowPad) {
    for (let a = 0; a < 3; a++) {
      if (shape[a] > vol.shape[a]) {
        throw new Error(
          `${fn}: shape ${fmt(shape)} is larger than volume shape ${fmt(vol.shape)} on axis ${"DHW"[a]} and ` +
            `allowPad is false; pass a shape <= the volume shape or set allowPad: true`,
        );
      }
    }
  }
  const offset = [0, 1, 2].map((a) => {
    if (!center) return 0;
    const diff = vol.shape[a] - shape[a];
    return diff >= 0 ? Math.floor(diff / 2) : -Math.floor(-diff / 2);
  }) as Vec3;
  return { volume: cropBox(vol, offset, shape, padValue), offset };
}

/** Inverse of cropOrPad / cropBox: puts `vol` back into a grid of `originalShape` at `offset`, filling the rest. */
export function uncropOrPad<T extends VoxelArray>(
  vol: Volume<T>,
  originalShape: Vec3,
  offset: Vec3,
  fillValue = 0,
): Volume<T> {
  checkInt3("uncropOrPad", "offset", offset);
  checkShape3("uncropOrPad", "originalShape", originalShape);
  return cropBox(vol, [-offset[0], -offset[1], -offset[2]], originalShape, fillValue);
}

/** Smallest box holding every voxel that is non-zero in any channel, or null if the volume is all zero. */
export function nonZeroBoundingBox(vol: Grid): Box | null {
  checkGrid("nonZeroBoundingBox", "vol", vol);
  const C = vol.channels;
  const x = vol.data;
  return boundingBoxWhere(vol.shape, (v) => {
    for (let c = 0; c < C; c++) if (x[v * C + c] !== 0) return true;
    return false;
  });
}

/** Smallest box holding every voxel (flat index into [D, H, W]) for which `inside` is true, or null if there is none. */
export function boundingBoxWhere(shape: Vec3, inside: (voxel: number) => boolean): Box | null {
  const [D, H, W] = shape;
  const lo = [D, H, W],
    hi = [-1, -1, -1];
  let i = 0;
  for (let d = 0; d < D; d++) {
    for (let h = 0; h < H; h++) {
      for (let w = 0; w < W; w++, i++) {
        if (!inside(i)) continue;
        if (d < lo[0]) lo[0] = d;
        if (d > hi[0]) hi[0] = d;
        if (h < lo[1]) lo[1] = h;
        if (h > hi[1]) hi[1] = h;
        if (w < lo[2]) lo[2] = w;
        if (w > hi[2]) hi[2] = w;
      }
    }
  }
  if (hi[0] < 0) return null;
  return { start: [lo[0], lo[1], lo[2]], size: [hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1] };
}

// ---------------------------------------------------------------------------------------------------------------
// Intensity normalisation

function withData(vol: Volume, data: Float32Array): Volume<Float32Array> {
  return {
    data,
    shape: [vol.shape[0], vol.shape[1], vol.shape[2]],
    channels: vol.channels,
    spacing: [vol.spacing[0], vol.spacing[1], vol.spacing[2]],
    affine: vol.affine.map((r) => r.slice()),
    source: vol.source,
  };
}

/** Percentile (0-100) of sorted values, linear interpolation between ranks (numpy's default). */
function percentileSorted(sorted: Float64Array | Float32Array, q: number): number {
  const pos = (q / 100) * (sorted.length - 1);
  const lo = Math.floor(pos),
    hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * nnU-Net CT statistics over the foreground (label > 0) voxels of all training cases: the [0.5, 99.5] percentiles
 * (the clip range) and the mean and std of the unclipped foreground intensities. `stride` keeps every n-th
 * foreground voxel to save memory (nnU-Net v1 uses 10); default 1 (all).
 */
export function computeCtStats(images: Volume[], labels: Volume[], options: { stride?: number } = {}): CtStats {
  const fn = "computeCtStats";
  const { stride = 1 } = options;
  if (!Array.isArray(images) || !Array.isArray(labels) || images.length !== labels.length || images.length === 0) {
    throw new Error(
      `${fn}: images and labels must be non-empty arrays of the same length, got ${images?.length} images and ` +
        `${labels?.length} labels; pass one label map per image`,
    );
  }
  if (!Number.isInteger(stride) || stride < 1)
    throw new Error(`${fn}: options.stride must be a positive integer, got ${fmt(stride)}`);
  let total = 0;
  const counts: number[] = [];
  images.forEach((im, k) => {
    checkGrid(fn, `images[${k}]`, im);
    checkGrid(fn, `labels[${k}]`, labels[k]);
    if (im.channels !== 1)
      throw new Error(`${fn}: images[${k}] has ${im.channels} channels; CT statistics need single-channel images`);
    if (labels[k].channels !== 1)
      throw new Error(`${fn}: labels[${k}] has ${labels[k].channels} channels; pass a label map with 1 channel`);
    if (im.shape.some((n, a) => n !== labels[k].shape[a])) {
      throw new Error(
        `${fn}: images[${k}] shape ${fmt(im.shape)} differs from labels[${k}] shape ${fmt(labels[k].shape)}; resample both to the same grid`,
      );
    }
    let n = 0;
    const lab = labels[k].data;
    for (let i = 0; i < lab.length; i++) if (lab[i] > 0) n++;
    const kept = Math.ceil(n / stride);
    counts.push(kept);
    total += kept;
  });
  if (total === 0)
    throw new Error(`${fn}: the labels have no foreground voxels (label > 0); CT statistics need foreground`);
  const vals = new Float64Array(total);
  let j = 0;
  let sum = 0;
  images.forEach((im, k) => {
    const lab = labels[k].data,
      x = im.data;
    let seen = 0;
    for (let i = 0; i < lab.length; i++) {
      if (lab[i] > 0) {
        if (seen % stride === 0) {
          vals[j++] = x[i];
          sum += x[i];
        }
        seen++;
      }
    }
  });
  const mean = sum / total;
  let ss = 0;
  for (let i = 0; i < total; i++) ss += (vals[i] - mean) * (vals[i] - mean);
  vals.sort();
  return {
    clip: [percentileSorted(vals, 0.5), percentileSorted(vals, 99.5)],
    mean,
    std: Math.sqrt(ss / total),
    count: total,
  };
}

/** nnU-Net CT normalisation: clip to stats.clip, then (x - mean) / std. Same for every channel. Returns float32. */
export function ctNormalize(
  vol: Volume,
  stats: { clip: [number, number]; mean: number; std: number },
): Volume<Float32Array> {
  const fn = "ctNormalize";
  checkVolume(fn, "vol", vol);
  const { clip, mean, std } = stats ?? ({} as CtStats);
  if (!Array.isArray(clip) || clip.length !== 2 || !(clip[0] <= clip[1])) {
    throw new Error(`${fn}: stats.clip must be [lo, hi] with lo <= hi, got ${fmt(clip)}; use computeCtStats(...).clip`);
  }
  if (!Number.isFinite(mean)) throw new Error(`${fn}: stats.mean must be a finite number, got ${fmt(mean)}`);
  if (!(Number.isFinite(std) && std > 0))
    throw new Error(`${fn}: stats.std must be a positive number, got ${fmt(std)}; use computeCtStats(...).std`);
  const [lo, hi] = clip;
  const x = vol.data;
  const out = new Float32Array(x.length);
  const inv = 1 / std;
  for (let i = 0; i < x.length; i++) {
    const v = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
    out[i] = (v - mean) * inv;
  }
  return withData(vol, out);
}

/** CT window (e.g. soft tissue: center 40, width 400 HU) mapped linearly to [0, 1] and clamped. Returns float32. */
export function windowCt(vol: Volume, center: number, width: number): Volume<Float32Array> {
  const fn = "windowCt";
  checkVolume(fn, "vol", vol);
  if (!Number.isFinite(center))
    throw new Error(`${fn}: center must be a finite number of HU, got ${fmt(center)}; e.g. 40 for soft tissue`);
  if (!(Number.isFinite(width) && width > 0))
    throw new Error(`${fn}: width must be a positive number of HU, got ${fmt(width)}; e.g. 400 for soft tissue`);
  const lo = center - width / 2;
  const inv = 1 / width;
  const x = vol.data;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = (x[i] - lo) * inv;
    out[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return withData(vol, out);
}

/**
 * Per-channel z-score (MRI). With nonZeroOnly (BraTS), statistics come from the voxels that are non-zero in any
 * channel (the brain mask, as nnU-Net's nonzero mask) and everything outside stays 0. Returns float32.
 */
export function zScore(vol: Volume, options: { nonZeroOnly?: boolean } = {}): Volume<Float32Array> {
  const fn = "zScore";
  checkVolume(fn, "vol", vol);
  const { nonZeroOnly = false } = options;
  const C = vol.channels;
  const x = vol.data;
  const n = x.length / C;
  let mask: Uint8Array | null = null;
  if (nonZeroOnly) {
    mask = new Uint8Array(n);
    for (let v = 0, i = 0; v < n; v++) {
      let nz = 0;
      for (let c = 0; c < C; c++, i++) if (x[i] !== 0) nz = 1;
      mask[v] = nz;
    }
  }
  const out = new Float32Array(x.length);
  for (let c = 0; c < C; c++) {
    let sum = 0,
      cnt = 0;
    for (let v = 0; v < n; v++) {
      if (mask && !mask[v]) continue;
      sum += x[v * C + c];
      cnt++;
    }
    if (cnt === 0) continue; // empty mask: the channel stays all zero
    const mean = sum / cnt;
    let ss = 0;
    for (let v = 0; v < n; v++) {
      if (mask && !mask[v]) continue;
      const e = x[v * C + c] - mean;
      ss += e * e;
    }
    const inv = 1 / (Math.sqrt(ss / cnt) + 1e-8); // nnU-Net's epsilon
    for (let v = 0; v < n; v++) {
      if (mask && !mask[v]) continue; // outside the mask stays 0
      out[v * C + c] = (x[v * C + c] - mean) * inv;
    }
  }
  return withData(vol, out);
}
