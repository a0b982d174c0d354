// The intensity preprocessing plan of a dataset: computed once from the training split, saved with every checkpoint,
// and applied identically in pretraining, fine-tuning and inference (a mismatch is the classic reason SSL looks useless).
import { Manifest } from "./manifest";
import { Volume } from "./volume";
import { computeCtStats, ctNormalize, zScore } from "./transforms";

export type Preprocessing =
  /** nnU-Net CT: clip to the [0.5, 99.5] percentiles of training foreground, then z-score with its mean and std. */
  | { kind: "ct"; clip: [number, number]; mean: number; std: number }
  /** MRI: per-image, per-channel z-score (over non-zero voxels for skull-stripped brains). */
  | { kind: "zscore"; nonZeroOnly: boolean };

/** Plans the preprocessing from labelled training cases (CT statistics need their foreground). */
export function planPreprocessing(manifest: Manifest, train: Array<{ image: Volume; label: Volume | null }>): Preprocessing {
  if (manifest.modality === "CT") {
    const labelled = train.filter((c) => c.label !== null);
    if (labelled.length === 0) {
      throw new Error(`manifest "${manifest.name}": CT preprocessing needs labelled training cases (foreground statistics); the train split has none`);
    }
    const s = computeCtStats(labelled.map((c) => c.image), labelled.map((c) => c.label!), { stride: 3 });
    return { kind: "ct", clip: s.clip, mean: s.mean, std: s.std };
  }
  return { kind: "zscore", nonZeroOnly: manifest.modality !== "MRI" ? false : manifest.channels.length > 1 };
}

/** Applies a plan to an image. */
export function applyPreprocessing(image: Volume, p: Preprocessing): Volume<Float32Array> {
  return p.kind === "ct" ? ctNormalize(image, p) : zScore(image, { nonZeroOnly: p.nonZeroOnly });
}

/** Throws naming every differing field when two plans differ (e.g. a pretrained checkpoint vs this fine-tuning run). */
export function checkSamePreprocessing(a: Preprocessing, b: Preprocessing, what = "checkpoint"): void {
  const diffs: string[] = [];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const va = JSON.stringify((a as Record<string, unknown>)[k]);
    const vb = JSON.stringify((b as Record<string, unknown>)[k]);
    const close = k !== "kind" && typeof (a as any)[k] === "number" && Math.abs((a as any)[k] - (b as any)[k]) <= 1e-4 * Math.max(1, Math.abs((a as any)[k]));
    if (va !== vb && !close) diffs.push(`${k}: ${va} vs ${vb}`);
  }
  if (diffs.length) {
    throw new Error(`the ${what} was made with a different intensity preprocessing (${diffs.join("; ")}); pretrain and fine-tune on the same manifest and plan, or re-run pretraining`);
  }
}
