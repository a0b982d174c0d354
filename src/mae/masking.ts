// Masking for MAE pretraining of the nnFormer encoder (docs/mae.md §1).
// A crop is split into non-overlapping mask units (MU, cubes in voxels); a ratio r of them is hidden per sample.
//   sparse  (default; SparK/S3D): masked voxels zeroed, every encoder conv output re-masked at its resolution, masked
//           keys pushed to −1e9 in window attention, masked tokens zeroed after each block. Static shapes, same weights
//           as the segmentation encoder, nothing leaks through the overlapping 3×3×3 convs.
//   simmim  (SimMIM): masked voxels zeroed, a learned token swapped in after the patch embedding, all tokens attend.
//   compact (UM-MAE uniform sampling): exactly 1 of every 1×2×2 (r 0.75) or 2×2×2 (r 0.875) group of MUs is kept; the
//           kept units are packed into a half-size crop and ONLY that goes through the encoder; features are scattered
//           back to the full grids for the decoder. See mae3d.ts for how the compact encoder shares the RPB tables.
// Everything here is plain JS on typed arrays (masks are data, drawn on the CPU from a seeded rng).
import * as tf from "@tensorflow/tfjs";

import type { NnFormerConfig, NnFormerPlan } from "../models/nnformer";
import { planNnFormer } from "../models/nnformer";
import { keyMaskFromVisibility, partitionIndex, type WindowGeometry } from "../layers/window_attention3d";
import type { Rng } from "../runtime/random";
import type { Vec3 } from "../runtime/math";
import { prod } from "../runtime/math";

export type MaskMode = "sparse" | "simmim" | "compact";
export const MASK_MODES: readonly MaskMode[] = ["sparse", "simmim", "compact"];

export interface MaskConfig {
  mode: MaskMode;
  /** Fraction of mask units hidden, in (0, 1). 0.75 (MAE, sparse, compact), 0.6 (SimMIM); compact: 0.75 or 0.875 only. */
  ratio: number;
  /** Mask-unit size in voxels [D, H, W]; a multiple of the embedding patch that divides the crop. Default patch × stage-0 window. */
  unit: Vec3;
}

const fmt = (v: unknown) => JSON.stringify(v);

/** Embedding patch × stage-0 window, so an unshifted stage-0 window is all visible or all masked ((2,4,4)×4 = (8,16,16)). */
export function defaultMaskUnit(c: NnFormerConfig): Vec3 {
  const w = planNnFormer(c).encoder[0].blocks[0].window; // effective window (after the global rule)
  return c.patchSize.map((p, a) => p * w[a]) as Vec3;
}

/** A MaskConfig with the defaults for a model: sparse, r 0.75 (simmim 0.6), unit = patch × stage-0 window. */
export function defaultMaskConfig(c: NnFormerConfig, over: Partial<MaskConfig> = {}): MaskConfig {
  const mode = over.mode ?? "sparse";
  return { mode, ratio: over.ratio ?? (mode === "simmim" ? 0.6 : 0.75), unit: over.unit ?? defaultMaskUnit(c) };
}

/** Mask units per axis: crop / unit. */
export function maskUnitGrid(crop: Vec3, unit: Vec3): Vec3 {
  return crop.map((n, a) => n / unit[a]) as Vec3;
}

/** The 1×2×2 (r 0.75) or 2×2×2 (r 0.875) group of compact mode; throws for other ratios. */
export function compactGroup(ratio: number): Vec3 {
  if (Math.abs(ratio - 0.75) < 1e-9) return [1, 2, 2];
  if (Math.abs(ratio - 0.875) < 1e-9) return [2, 2, 2];
  throw new Error(
    `mask.ratio = ${ratio}: compact mode keeps exactly 1 unit of every group, so the ratio must be 0.75 (1 of each 1×2×2 group) or 0.875 (1 of each 2×2×2); use one of those, or mode "sparse" for other ratios`,
  );
}

/** Visible units per sample: round((1 − r)·N). */
export function visibleCount(ratio: number, numUnits: number): number {
  return Math.round((1 - ratio) * numUnits);
}

/**
 * Throws, naming the value and the fix, unless the mask settings fit the model: ratio in (0, 1) leaving at least one
 * visible and one masked unit, unit a positive multiple of the embedding patch that divides the crop; compact: a valid
 * ratio and a unit grid divisible by the group.
 */
