// 95th-percentile Hausdorff distance between the surfaces of a predicted and a reference mask, by name:
//   surface   = foreground voxels with a 6-connected background neighbour (outside the volume counts as background);
//   distances = exact Euclidean distance transform of one surface, read at the voxels of the other (directed surface
//               distances, pred -> ref and ref -> pred), in mm (spacing) or voxels;
//   "medpy"   = numpy's 95th percentile of both directions' distances pooled into one list. This is
//               medpy.metric.binary.hd95, which the official nnFormer evaluation calls (docs/nnformer.md §5).
//   "monai"   = the larger of the two directed 95th percentiles (MONAI's compute_hausdorff_distance, percentile 95).
// The two differ whenever one direction has a tail that is under 5 % of the pooled list but over 5 % of its own
// direction: a small false-positive blob far from a correct organ scores 0 under medpy and its distance under monai.
// The EDT is Felzenszwalb & Huttenlocher's separable lower-envelope-of-parabolas algorithm ("Distance Transforms of
// Sampled Functions", Theory of Computing 2012) with the voxel spacing folded into the coordinates, so it is exact for
// anisotropic voxels and O(N). Both EDTs run only inside the bounding box of the two masks: every surface voxel lies
// in that box, and the distance to a set of sites does not depend on grid voxels outside a box that holds the sites.
//
// Conventions for empty masks (medpy raises on them, so every convention is a choice):
//   units "mm" (default): distances in mm using `spacing`. We return NaN when exactly one of pred / ref is empty and
//     when both are, or a fixed value via `oneEmpty` / `bothEmpty`. The kit convention (KIT_HD95) charges a missed
//     or hallucinated structure the volume's diagonal in mm (`oneEmpty: "diagonal"`, the largest distance the grid
//     allows), so a model that misses organs cannot look better than one that finds them.
//   units "voxel": the official nnFormer evaluation (NNFORMER_HD95). medpy is called without spacing, so distances
//     are in voxels (axes of different voxel size mixed), and a case where pred or ref is empty scores 0. This is
//     optimistic (§8 item 11); use it only to compare with published numbers.
import type { Vec3 } from "../runtime/math";
import { Box, boundingBoxWhere } from "../data/transforms";
import { ClassSpec, LabelMap, classLabels } from "./dice";

/** Which HD95: "medpy" (pooled percentile, the official nnFormer evaluation) or "monai" (max of directed ones). */
export type Hd95Definition = "medpy" | "monai";

/** The HD95 definitions, in the order they are documented. */
export const HD95_DEFINITIONS: readonly Hd95Definition[] = ["medpy", "monai"];

/** One sentence per definition, for reports and help texts. */
export const HD95_DEFINITION_TEXT: Record<Hd95Definition, string> = {
  medpy:
    "medpy: 95th percentile of the surface distances of both directions pooled (medpy.metric.binary.hd95, the official nnFormer evaluation)",
  monai:
    "monai: the larger of the two directed 95th percentiles of surface distances (MONAI compute_hausdorff_distance)",
};

export interface Hd95Options {
  /**
   * "medpy" (default: pooled 95th percentile, the official nnFormer evaluation) or "monai" (max of the two directed
   * 95th percentiles).
   */
  definition?: Hd95Definition;
  /** "mm" (default): use `spacing`. "voxel": official nnFormer, spacing 1 and 0 when pred or ref is empty. */
  units?: "mm" | "voxel";
  /** Voxel size in mm, [D, H, W]; required for units "mm", ignored for "voxel". */
  spacing?: Vec3;
  /** Which percentile of each directed distance set (default 95; 100 gives the classic Hausdorff distance). */
  percentile?: number;
  /**
   * Value when exactly one mask is empty: "nan", a number, or "diagonal" (the volume's diagonal, shape x spacing, in
   * the chosen units). Default "nan" for mm, 0 for voxel units.
   */
  oneEmpty?: number | "nan" | "diagonal";
  /** Value when both masks are empty: "nan" or a number. Default "nan" for mm, 0 for voxel units. */
  bothEmpty?: number | "nan";
}

const INF = Number.POSITIVE_INFINITY;

function checkShape(fn: string, shape: Vec3, n: number): void {
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((s) => Number.isInteger(s) && s > 0)) {
    throw new Error(`${fn}: shape must be three positive integers [D, H, W], got ${JSON.stringify(shape)}`);
  }
  if (shape[0] * shape[1] * shape[2] !== n) {
    throw new Error(
      `${fn}: masks have ${n} voxels but shape [${shape}] needs ${shape[0] * shape[1] * shape[2]}; pass the volume's shape`,
    );
  }
}

