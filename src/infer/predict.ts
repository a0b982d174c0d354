// Predicting and scoring whole volumes with a trained checkpoint: the library side of `mae-nnformer predict` and
// `mae-nnformer evaluate`. The checkpoint carries its model, config and preprocessing, so a prediction normalises
// exactly as training did.
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { loadTrainedModel } from "../registry";
import { selectOps } from "../layers/fast_ops";
import { Preprocessing, applyPreprocessing, needsResampling, predictionToSource } from "../data/preprocess";
import { readNifti, checkSameGrid, checkChannels } from "../data/nifti";
import { Manifest, ResolvedManifest, evaluatedLabelNames, checkLabelValues } from "../data/manifest";
import { loadCase } from "../data/dataset";
import { Volume } from "../data/volume";
import { slidingWindowPredict, predictToNifti } from "./sliding_window";
import { evaluateCase, kitEvaluation, summarizeCases, MetricSummary, NNFORMER_EVAL } from "../metrics/summarize";
import { HD95_DEFINITION_TEXT, Hd95Definition } from "../metrics/hd95";
import { Detection, countDetections, detections } from "../metrics/detection";
import { assertWritableDir, writeFileAtomic } from "../runtime/files";
import type { SegmentationModel } from "../models/types";

export interface PredictOptions {
  /** Sliding-window overlap (default 0.5, as nnFormer). */
  overlap?: number;
  /** Mirror test-time augmentation over all three axes (default false). */
  mirror?: boolean;
  /** Windows per forward pass (default 1). */
  batchSize?: number;
}

/** A loaded checkpoint ready to predict. */
export class Predictor {
  private constructor(
    readonly model: SegmentationModel,
    readonly preprocessing: Preprocessing,
    readonly cropSize: [number, number, number],
    readonly numClasses: number,
    readonly source: string,
    /**
     * Whether training mirrored its crops (the recipe's `augment`), so that mirror test-time augmentation is sound;
     * null when the checkpoint does not say. Without mirroring in training, mirror TTA averages flipped predictions the
     * network never learned and swaps left and right organs (the demo's networks: validation Dice 0.65 → 0.09).
     */
    readonly trainedWithMirroring: boolean | null,
  ) {}

  /** Loads a training checkpoint (best.safetensors / latest.safetensors). */
  static load(file: string): Predictor {
    if (!fs.existsSync(file))
      throw new Error(
        `checkpoint ${file} does not exist; pass a best.safetensors or latest.safetensors from a fine-tuning run`,
      );
    const { model, config, preprocessing, info } = loadTrainedModel(file);
    if (!preprocessing) {
      model.dispose();
      throw new Error(
        `${file}: the checkpoint records no preprocessing, so its intensities cannot be reproduced; it was not written by a fine-tuning run`,
      );
    }
    return new Predictor(model, preprocessing, config.cropSize, config.numClasses, file, recordedAugment(info.extra));
  }