export function checkMaskConfig(m: MaskConfig, c: NnFormerConfig): void {
  const bad = (field: string, value: unknown, fix: string): never => {
    throw new Error(`mask.${field} = ${fmt(value)}: ${fix}`);
  };
  if (!MASK_MODES.includes(m.mode)) bad("mode", m.mode, `use one of ${MASK_MODES.join(", ")}`);
  if (!(typeof m.ratio === "number" && m.ratio > 0 && m.ratio < 1)) {
    bad("ratio", m.ratio, "use a fraction strictly between 0 and 1 (0.75 for MAE/sparse, 0.6 for SimMIM)");
  }
  const u = m.unit as unknown;
  if (!(Array.isArray(u) && u.length === 3 && u.every((n) => Number.isInteger(n) && n > 0))) {
    bad(
      "unit",
      u,
      `give three positive voxel sizes [D, H, W], e.g. ${fmt(defaultMaskUnit(c))} (patch × stage-0 window)`,
    );
  }
  m.unit.forEach((n, a) => {
    if (n % c.patchSize[a]) {
      bad(
        "unit",
        m.unit,
        `axis ${a}: ${n} is not a multiple of the embedding patch ${fmt(c.patchSize)}; a unit must cover whole tokens, e.g. ${fmt(defaultMaskUnit(c))}`,
      );
    }
    if (c.cropSize[a] % n) {
      bad(
        "unit",
        m.unit,
        `axis ${a}: ${n} does not divide the crop ${fmt(c.cropSize)}; choose units that tile the crop, e.g. ${fmt(defaultMaskUnit(c))}`,
      );
    }
  });
  const grid = maskUnitGrid(c.cropSize, m.unit);
  const N = prod(grid);
  const k = visibleCount(m.ratio, N);
  if (k < 1 || k >= N) {
    bad(
      "ratio",
      m.ratio,
      `with ${N} mask units of ${fmt(m.unit)} per crop it keeps ${k} visible; need between 1 and ${N - 1}: change the ratio or use smaller units`,
    );
  }
  if (m.mode === "compact") {
    const g = compactGroup(m.ratio);
    grid.forEach((n, a) => {
      if (n % g[a])
        bad(
          "unit",
          m.unit,
          `compact mode groups units ${g.join("×")}, but the unit grid ${fmt(grid)} is not divisible on axis ${a}; use units of half the size or a larger crop`,
        );
    });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Drawing masks.

/** A drawn mask for a batch: which units are visible, and for compact mode which unit each group kept. */
export interface MaskSample {
  mode: MaskMode;
  ratio: number;
  batch: number;
  crop: Vec3;
  unit: Vec3;
  /** Units per axis. */
  unitGrid: Vec3;
  /** [B·gD·gH·gW], 1 visible / 0 masked, row-major per sample. */
  visible: Uint8Array;
  /** Compact mode: the group [gD, gH, gW] and, per sample and group (row-major over the group grid), the kept unit's flat index. */
  compact?: { group: Vec3; groupGrid: Vec3; kept: Int32Array };
}

/**
 * MAE random masking on a unit grid: per sample, a random permutation (Fisher-Yates from `rng`) keeps exactly
 * round((1 − ratio)·N) units visible. Returns [B·N], 1 visible.
 */
export function randomMasking(rng: Rng, grid: Vec3, ratio: number, batch = 1): Uint8Array {
  if (!(ratio > 0 && ratio < 1))
    throw new Error(`randomMasking: ratio = ${ratio}: use a fraction strictly between 0 and 1, e.g. 0.75`);
  const N = prod(grid);
  const k = visibleCount(ratio, N);
  const out = new Uint8Array(batch * N);
  const order = new Int32Array(N);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < N; i++) order[i] = i;
    for (let i = N - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    for (let i = 0; i < k; i++) out[b * N + order[i]] = 1;
  }
  return out;
}

/** UM-MAE uniform sampling: exactly one random unit of every group is visible. */
export function uniformMasking(
  rng: Rng,
  grid: Vec3,
  group: Vec3,
  batch = 1,
): { visible: Uint8Array; kept: Int32Array; groupGrid: Vec3 } {
  const gg = grid.map((n, a) => n / group[a]) as Vec3;
  if (gg.some((n) => !Number.isInteger(n)))
    throw new Error(`uniformMasking: unit grid ${fmt(grid)} is not divisible by the group ${fmt(group)}`);
  const N = prod(grid),
    G = prod(gg),
    per = prod(group);
  const visible = new Uint8Array(batch * N);
  const kept = new Int32Array(batch * G);
  for (let b = 0; b < batch; b++) {
    let gi = 0;
    for (let d = 0; d < gg[0]; d++)
      for (let h = 0; h < gg[1]; h++)
        for (let w = 0; w < gg[2]; w++, gi++) {
          const r = Math.min(per - 1, Math.floor(rng() * per));
          const od = Math.floor(r / (group[1] * group[2])),
            oh = Math.floor(r / group[2]) % group[1],
            ow = r % group[2];
          const u = ((d * group[0] + od) * grid[1] + h * group[1] + oh) * grid[2] + w * group[2] + ow;
          visible[b * N + u] = 1;
          kept[b * G + gi] = u;
        }
  }
  return { visible, kept, groupGrid: gg };
}

/** Draws the batch's mask for the configured mode (random for sparse/simmim, uniform for compact). */
export function drawMask(rng: Rng, m: MaskConfig, crop: Vec3, batch: number): MaskSample {
  const unitGrid = maskUnitGrid(crop, m.unit);
  const base = {
    mode: m.mode,
    ratio: m.ratio,
    batch,
    crop: [...crop] as Vec3,
    unit: [...m.unit] as Vec3,
    unitGrid,
  };
  if (m.mode === "compact") {
    const group = compactGroup(m.ratio);
    const { visible, kept, groupGrid } = uniformMasking(rng, unitGrid, group, batch);
    return { ...base, visible, compact: { group, groupGrid, kept } };
  }
  return { ...base, visible: randomMasking(rng, unitGrid, m.ratio, batch) };
}

// ---------------------------------------------------------------------------------------------------------------
// Visibility at every resolution.

/**
 * Visibility on any grid that tiles the crop (voxels, embedding grids, stage grids): [B·S·H·W], 1 when the cell
 * overlaps a visible unit ("a coarser position is active if any child is visible").
 */
export function visibilityAt(s: MaskSample, grid: Vec3): Uint8Array {
  const { crop, unit, unitGrid: ug, batch } = s;
  // per axis: the unit range [lo, hi) each cell overlaps
  const ranges = grid.map((n, a) => {
    const lo = new Int32Array(n),
      hi = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const v0 = Math.floor((i * crop[a]) / n),
        v1 = Math.ceil(((i + 1) * crop[a]) / n);
      lo[i] = Math.floor(v0 / unit[a]);
      hi[i] = Math.max(lo[i] + 1, Math.ceil(v1 / unit[a]));
    }
    return { lo, hi };
  });
  const L = prod(grid),
    N = prod(ug);
  const out = new Uint8Array(batch * L);
  for (let b = 0; b < batch; b++) {
    let o = b * L;
    for (let d = 0; d < grid[0]; d++)
      for (let h = 0; h < grid[1]; h++)
        for (let w = 0; w < grid[2]; w++, o++) {
          let any = 0;
          for (let ud = ranges[0].lo[d]; ud < ranges[0].hi[d] && !any; ud++)
            for (let uh = ranges[1].lo[h]; uh < ranges[1].hi[h] && !any; uh++)
              for (let uw = ranges[2].lo[w]; uw < ranges[2].hi[w]; uw++) {
                if (s.visible[b * N + (ud * ug[1] + uh) * ug[2] + uw]) {
                  any = 1;
                  break;
                }
              }
          out[o] = any;
        }
  }
  return out;
}

