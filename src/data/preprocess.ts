// The intensity/geometry preprocessing of a pretraining run, as a small typed object that travels in the checkpoint.
// "SSL ≈ scratch" is very often a preprocessing mismatch between pretraining and fine-tuning (docs/mae.md §5: spacing,
// axis order, normalisation), so fine-tuning compares its own plan against the checkpoint's with
// checkPreprocessingMatch before it loads anything.
//
// Two kinds of plan:
//   the default (quick/smoke profiles): native spacing, CT statistics over the body voxels (HU > BODY_THRESHOLD_HU)
//     of the images given, so unlabelled pretraining data can be planned without labels;
//   the paper plan (nnU-Net v1, docs/nnformer.md §4): target spacing from the training cases' spacings by
//     nnU-Net's rule (nnunetTargetSpacing), CT statistics over the labelled foreground (label > 0) of the training
//     cases: clip to their [0.5, 99.5] percentiles, then z-score with their mean and std (of the unclipped values).
// Images are resampled trilinearly and labels by nearest neighbour (transforms.ts says how that differs from nnU-Net's
// third-order / one-hot resampling); predictions go back to each case's own grid through the class probabilities
// (linear, then argmax), as nnU-Net does it, with predictionToSource.
import { diagonalAffine, numVoxels, type Volume } from "./volume";
import type { Vec3 } from "../runtime/math";
import { GridGeometry, computeCtStats, ctNormalize, resampleToGrid, resampleToSpacing, zScore } from "./transforms";

export type IntensityNorm =
  /** nnU-Net CT: clip to [lo, hi] HU, then (x − mean) / std. */
  | { kind: "ct"; clip: [number, number]; mean: number; std: number }
  /** Per-volume, per-channel z-score (MRI); nonZeroOnly: statistics inside the non-zero mask, outside stays 0 (BraTS). */
  | { kind: "zscore"; nonZeroOnly: boolean };

export interface Preprocessing {
  /** Manifest modality, e.g. "CT" or "MRI". */
  modality: string;
  /** Image channels. */
  channels: number;
  /** Target voxel spacing in mm [D, H, W], or null to keep the native spacing (no resampling). */
  spacing: Vec3 | null;
  /** Array axis order of the volumes (the kit keeps NIfTI order). */
  axisOrder: "DHW";
  intensity: IntensityNorm;
  /** Where the statistics came from (provenance; not compared). */
  statsFrom?: string;
  /** How the target spacing was chosen, when it was computed from data (provenance; not compared). */
  spacingFrom?: string;
}

/** nnU-Net's anisotropy threshold: an axis whose spacing is over 3x the others' is treated separately. */
export const ANISOTROPY_THRESHOLD = 3;

/** The target spacing of a plan and why. */
export interface TargetSpacing {
  spacing: Vec3;
  /** True when the coarse axis took the 10th percentile of its spacings instead of the median. */
  anisotropic: boolean;
  /** One sentence: the rule and the numbers, for the plan's spacingFrom. */
  explanation: string;
}