  /**
   * The label map of one image on the image's own grid (raw intensities, any size; windows are padded where the image
   * is smaller). With a plan that resamples, the class probabilities go back to the image grid before the argmax.
   */
  async predict(image: Volume, o: PredictOptions = {}): Promise<Uint8Array | Uint16Array> {
    const ops = selectOps(tf.getBackend());
    const x = applyPreprocessing(image, this.preprocessing);
    const r = await slidingWindowPredict(
      x,
      (batch) => {
        const out = this.model.forward(batch, { ops, training: false });
        if (!Array.isArray(out)) return out;
        tf.dispose(out.slice(1));
        return out[0];
      },
      {
        cropSize: this.cropSize,
        numClasses: this.numClasses,
        overlap: o.overlap ?? 0.5,
        mirror: o.mirror ?? false,
        batchSize: o.batchSize ?? 1,
      },
    );
    if (!needsResampling(image.spacing, this.preprocessing)) return r.labels;
    return predictionToSource(r.probabilities, this.numClasses, x, {
      shape: image.shape,
      spacing: image.spacing,
      affine: image.affine,
    });
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** The `augment` setting a fine-tuning checkpoint records (the recipe's own record, or a study's settings), or null. */
function recordedAugment(extra: Record<string, unknown> | undefined): boolean | null {
  const e = (extra ?? {}) as { augment?: unknown; settings?: { finetune?: { augment?: unknown } } };
  const v = e.augment ?? e.settings?.finetune?.augment;
  return typeof v === "boolean" ? v : null;
}

/**
 * Refuses mirror test-time augmentation for a checkpoint that records training without mirroring (predictFile and
 * predictSplit check it; a Predictor used directly leaves the choice to its caller).
 */
function checkMirrorFits(p: Predictor, mirror: boolean | undefined): void {
  if (mirror && p.trainedWithMirroring === false)
    throw new Error(
      `${p.source} was fine-tuned without mirroring (augment off), so --mirror would average flipped predictions the ` +
        `network never learned and swap left and right organs (on the demo's networks validation Dice fell from 0.65 ` +
        `to 0.09); leave out --mirror, or fine-tune with augmentation`,
    );
}

/** Predicts one NIfTI file and writes the label map with the source affine. */
export async function predictFile(
  checkpoint: string,
  imageFile: string,
  outFile: string,
  o: PredictOptions = {},
): Promise<void> {
  assertWritableDir(path.dirname(path.resolve(outFile)));
  const p = Predictor.load(checkpoint);
  try {
    checkMirrorFits(p, o.mirror);
    const image = await readNifti(imageFile, { as: "image" });
    checkChannels(image, p.preprocessing.channels, "image");
    predictToNifti(outFile, await p.predict(image, o), image);
  } finally {
    p.dispose();
  }
}

/** Predicts every case of a resolved split into `<outDir>/<case id>.nii.gz`; returns the files written. */
export async function predictSplit(
  checkpoint: string,
  resolved: ResolvedManifest,
  split: keyof ResolvedManifest["splits"],
  outDir: string,
  o: PredictOptions = {},
  log: (s: string) => void = () => {},
): Promise<string[]> {
  assertWritableDir(outDir);
  const p = Predictor.load(checkpoint);
  const files: string[] = [];
  try {
    checkMirrorFits(p, o.mirror);
    for (const c of resolved.splits[split]) {
      const loaded = await loadCase(resolved, c, { withLabel: false });
      const file = path.join(outDir, `${c.id}.nii.gz`);
      predictToNifti(file, await p.predict(loaded.image, o), loaded.image);
      files.push(file);
      log(`  ${c.id} -> ${file}`);
    }
  } finally {
    p.dispose();
  }
  return files;
}

export interface EvaluationResult {
  dice: MetricSummary;
  hd95: MetricSummary;
  units: "mm" | "voxel";
  /** The HD95 definition and what an empty mask scores, in words. */
  hd95Convention: string;
  /** Per evaluated class: in how many cases the organ was found, missed, falsely predicted or absent from both. */
  detection: ReturnType<typeof countDetections>;
}

/**
 * Scores predictions `<predDir>/<case id>.nii.gz` against a split's labels: Dice and HD95 per evaluated class,
 * mean over cases then classes. `convention: "nnformer"` uses the official one (HD95 by medpy's definition in voxels,
 * 0 when empty; Dice 1 when both are empty); the default ("kit") reports HD95 in mm by `hd95` ("medpy" or "monai"),
 * charges a missed or hallucinated organ the volume's diagonal and leaves organs absent from both out of the means.
 * Either way the detection counts say how many organs were found, missed or hallucinated.
 */
export async function evaluatePredictions(
  resolved: ResolvedManifest,
  split: keyof ResolvedManifest["splits"],
  predDir: string,
  convention: "kit" | "nnformer" = "kit",
  hd95: Hd95Definition = "medpy",
): Promise<EvaluationResult> {
  if (convention === "nnformer" && hd95 !== "medpy") {
    throw new Error(
      `the nnformer convention is medpy's HD95 (the official evaluation); drop --hd95 ${hd95} or use --convention kit`,
    );
  }
  const m: Manifest = resolved.manifest;
  const names = evaluatedLabelNames(m);
  const classes = names.map((n) => m.labels.find((l) => l.name === n)!.value);
  const missing = resolved.splits[split]
    .map((c) => path.join(predDir, `${c.id}.nii.gz`))
    .filter((f) => !fs.existsSync(f));
  if (missing.length)
    throw new Error(
      `${missing.length} prediction file(s) missing in ${predDir}:\n  ${missing.join("\n  ")}\nrun \`mae-nnformer predict\` for the split first`,
    );
  const rows = [];
  const outcomes: Detection[][] = [];
  for (const c of resolved.splits[split]) {
    if (!c.label) throw new Error(`case ${c.id} of split ${split} has no label; evaluate needs a labelled split`);
    const ref = await readNifti(c.label, { as: "label" });
    const predFile = path.join(predDir, `${c.id}.nii.gz`);
    const pred = await readNifti(predFile, { as: "label" });
    checkSameGrid(ref, pred);
    checkLabelValues(pred.data, m, predFile); // a value the manifest does not list is not a prediction of this dataset
    outcomes.push(detections(pred.data, ref.data, classes));
    rows.push(
      evaluateCase(
        c.id,
        pred.data,
        ref.data,
        classes,
        ref.shape,
        ref.spacing,
        convention === "nnformer" ? NNFORMER_EVAL : kitEvaluation(hd95),
      ),
    );
  }
  const s = summarizeCases(rows, names);
  return {
    ...s,
    units: convention === "nnformer" ? "voxel" : "mm",
    hd95Convention:
      convention === "nnformer"
        ? `official nnFormer: ${HD95_DEFINITION_TEXT.medpy}; in voxels; 0 when the prediction or the reference is empty`
        : `kit: ${HD95_DEFINITION_TEXT[hd95]}; in mm; a missed or hallucinated organ scores the volume diagonal; absent from both is left out`,
    detection: countDetections(outcomes, names),
  };
}

/** Writes an evaluation as JSON (atomically). */
export function writeEvaluation(file: string, r: EvaluationResult): void {
  writeFileAtomic(
    file,
    JSON.stringify(r, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2) + "\n",
  );
}
