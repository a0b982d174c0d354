// Evaluation of a segmentation model on whole volumes: sliding-window prediction of each case, Dice per class.
// evaluateDice scores cases already on the plan's grid (fine-tuning's validation, train/segmentation.ts);
// scoreTestCases scores raw cases on their own grids, the way the study's test numbers are made.
import * as tf from "@tensorflow/tfjs";
import { Ops } from "../layers/ops";
import type { SegmentationModel } from "../models/types";
import type { Volume } from "../data/volume";
import { slidingWindowPredict } from "./sliding_window";
import { diceScores, nanMean } from "../metrics/dice";
import { Preprocessing, needsResampling, predictionToSource, preprocessCase } from "../data/preprocess";
import { ScoredCase, TestScores, scoreCase, summarizeScoredCases } from "../metrics/case_scores";
import type { Hd95Definition } from "../metrics/hd95";
import type { Vec3 } from "../runtime/math";

export interface DiceEvalOptions {
  cropSize: Vec3;
  numClasses: number;
  classes?: number[];
  overlap?: number;
  mirror?: boolean;
  batchSize?: number;
}

/** Sliding-window prediction of one volume on the model's main output (evaluation settings of `o`). */
function predictVolume(model: SegmentationModel, ops: Ops, image: Volume<Float32Array>, o: DiceEvalOptions) {
  return slidingWindowPredict(image, (batch) => mainOutput(model.forward(batch, { ops, training: false })), {
    cropSize: o.cropSize,
    numClasses: o.numClasses,
    overlap: o.overlap ?? 0.5,
    mirror: o.mirror ?? false,
    batchSize: o.batchSize ?? 1,
  });
}

/** Predicts each case by sliding window and scores Dice per class; mean over cases then classes (NaN skipped). */
export async function evaluateDice(
  model: SegmentationModel,
  ops: Ops,
  cases: Array<{ id: string; image: Volume<Float32Array>; label: Volume }>,
  o: DiceEvalOptions,
): Promise<{ mean: number; perClass: number[]; perCase: number[][]; predictions: Array<Uint8Array | Uint16Array> }> {
  const classes = o.classes ?? Array.from({ length: o.numClasses - 1 }, (_, i) => i + 1);
  const perCase: number[][] = [];
  const predictions: Array<Uint8Array | Uint16Array> = [];
  for (const c of cases) {
    const pred = await predictVolume(model, ops, c.image, o);
    perCase.push(diceScores(pred.labels, c.label.data, classes));
    predictions.push(pred.labels);
  }
  const perClass = classes.map((_, k) => nanMean(perCase.map((r) => r[k])));
  return { mean: nanMean(perClass), perClass, perCase, predictions };
}

export interface TestScoreOptions extends DiceEvalOptions {
  /** Label values scored, and their names (same order). */
  classes: number[];
  classNames: string[];
  hd95: Hd95Definition;
}

/**
 * Test scores of raw cases (native grid, raw intensities): each image is preprocessed with the plan, predicted by
 * sliding window, its class probabilities brought back to the case's own grid (predictionToSource: linear, then
 * argmax) and scored there against the original label map (metrics/case_scores.ts: Dice, HD95 penalised for misses,
 * detection counts). Nothing is chosen here: the model is scored as it is.
 */
export async function scoreTestCases(
  model: SegmentationModel,
  ops: Ops,
  cases: ReadonlyArray<{ id: string; image: Volume; label: Volume | null }>,
  plan: Preprocessing,
  o: TestScoreOptions,
): Promise<TestScores> {
  const scored: ScoredCase[] = [];
  for (const c of cases) {
    if (!c.label) throw new Error(`test case ${c.id} has no label map; the test split must be labelled`);
    const p = preprocessCase(c.image, null, plan);
    const pred = await predictVolume(model, ops, p.image, o);
    const labels = needsResampling(c.image.spacing, plan)
      ? predictionToSource(pred.probabilities, o.numClasses, p.image, p.source)
      : pred.labels;
    scored.push(scoreCase(c.id, labels, c.label.data, o.classes, c.label.shape, c.label.spacing, o.hd95));
  }
  return summarizeScoredCases(scored, o.classNames, o.hd95);
}

/** The full-resolution logits of a forward result; auxiliary deep-supervision outputs are disposed. */
function mainOutput(out: tf.Tensor5D | tf.Tensor5D[]): tf.Tensor5D {
  if (!Array.isArray(out)) return out;
  tf.dispose(out.slice(1));
  return out[0];
}