/** Voxel visibility [B·D·H·W] (1 visible). */
export function voxelVisibility(s: MaskSample): Uint8Array {
  return visibilityAt(s, s.crop);
}

/** Zeroes the masked voxels of crops x [B, D, H, W, C] (channels fastest); returns a new array. */
export function maskVolume(x: Float32Array, s: MaskSample, channels = 1): Float32Array {
  const vis = voxelVisibility(s);
  if (x.length !== vis.length * channels) {
    throw new Error(
      `maskVolume: x has ${x.length} values, expected B·D·H·W·C = ${vis.length}·${channels} for crop ${fmt(s.crop)}`,
    );
  }
  const out = new Float32Array(x.length);
  for (let i = 0; i < vis.length; i++)
    if (vis[i]) for (let c = 0; c < channels; c++) out[i * channels + c] = x[i * channels + c];
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Sparse-mode encoder hooks (EncoderMaskHooks of nnformer.ts).

/** True when some window of a block mixes visible and masked tokens (only then does the key mask change anything). */
function hasMixedWindow(g: WindowGeometry, batch: number, vis: Uint8Array): boolean {
  const L = prod(g.grid);
  const padRow = batch * L;
  const idx = partitionIndex(g, batch, padRow);
  const N = g.tokens;
  for (let w = 0; w < idx.length / N; w++) {
    let seen = -1;
    for (let j = 0; j < N; j++) {
      const r = idx[w * N + j];
      const v = r === padRow ? 1 : vis[r]; // padding joins attention as a visible (zero) token, as in the official code
      if (seen === -1) seen = v;
      else if (v !== seen) return true;
    }
  }
  return false;
}

/**
 * The sparse-mode hooks for NnFormer.encode: afterConv multiplies each conv output by the mask at its resolution,
 * keyMask adds −1e9 (finite: a fully masked window gives a uniform softmax, no NaN) to masked keys, afterBlock zeroes
 * masked tokens. Skips the key mask for blocks whose windows are each all-visible or all-masked (then it changes no
 * visible output: masked rows are zeroed after the block anyway).
 */
export function sparseEncoderHooks(s: MaskSample, keyMaskValue = -1e9) {
  const visCache = new Map<string, Uint8Array>();
  const vis = (grid: Vec3) => {
    const key = `${grid}`;
    let v = visCache.get(key);
    if (!v) visCache.set(key, (v = visibilityAt(s, grid)));
    return v;
  };
  const keyCache = new Map<string, Float32Array | null>();
  return {
    afterConv(x: tf.Tensor5D, site: { grid: Vec3 }): tf.Tensor5D {
      const m = tf.tensor5d(Float32Array.from(vis(site.grid)), [s.batch, ...site.grid, 1]);
      return tf.mul(x, m);
    },
    keyMask(site: { geometry: WindowGeometry; batch: number }): tf.Tensor3D | null {
      const g = site.geometry;
      const key = `${g.grid}|${g.window}|${g.rolled ? g.shift : 0}`;
      let km = keyCache.get(key);
      if (km === undefined) {
        const v = vis(g.grid);
        km = hasMixedWindow(g, site.batch, v) ? keyMaskFromVisibility(g, site.batch, v, keyMaskValue) : null;
        keyCache.set(key, km);
      }
      return km ? tf.tensor3d(km, [site.batch * g.numWindows, g.tokens, g.tokens]) : null;
    },
    afterBlock(x: tf.Tensor2D, site: { grid: Vec3 }): tf.Tensor2D {
      const v = vis(site.grid);
      return tf.mul(x, tf.tensor2d(Float32Array.from(v), [v.length, 1]));
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Compact mode: gather kept units into a half-size crop, and scatter features back.

/** The compact crop: crop ÷ group (voxels). */
export function compactCrop(crop: Vec3, group: Vec3): Vec3 {
  return crop.map((n, a) => n / group[a]) as Vec3;
}

/** Packs the kept unit of every group of x [B, D, H, W, C] into the compact crop [B, D/gD, H/gH, W/gW, C]. */
export function compactGather(x: Float32Array, s: MaskSample, channels = 1): Float32Array {
  if (!s.compact) throw new Error("compactGather: the mask was not drawn in compact mode");
  const { group, groupGrid, kept } = s.compact;
  const { crop, unit, unitGrid: ug, batch } = s;
  const cc = compactCrop(crop, group);
  const C = channels;
  const out = new Float32Array(batch * prod(cc) * C);
  const G = prod(groupGrid);
  const rowOut = unit[2] * C;
  for (let b = 0; b < batch; b++) {
    let gi = 0;
    for (let gd = 0; gd < groupGrid[0]; gd++)
      for (let gh = 0; gh < groupGrid[1]; gh++)
        for (let gw = 0; gw < groupGrid[2]; gw++, gi++) {
          const u = kept[b * G + gi];
          const ud = Math.floor(u / (ug[1] * ug[2])),
            uh = Math.floor(u / ug[2]) % ug[1],
            uw = u % ug[2];
          for (let i = 0; i < unit[0]; i++)
            for (let j = 0; j < unit[1]; j++) {
              const src =
                (((b * crop[0] + ud * unit[0] + i) * crop[1] + uh * unit[1] + j) * crop[2] + uw * unit[2]) * C;
              const dst = (((b * cc[0] + gd * unit[0] + i) * cc[1] + gh * unit[1] + j) * cc[2] + gw * unit[2]) * C;
              out.set(x.subarray(src, src + rowOut), dst);
            }
        }
  }
  return out;
}

/**
 * How a full-crop grid cell is fed from the compact grid: each axis of the cell must be either within one unit
 * ("fine": the cell belongs to one unit, exact scatter from its kept copy, masked units inactive) or span whole groups
 * along every grouped axis ("coarse": the compact cell summarises the same groups, broadcast to the g full cells).
 */
export function compactCellKind(cell: Vec3, unit: Vec3, group: Vec3): "fine" | "coarse" | "mixed" {
  const fine = cell.every((c, a) => c <= unit[a] && unit[a] % c === 0);
  if (fine) return "fine";
  const coarse = cell.every((c, a) =>
    group[a] === 1 ? (c <= unit[a] ? unit[a] % c === 0 : c % unit[a] === 0) : c % (unit[a] * group[a]) === 0,
  );
  return coarse ? "coarse" : "mixed";
}

/**
 * For a full grid and its compact counterpart: the compact row [0, B·Lc) feeding each full cell [B·Lf], or −1 for
 * cells of masked units (the decoder fills those with its mask token).
 */
export function compactScatterIndex(s: MaskSample, fullGrid: Vec3, compactGrid: Vec3): Int32Array {
  if (!s.compact) throw new Error("compactScatterIndex: the mask was not drawn in compact mode");
  const { group } = s.compact;
  const { crop, unit, unitGrid: ug, batch } = s;
  const cell = crop.map((n, a) => n / fullGrid[a]) as Vec3;
  const kind = compactCellKind(cell, unit, group);
  if (kind === "mixed") {
    throw new Error(
      `compact mode: grid ${fmt(fullGrid)} has cells of ${fmt(cell)} voxels that neither fit inside one mask unit ${fmt(unit)} nor span whole ${fmt(group)} groups; choose a unit that is a multiple of that cell or a divisor of it`,
    );
  }
  const Lf = prod(fullGrid),
    Lc = prod(compactGrid),
    N = prod(ug);
  const out = new Int32Array(batch * Lf);
  for (let b = 0; b < batch; b++) {
    let o = b * Lf;
    for (let d = 0; d < fullGrid[0]; d++)
      for (let h = 0; h < fullGrid[1]; h++)
        for (let w = 0; w < fullGrid[2]; w++, o++) {
          const p = [d, h, w];
          let q: number[];
          if (kind === "fine") {
            const lo = p.map((i, a) => i * cell[a]);
            const u = lo.map((v, a) => Math.floor(v / unit[a]));
            if (!s.visible[b * N + (u[0] * ug[1] + u[1]) * ug[2] + u[2]]) {
              out[o] = -1;
              continue;
            }
            // the kept unit of group G sits at compact unit G; same offset inside the unit
            q = lo.map((v, a) => (Math.floor(u[a] / group[a]) * unit[a] + (v - u[a] * unit[a])) / cell[a]);
          } else {
            q = p.map((i, a) => Math.floor(i / group[a]));
          }
          out[o] = b * Lc + (q[0] * compactGrid[1] + q[1]) * compactGrid[2] + q[2];
        }
  }
  return out;
}

/** The encoder plan of a compact model must keep per-stage cells equal to the full model's (crop ÷ grid). */
export function checkCompactPlans(
  full: NnFormerPlan,
  compact: NnFormerPlan,
  crop: Vec3,
  cCrop: Vec3,
  unit: Vec3,
  group: Vec3,
): void {
  full.encoder.forEach((s, i) => {
    const cf = crop.map((n, a) => n / s.grid[a]);
    const cc = cCrop.map((n, a) => n / compact.encoder[i].grid[a]);
    if (cf.some((v, a) => v !== cc[a])) {
      throw new Error(
        `compact mode: encoder stage ${i} has cells of ${fmt(cf)} voxels on the full crop but ${fmt(cc)} on the compact crop ${fmt(cCrop)}; the compact crop must stay divisible by the total stride on every axis (use a larger crop)`,
      );
    }
    if (compactCellKind(cf as Vec3, unit, group) === "mixed") {
      throw new Error(
        `compact mode: encoder stage ${i} cells ${fmt(cf)} neither fit inside one mask unit ${fmt(unit)} nor span whole ${fmt(group)} groups of units; use mask units that are a multiple (or a divisor) of each stage cell`,
      );
    }
  });
}