function checkSpacing(fn: string, spacing: unknown): asserts spacing is Vec3 {
  if (
    !(
      Array.isArray(spacing) &&
      spacing.length === 3 &&
      spacing.every((s) => typeof s === "number" && Number.isFinite(s) && s > 0)
    )
  ) {
    throw new Error(
      `${fn}: spacing must be three positive voxel sizes in mm [D, H, W], got ${JSON.stringify(spacing)}; ` +
        `pass the reference volume's spacing, or units: "voxel" for the official nnFormer (voxel-unit) HD95`,
    );
  }
}

/**
 * Surface of a binary mask: foreground voxels with at least one 6-connected neighbour that is background or outside
 * the volume (medpy: mask XOR binary_erosion(mask, 6-connectivity), border value 0).
 */
export function surfaceMask(mask: LabelMap, shape: Vec3): Uint8Array {
  checkShape("surfaceMask", shape, mask.length);
  const [D, H, W] = shape;
  const HW = H * W;
  const out = new Uint8Array(mask.length);
  let i = 0;
  for (let d = 0; d < D; d++) {
    for (let h = 0; h < H; h++) {
      for (let w = 0; w < W; w++, i++) {
        if (!mask[i]) continue;
        if (
          d === 0 ||
          d === D - 1 ||
          h === 0 ||
          h === H - 1 ||
          w === 0 ||
          w === W - 1 ||
          !mask[i - HW] ||
          !mask[i + HW] ||
          !mask[i - W] ||
          !mask[i + W] ||
          !mask[i - 1] ||
          !mask[i + 1]
        ) {
          out[i] = 1;
        }
      }
    }
  }
  return out;
}

/**
 * 1D squared distance transform of sampled function f (length n, INF = no site) on points spaced `step` mm apart,
 * written to out. v, z are scratch (length n and n + 1). Lower envelope of the parabolas (x - x_q)^2 + f(q).
 */
function edt1d(f: Float64Array, n: number, step: number, out: Float64Array, v: Int32Array, z: Float64Array): void {
  let k = -1;
  for (let q = 0; q < n; q++) {
    const fq = f[q];
    if (fq === INF) continue;
    const xq = q * step;
    if (k < 0) {
      k = 0;
      v[0] = q;
      z[0] = -INF;
      z[1] = INF;
      continue;
    }
    let s = 0;
    for (;;) {
      const xv = v[k] * step;
      // where the parabola from q overtakes the one from v[k]
      s = (fq + xq * xq - (f[v[k]] + xv * xv)) / (2 * (xq - xv));
      if (s <= z[k])
        k--; // z[0] = -INF stops this at k = 0
      else break;
    }
    k++;
    v[k] = q;
    z[k] = s;
    z[k + 1] = INF;
  }
  if (k < 0) {
    out.fill(INF, 0, n);
    return;
  }
  let j = 0;
  for (let q = 0; q < n; q++) {
    const x = q * step;
    while (z[j + 1] < x) j++;
    const dx = x - v[j] * step;
    out[q] = dx * dx + f[v[j]];
  }
}

/**
 * Exact squared Euclidean distance (mm^2) from every voxel to the nearest non-zero voxel of `sites`, with anisotropic
 * spacing [D, H, W]; Infinity everywhere when there are no sites. Separable passes along W, H, then D.
 */
export function squaredEdt(sites: LabelMap, shape: Vec3, spacing: Vec3): Float64Array {
  const fn = "squaredEdt";
  checkShape(fn, shape, sites.length);
  checkSpacing(fn, spacing);
  const [D, H, W] = shape;
  const n = sites.length;
  const g = new Float64Array(n);
  for (let i = 0; i < n; i++) g[i] = sites[i] ? 0 : INF;
  const L = Math.max(D, H, W);
  const f = new Float64Array(L),
    out = new Float64Array(L),
    z = new Float64Array(L + 1);
  const v = new Int32Array(L);
  // one pass along an axis of length len with stride, over every line start
  const pass = (len: number, stride: number, step: number, starts: (visit: (s: number) => void) => void) => {
    starts((s) => {
      let any = false;
      for (let q = 0, i = s; q < len; q++, i += stride) {
        f[q] = g[i];
        if (f[q] !== INF) any = true;
      }
      if (!any) return; // the line stays Infinity
      edt1d(f, len, step, out, v, z);
      for (let q = 0, i = s; q < len; q++, i += stride) g[i] = out[q];
    });
  };
  pass(W, 1, spacing[2], (visit) => {
    for (let r = 0; r < D * H; r++) visit(r * W);
  });
  pass(H, W, spacing[1], (visit) => {
    for (let d = 0; d < D; d++) for (let w = 0; w < W; w++) visit(d * H * W + w);
  });
  pass(D, H * W, spacing[0], (visit) => {
    for (let hw = 0; hw < H * W; hw++) visit(hw);
  });
  return g;
}