/** numpy's linear percentile (q in [0, 100]) of unsorted values. */
function percentileOf(values: readonly number[], q: number): number {
  const v = [...values].sort((a, b) => a - b);
  const pos = (q / 100) * (v.length - 1);
  const lo = Math.floor(pos),
    hi = Math.min(lo + 1, v.length - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

/**
 * nnU-Net v1's target spacing (ExperimentPlanner3D_v21.get_target_spacing) from the training cases' spacings and
 * shapes: the per-axis median spacing, except when the coarsest axis is anisotropic in both senses — its median
 * spacing is over 3x the next largest median spacing AND its median size in voxels times 3 is below the smallest
 * other median size — in which case that axis takes the 10th percentile of its spacings (so thin-slice cases are not
 * thrown away), raised to just above the largest other spacing if it would fall below it. Medians are numpy's
 * percentile 50 (the mean of the two middle values for an even count). nnU-Net reads shapes after cropping to the
 * non-zero box; the kit does not crop, so these are the full shapes.
 */
export function nnunetTargetSpacing(cases: readonly { spacing: Vec3; shape: Vec3 }[]): TargetSpacing {
  const fn = "nnunetTargetSpacing";
  if (cases.length === 0) throw new Error(`${fn}: no cases; pass the training cases' spacing and shape`);
  cases.forEach((c, i) => {
    const ok = (a: unknown, int: boolean) =>
      Array.isArray(a) &&
      a.length === 3 &&
      a.every((x) => typeof x === "number" && Number.isFinite(x) && x > 0 && (!int || Number.isInteger(x)));
    if (!ok(c?.spacing, false) || !ok(c?.shape, true)) {
      throw new Error(
        `${fn}: case ${i} needs spacing (three positive mm sizes) and shape (three positive integers), got spacing ${JSON.stringify(c?.spacing)} and shape ${JSON.stringify(c?.shape)}`,
      );
    }
  });
  const axes = [0, 1, 2];
  const target = axes.map((a) =>
    percentileOf(
      cases.map((c) => c.spacing[a]),
      50,
    ),
  ) as Vec3;
  const size = axes.map((a) =>
    percentileOf(
      cases.map((c) => c.shape[a]),
      50,
    ),
  );
  const worst = target.indexOf(Math.max(...target));
  const others = axes.filter((a) => a !== worst);
  const maxOther = Math.max(...others.map((a) => target[a]));
  const anisoSpacing = target[worst] > ANISOTROPY_THRESHOLD * maxOther;
  const anisoVoxels = size[worst] * ANISOTROPY_THRESHOLD < Math.min(...others.map((a) => size[a]));
  const fmt = (v: readonly number[]) => `[${v.map((x) => +x.toFixed(4)).join(", ")}]`;
  const median = `median spacing ${fmt(target)} mm of ${cases.length} training case${cases.length === 1 ? "" : "s"}`;
  if (!(anisoSpacing && anisoVoxels)) {
    return { spacing: target, anisotropic: false, explanation: `${median} (nnU-Net rule)` };
  }
  let t = percentileOf(
    cases.map((c) => c.spacing[worst]),
    10,
  );
  if (t < maxOther) t = Math.max(maxOther, t) + 1e-5;
  const spacing = target.slice() as Vec3;
  spacing[worst] = t;
  return {
    spacing,
    anisotropic: true,
    explanation:
      `${median}; axis ${"DHW"[worst]} is anisotropic (over ${ANISOTROPY_THRESHOLD}x the others in spacing and ` +
      `under 1/${ANISOTROPY_THRESHOLD} in voxels), so it takes the 10th percentile of its spacings: ${+t.toFixed(4)} mm ` +
      `(nnU-Net rule)`,
  };
}

/** HU above which a voxel counts as body when unlabelled CT statistics are computed. */
export const BODY_THRESHOLD_HU = -500;

/** Body mask of a CT volume (HU > threshold) as a label volume, for computeCtStats on unlabelled data. */
export function bodyMask(vol: Volume, thresholdHu = BODY_THRESHOLD_HU): Volume<Uint8Array> {
  const n = vol.data.length / vol.channels;
  const m = new Uint8Array(n);
  for (let i = 0; i < n; i++) m[i] = vol.data[i * vol.channels] > thresholdHu ? 1 : 0;
  return { ...vol, data: m, channels: 1 };
}

export interface PlanOptions {
  /**
   * Target spacing: null (default) keeps each case's native spacing, [D, H, W] mm fixes it, "nnunet" computes it from
   * `volumes` with nnunetTargetSpacing (the paper plan).
   */
  spacing?: Vec3 | null | "nnunet";
  /**
   * CT only: label maps, one per volume on its grid. Given, the statistics come from their labelled foreground
   * (label > 0) as nnU-Net does (the paper plan); absent, from the body voxels of `volumes` (the default plan).
   */
  foreground?: Volume[];
  /** Keep every stride-th statistics voxel (default 7 for body voxels, 10 for labelled foreground as nnU-Net v1). */
  stride?: number;
  /** Provenance text for the statistics (default: describes what was used). */
  statsFrom?: string;
  /** Non-CT: z-score inside the non-zero mask only (BraTS). */
  nonZeroOnly?: boolean;
}

/**
 * A preprocessing plan computed on the data: the target spacing (see PlanOptions.spacing) and CT statistics over the
 * labelled foreground (`foreground` given) or the body voxels of `volumes`, or a per-volume z-score for other
 * modalities. Statistics are computed on the native grids, before any resampling (nnU-Net does the same).
 */
export function computePreprocessing(volumes: Volume[], modality: string, options: PlanOptions = {}): Preprocessing {
  const fn = "computePreprocessing";
  if (volumes.length === 0) throw new Error(`${fn}: no volumes; pass at least one training volume`);
  const channels = volumes[0].channels;
  let spacing: Vec3 | null = null;
  let spacingFrom: string | undefined;
  if (options.spacing === "nnunet") {
    const t = nnunetTargetSpacing(volumes.map((v) => ({ spacing: v.spacing, shape: v.shape })));
    spacing = t.spacing;
    spacingFrom = t.explanation;
  } else if (options.spacing !== undefined && options.spacing !== null) {
    if (!Array.isArray(options.spacing)) {
      throw new Error(
        `${fn}: options.spacing must be null (native), three mm sizes [D, H, W] or "nnunet", got ${JSON.stringify(options.spacing)}`,
      );
    }
    spacing = options.spacing;
  }
  const geometry = spacingFrom === undefined ? {} : { spacingFrom };
  if (modality.toUpperCase() === "CT") {
    const fg = options.foreground;
    if (fg !== undefined && fg.length !== volumes.length) {
      throw new Error(
        `${fn}: options.foreground has ${fg.length} label maps for ${volumes.length} volumes; pass one label map per training volume`,
      );
    }
    const stats = computeCtStats(volumes, fg ?? volumes.map((v) => bodyMask(v)), {
      stride: options.stride ?? (fg ? 10 : 7),
    });
    const what = fg
      ? `labelled foreground (label > 0) of ${volumes.length} training cases (nnU-Net)`
      : `body voxels (HU > ${BODY_THRESHOLD_HU}) of ${volumes.length} volumes`;
    return {
      modality: "CT",
      channels,
      spacing,
      axisOrder: "DHW",
      intensity: { kind: "ct", clip: [stats.clip[0], stats.clip[1]], mean: stats.mean, std: stats.std },
      statsFrom: options.statsFrom ?? what,
      ...geometry,
    };
  }
  return {
    modality,
    channels,
    spacing,
    axisOrder: "DHW",
    intensity: { kind: "zscore", nonZeroOnly: options.nonZeroOnly ?? false },
    statsFrom: "per volume",
    ...geometry,
  };
}

/** Applies a plan to one volume: resample (if a spacing is set and differs), then normalise. Returns float32. */
export function applyPreprocessing(vol: Volume, p: Preprocessing): Volume<Float32Array> {
  if (vol.channels !== p.channels) {
    throw new Error(
      `applyPreprocessing: volume has ${vol.channels} channel(s) but the plan expects ${p.channels}; this plan was made for other data`,
    );
  }
  const v: Volume = needsResampling(vol.spacing, p) ? resampleToSpacing(vol, p.spacing!, "linear") : vol;
  const n = p.intensity;
  return n.kind === "ct" ? ctNormalize(v, n) : zScore(v, { nonZeroOnly: n.nonZeroOnly });
}

/** True when the plan resamples a volume of this spacing (a target spacing is set and differs by over 1e-6 mm). */
export function needsResampling(spacing: Vec3, p: Preprocessing): boolean {
  return p.spacing !== null && p.spacing.some((s, a) => Math.abs(s - spacing[a]) > 1e-6);
}

/** A label map on the plan's grid: nearest-neighbour resampling to the target spacing (unchanged without one). */
export function preprocessLabel<T extends Volume>(label: T, p: Preprocessing): T {
  if (label.channels !== 1) {
    throw new Error(`preprocessLabel: ${label.source} has ${label.channels} channels; a label map has 1`);
  }
  return needsResampling(label.spacing, p) ? (resampleToSpacing(label, p.spacing!, "nearest") as T) : label;
}

/**
 * An image and its label map on the plan's grid: the image resampled (trilinear) and normalised, the label resampled
 * by nearest neighbour onto the same grid. `source` is the case's own grid, for predictionToSource.
 */
export function preprocessCase<L extends Volume>(
  image: Volume,
  label: L | null,
  p: Preprocessing,
): { image: Volume<Float32Array>; label: L | null; source: GridGeometry } {
  if (
    label &&
    (label.shape.some((n, a) => n !== image.shape[a]) ||
      label.spacing.some((s, a) => Math.abs(s - image.spacing[a]) > 1e-4))
  ) {
    throw new Error(
      `preprocessCase: label ${label.source} (shape ${JSON.stringify(label.shape)}, spacing ${JSON.stringify(label.spacing)}) is not on the grid of image ${image.source} (shape ${JSON.stringify(image.shape)}, spacing ${JSON.stringify(image.spacing)}); resample one onto the other first`,
    );
  }
  const x = applyPreprocessing(image, p);
  // the label takes the image's spacing (they agree to 1e-4 mm), so both are resampled by the same rule
  const y =
    label && needsResampling(image.spacing, p) ? preprocessLabel({ ...label, spacing: image.spacing }, p) : label;
  if (y && y.shape.some((n, a) => n !== x.shape[a])) {
    throw new Error(
      `preprocessCase: internal error, image and label grids differ after resampling (${x.shape} vs ${y.shape})`,
    );
  }
  return { image: x, label: y, source: { shape: image.shape, spacing: image.spacing, affine: image.affine } };
}

/**
 * A prediction made on the plan's grid, brought back to the case's own grid: each class probability is resampled
 * linearly onto `source` and the label is the argmax there (first maximum wins), as nnU-Net does. One class at a time,
 * so memory is that of the source grid plus one channel. `probabilities` is [D, H, W, K] with K fastest on `planned`.
 * Without resampling (same grid) it is the plain argmax.
 */
export function predictionToSource(
  probabilities: Float32Array,
  numClasses: number,
  planned: { shape: Vec3; spacing: Vec3 },
  source: GridGeometry,
): Uint8Array | Uint16Array {
  const fn = "predictionToSource";
  const K = numClasses;
  if (!Number.isInteger(K) || K < 1) throw new Error(`${fn}: numClasses must be a positive integer, got ${K}`);
  const nPlanned = numVoxels(planned.shape);
  if (probabilities.length !== nPlanned * K) {
    throw new Error(
      `${fn}: probabilities have ${probabilities.length} values but the planned grid ${JSON.stringify(planned.shape)} x ${K} classes needs ${nPlanned * K}`,
    );
  }
  const n = numVoxels(source.shape);
  const labels = K <= 256 ? new Uint8Array(n) : new Uint16Array(n);
  const same =
    planned.shape.every((s, a) => s === source.shape[a]) &&
    planned.spacing.every((s, a) => Math.abs(s - source.spacing[a]) <= 1e-6);
  const best = new Float32Array(n).fill(-Infinity);
  const channel = new Float32Array(nPlanned);
  for (let k = 0; k < K; k++) {
    for (let i = 0; i < nPlanned; i++) channel[i] = probabilities[i * K + k];
    const onSource = same
      ? channel
      : resampleToGrid(
          {
            data: channel,
            shape: planned.shape,
            channels: 1,
            spacing: planned.spacing,
            affine: diagonalAffine(planned.spacing),
            source: "prediction",
          },
          { shape: source.shape, spacing: source.spacing },
          "linear",
        ).data;
    for (let i = 0; i < n; i++) {
      if (onSource[i] > best[i]) {
        best[i] = onSource[i];
        labels[i] = k;
      }
    }
  }
  return labels;
}

/** Fields of two plans that differ, as "field: pretraining X, fine-tuning Y" (numbers within 1e-4 relative count as equal). */
export function diffPreprocessing(a: Preprocessing, b: Preprocessing): string[] {
  const out: string[] = [];
  const near = (x: number, y: number) => Math.abs(x - y) <= 1e-4 * Math.max(1, Math.abs(x), Math.abs(y));
  const walk = (x: unknown, y: unknown, path: string) => {
    if (typeof x === "number" && typeof y === "number") {
      if (!near(x, y)) out.push(`${path}: pretraining ${x}, fine-tuning ${y}`);
    } else if (x && y && typeof x === "object" && typeof y === "object") {
      const keys = new Set([...Object.keys(x), ...Object.keys(y)]);
      for (const k of keys) {
        if (path === "" && (k === "statsFrom" || k === "spacingFrom")) continue;
        walk((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
      }
    } else if (JSON.stringify(x) !== JSON.stringify(y)) {
      out.push(`${path}: pretraining ${JSON.stringify(x)}, fine-tuning ${JSON.stringify(y)}`);
    }
  };
  walk(a, b, "");
  return out;
}

/**
 * Throws, naming every differing field, unless the pretraining plan `a` and the fine-tuning plan `b` agree
 * (modality, channels, spacing, axis order, normalisation and its statistics).
 */
export function checkPreprocessingMatch(a: Preprocessing, b: Preprocessing): void {
  const diff = diffPreprocessing(a, b);
  if (diff.length) {
    throw new Error(
      `preprocessing of the pretraining checkpoint differs from the fine-tuning run:\n  ${diff.join("\n  ")}\n` +
        `Fine-tune with the checkpoint's preprocessing (it is stored in the checkpoint), or pretrain again with ` +
        `options.preprocessing set to the fine-tuning plan; mismatched normalisation is the usual cause of "pretraining did not help"`,
    );
  }
}
