// The intensity/geometry preprocessing of a pretraining run, as a small typed object that travels in the checkpoint.
// "SSL ≈ scratch" is very often a preprocessing mismatch between pretraining and fine-tuning (docs/mae.md §5: spacing,
// axis order, normalisation), so fine-tuning compares its own plan against the checkpoint's with
// checkPreprocessingMatch before it loads anything.
// CT: nnU-Net (clip to the [0.5, 99.5] foreground percentiles, z-score with the foreground mean/std). For unlabelled
// pretraining data the foreground is the body (HU > bodyThresholdHu), since labels are not used; pass the fine-tuning
// plan's stats instead to pretrain with exactly the fine-tuning normalisation.
import type { Shape3, Volume } from "./volume";
import { computeCtStats, ctNormalize, resampleToSpacing, zScore } from "./transforms";

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
  spacing: Shape3 | null;
  /** Array axis order of the volumes (the kit keeps NIfTI order). */
  axisOrder: "DHW";
  intensity: IntensityNorm;
  /** Where the statistics came from (provenance; not compared). */
  statsFrom?: string;
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

/**
 * A preprocessing plan computed on the data: CT statistics over the body voxels (every `stride`-th) of `volumes`,
 * or a per-volume z-score for other modalities.
 */
export function computePreprocessing(
  volumes: Volume[],
  modality: string,
  options: { spacing?: Shape3 | null; stride?: number; statsFrom?: string; nonZeroOnly?: boolean } = {},
): Preprocessing {
  if (volumes.length === 0) throw new Error("computePreprocessing: no volumes; pass at least one training volume");
  const channels = volumes[0].channels;
  const spacing = options.spacing ?? null;
  if (modality.toUpperCase() === "CT") {
    const stats = computeCtStats(
      volumes,
      volumes.map((v) => bodyMask(v)),
      { stride: options.stride ?? 7 },
    );
    return {
      modality: "CT",
      channels,
      spacing,
      axisOrder: "DHW",
      intensity: { kind: "ct", clip: [stats.clip[0], stats.clip[1]], mean: stats.mean, std: stats.std },
      statsFrom: options.statsFrom ?? `body voxels (HU > ${BODY_THRESHOLD_HU}) of ${volumes.length} volumes`,
    };
  }
  return {
    modality,
    channels,
    spacing,
    axisOrder: "DHW",
    intensity: { kind: "zscore", nonZeroOnly: options.nonZeroOnly ?? false },
    statsFrom: "per volume",
  };
}

/** Applies a plan to one volume: resample (if a spacing is set and differs), then normalise. Returns float32. */
export function applyPreprocessing(vol: Volume, p: Preprocessing): Volume<Float32Array> {
  if (vol.channels !== p.channels) {
    throw new Error(
      `applyPreprocessing: volume has ${vol.channels} channel(s) but the plan expects ${p.channels}; this plan was made for other data`,
    );
  }
  let v: Volume = vol;
  if (p.spacing && p.spacing.some((s, a) => Math.abs(s - vol.spacing[a]) > 1e-6))
    v = resampleToSpacing(vol, p.spacing, "linear");
  const n = p.intensity;
  return n.kind === "ct" ? ctNormalize(v, n) : zScore(v, { nonZeroOnly: n.nonZeroOnly });
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
        if (path === "" && k === "statsFrom") continue;
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