/** Numpy's default ("linear") percentile of the values, q in [0, 100]; sorts `values` in place. NaN if empty. */
export function percentile(values: Float64Array, q: number): number {
  if (!(q >= 0 && q <= 100)) throw new Error(`percentile: q must be in [0, 100], got ${q}`);
  const n = values.length;
  if (n === 0) return NaN;
  values.sort();
  const pos = (q / 100) * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  return values[lo] + (values[hi] - values[lo]) * (pos - lo);
}

/**
 * Distances (mm) from each surface voxel of `from` to the nearest surface voxel of `to` (medpy's
 * __surface_distances(from, to)); both masks are non-zero = foreground. Empty array if `from` is empty.
 */
export function surfaceDistances(from: LabelMap, to: LabelMap, shape: Vec3, spacing: Vec3): Float64Array {
  const fn = "surfaceDistances";
  checkShape(fn, shape, from.length);
  checkShape(fn, shape, to.length);
  checkSpacing(fn, spacing);
  const box = boundingBoxWhere(shape, (i) => from[i] !== 0 || to[i] !== 0);
  if (!box) return new Float64Array(0);
  const a = extractMask(shape, box, (i) => from[i] !== 0);
  const b = extractMask(shape, box, (i) => to[i] !== 0);
  return directed(surfaceMask(a, box.size), surfaceMask(b, box.size), box.size, spacing);
}

/** The box of a mask as a 0/1 array. Outside the box is background either way, so surfaces are unchanged. */
function extractMask(shape: Vec3, box: Box, inMask: (i: number) => boolean): Uint8Array {
  const [, H, W] = shape;
  const [nd, nh, nw] = box.size;
  const out = new Uint8Array(nd * nh * nw);
  let o = 0;
  for (let d = 0; d < nd; d++) {
    for (let h = 0; h < nh; h++) {
      const base = ((d + box.start[0]) * H + h + box.start[1]) * W + box.start[2];
      for (let w = 0; w < nw; w++, o++) if (inMask(base + w)) out[o] = 1;
    }
  }
  return out;
}

/** Distances from each voxel of surface `a` to the nearest voxel of surface `b` (both on one grid). */
function directed(a: Uint8Array, b: Uint8Array, shape: Vec3, spacing: Vec3): Float64Array {
  const dt = squaredEdt(b, shape, spacing);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i]) n++;
  const out = new Float64Array(n);
  let k = 0;
  for (let i = 0; i < a.length; i++) if (a[i]) out[k++] = Math.sqrt(dt[i]);
  return out;
}

/** BTCV / Synapse label values the official nnFormer evaluation scores (spleen, kidneys, gallbladder, liver,
 * stomach, aorta, pancreas); 5, 9, 10, 12 and 13 are left out. */
export const NNFORMER_EVALUATED_LABELS: readonly number[] = [1, 2, 3, 4, 6, 7, 8, 11];

/** The official nnFormer HD95: medpy's definition, voxel units, 0 when the prediction or the reference is empty. */
export const NNFORMER_HD95: Readonly<Hd95Options> = { definition: "medpy", units: "voxel", oneEmpty: 0, bothEmpty: 0 };

/**
 * The kit's HD95: medpy's definition in mm; a structure present in only one of prediction and reference (missed or
 * false positive) scores the volume's diagonal in mm; absent from both is NaN (nothing to measure; means skip it and
 * report the count). Pass the case's `spacing` with it.
 */
export const KIT_HD95: Readonly<Hd95Options> = {
  definition: "medpy",
  units: "mm",
  oneEmpty: "diagonal",
  bothEmpty: "nan",
};

interface ResolvedHd95 {
  definition: Hd95Definition;
  spacing: Vec3;
  q: number;
  oneEmpty: number;
  bothEmpty: number;
}

