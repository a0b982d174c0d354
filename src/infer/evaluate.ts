// Evaluation of a segmentation model on whole volumes: sliding-window prediction of each case, Dice per class.
// Used by fine-tuning's validation (train/segmentation.ts) and the study's test metrics.
import * as tf from "@tensorflow/tfjs";
import { Ops } from "../layers/ops";
import type { SegmentationModel } from "../models/types";
import type { Volume } from "../data/volume";
import { slidingWindowPredict } from "./sliding_window";
import { diceScores, nanMean } from "../metrics/dice";
import type { Vec3 } from "../runtime/math";

export interface DiceEvalOptions {
  cropSize: Vec3;
  numClasses: number;
  classes?: number[];
  overlap?: number;
  mirror?: boolean;
  batchSize?: number;
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
    const pred = await slidingWindowPredict(
      c.image,
      (batch) => mainOutput(model.forward(batch, { ops, training: false })),
      {
        cropSize: o.cropSize,
        numClasses: o.numClasses,
        overlap: o.overlap ?? 0.5,
        mirror: o.mirror ?? false,
        batchSize: o.batchSize ?? 1,
      },
    );
    perCase.push(diceScores(pred.labels, c.label.data, classes));
    predictions.push(pred.labels);
  }
  const perClass = classes.map((_, k) => nanMean(perCase.map((r) => r[k])));
  return { mean: nanMean(perClass), perClass, perCase, predictions };
}

/** The full-resolution logits of a forward result; auxiliary deep-supervision outputs are disposed. */
function mainOutput(out: tf.Tensor5D | tf.Tensor5D[]): tf.Tensor5D {
  if (!Array.isArray(out)) return out;
  tf.dispose(out.slice(1));
  return out[0];
}