function resolveOptions(fn: string, shape: Vec3, options: Hd95Options): ResolvedHd95 {
  const { units = "mm", percentile: q = 95, definition = "medpy" } = options;
  if (definition !== "medpy" && definition !== "monai")
    throw new Error(
      `${fn}: definition must be "medpy" (pooled percentile, official nnFormer) or "monai" (max of directed percentiles), got ${JSON.stringify(definition)}`,
    );
  if (units !== "mm" && units !== "voxel")
    throw new Error(`${fn}: units must be "mm" or "voxel", got ${JSON.stringify(units)}`);
  if (!(typeof q === "number" && q >= 0 && q <= 100))
    throw new Error(`${fn}: percentile must be in [0, 100], got ${q}`);
  let spacing: Vec3 = [1, 1, 1];
  if (units === "mm") {
    checkSpacing(fn, options.spacing);
    spacing = options.spacing;
  }
  const dflt = units === "voxel" ? 0 : NaN;
  const value = (name: string, v: number | "nan" | "diagonal" | undefined): number => {
    if (v === undefined) return dflt;
    if (v === "nan") return NaN;
    if (v === "diagonal") return Math.hypot(shape[0] * spacing[0], shape[1] * spacing[1], shape[2] * spacing[2]);
    if (typeof v === "number" && !Number.isNaN(v)) return v;
    throw new Error(
      `${fn}: ${name} must be "nan", a number${name === "oneEmpty" ? ' or "diagonal"' : ""}, got ${JSON.stringify(v)}`,
    );
  };
  if ((options.bothEmpty as unknown) === "diagonal") {
    throw new Error(`${fn}: bothEmpty cannot be "diagonal" (nothing was missed); use "nan" or a number such as 0`);
  }
  return {
    definition,
    spacing,
    q,
    oneEmpty: value("oneEmpty", options.oneEmpty),
    bothEmpty: value("bothEmpty", options.bothEmpty),
  };
}

/** HD95 of two 0/1 masks cropped to the same box, with the empty-mask conventions applied. */
function hd95Box(a: Uint8Array, b: Uint8Array, size: Vec3, r: ResolvedHd95): number {
  let na = 0,
    nb = 0;
  for (let i = 0; i < a.length; i++) {
    na += a[i];
    nb += b[i];
  }
  if (na === 0 && nb === 0) return r.bothEmpty;
  if (na === 0 || nb === 0) return r.oneEmpty;
  const sa = surfaceMask(a, size),
    sb = surfaceMask(b, size);
  const ab = directed(sa, sb, size, r.spacing);
  const ba = directed(sb, sa, size, r.spacing);
  return combineDirected(ab, ba, r.definition, r.q);
}

/**
 * HD95 from the two directed surface-distance lists (pred -> ref and ref -> pred) under a definition: "medpy" takes
 * the percentile of the two lists concatenated, "monai" the larger of the two percentiles. Sorts its inputs in place.
 */
export function combineDirected(ab: Float64Array, ba: Float64Array, definition: Hd95Definition, q = 95): number {
  if (definition === "monai") return Math.max(percentile(ab, q), percentile(ba, q));
  if (definition !== "medpy") throw new Error(`combineDirected: unknown definition ${JSON.stringify(definition)}`);
  const pooled = new Float64Array(ab.length + ba.length);
  pooled.set(ab, 0);
  pooled.set(ba, ab.length);
  return percentile(pooled, q);
}

/**
 * HD95 between two binary masks (non-zero = foreground) on a [D, H, W] grid, in mm (default, needs `spacing`) or in
 * voxels (`units: "voxel"`, official nnFormer), under `definition` ("medpy" or "monai"). Empty masks: see Hd95Options
 * (mm default NaN, voxel default 0).
 */
export function hd95(pred: LabelMap, ref: LabelMap, shape: Vec3, options: Hd95Options = {}): number {
  const fn = "hd95";
  checkShape(fn, shape, pred.length);
  checkShape(fn, shape, ref.length);
  const r = resolveOptions(fn, shape, options);
  const box = boundingBoxWhere(shape, (i) => pred[i] !== 0 || ref[i] !== 0);
  if (!box) return r.bothEmpty;
  const a = extractMask(shape, box, (i) => pred[i] !== 0);
  const b = extractMask(shape, box, (i) => ref[i] !== 0);
  return hd95Box(a, b, box.size, r);
}

/** HD95 per class of a predicted and a reference label map on a [D, H, W] grid, in the order of `classes`. */
export function hd95Scores(
  pred: LabelMap,
  ref: LabelMap,
  classes: readonly ClassSpec[],
  shape: Vec3,
  options: Hd95Options = {},
): number[] {
  const fn = "hd95Scores";
  checkShape(fn, shape, pred.length);
  checkShape(fn, shape, ref.length);
  const r = resolveOptions(fn, shape, options);
  return classes.map((spec) => {
    const labels = classLabels(spec);
    const has =
      labels.length === 1
        ? (
            (c: number) => (v: number) =>
              v === c
          )(labels[0])
        : (v: number) => labels.includes(v);
    const box = boundingBoxWhere(shape, (i) => has(pred[i]) || has(ref[i]));
    if (!box) return r.bothEmpty;
    const a = extractMask(shape, box, (i) => has(pred[i]));
    const b = extractMask(shape, box, (i) => has(ref[i]));
    return hd95Box(a, b, box.size, r);
  });
}
