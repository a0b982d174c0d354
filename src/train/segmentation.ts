// Fine-tuning a segmentation model: batches of foreground-oversampled, augmented crops, deep-supervised Dice+CE,
// validation by sliding-window Dice on whole volumes, best/latest checkpoints. The loop itself is fit() (train/fit.ts).
import * as tf from "@tensorflow/tfjs";
import * as path from "path";
import { Ops } from "../layers/ops";
import { SegmentationModel } from "../models/types";
import { Volume } from "../data/volume";
import { ForegroundIndex, foregroundIndex, sampleCropStart, extractCrop } from "../data/sampling";
import { augment, AugmentConfig } from "../data/augment";
import { Preprocessing, preprocessCase } from "../data/preprocess";
import { LoadedCase } from "../data/dataset";
import { deepSupervisionLoss } from "../losses/dice_ce";
import { evaluateDice } from "../infer/evaluate";
import { Rng, randInt } from "../runtime/random";
import { FitState, TrainTask } from "./fit";
import { Optimizer, ParamGroupRule, defaultRule } from "./optim";
import { saveCheckpoint, slotsByParamName } from "../io/checkpoint";
import type { Vec3 } from "../runtime/math";

/** A case ready for training: normalised float32 image, label map and its foreground index. */
export interface PreparedCase {
  id: string;
  image: Volume<Float32Array>;
  label: Volume;
  foreground: ForegroundIndex;
}

/**
 * Puts each case on the plan's grid (image resampled trilinearly and normalised, label resampled by nearest
 * neighbour; nothing is resampled without a target spacing) and indexes foreground voxels, once per case.
 */
export function prepareCases(cases: LoadedCase[], plan: Preprocessing): PreparedCase[] {
  return cases.map((c) => {
    if (!c.label)
      throw new Error(`case ${c.id} has no label map; fine-tuning needs labelled cases (check the manifest split)`);
    const p = preprocessCase(c.image, c.label, plan);
    return { id: c.id, image: p.image, label: p.label!, foreground: foregroundIndex(p.label!) };
  });
}

export interface SegmentationTaskOptions {
  model: SegmentationModel;
  ops: Ops;
  train: PreparedCase[];
  val: PreparedCase[];
  numClasses: number;
  cropSize: Vec3;
  batchSize: number;
  /** Fraction of each batch forced to contain foreground (nnU-Net 0.33: the last third of the batch). */
  foregroundFraction: number;
  augment: AugmentConfig;
  /** Dice pooled over the batch (nnU-Net batch_dice) or per sample. */
  batchDice: boolean;
  /** Label values scored in validation (default: every foreground class). */
  evalClasses?: number[];
  /** Sliding-window overlap for validation (0 = tiles, fastest). */
  valOverlap?: number;
  /** Where "best.safetensors" and "latest.safetensors" go; none = no checkpoints. */
  checkpointDir?: string;
  /** Registry name and config, recorded in checkpoints. */
  modelName: string;
  preprocessing: Preprocessing;
  /** Per-variable learning-rate scale and decay flag (layer-wise decay); default defaultRule. */
  paramRule?: (v: tf.Variable) => ParamGroupRule;
  /** Extra facts recorded in checkpoints. */
  extra?: Record<string, unknown>;
  /** Zero-pad crops that stick out of a smaller volume (default true, as nnU-Net); false: such volumes are an error. */
  padCrops?: boolean;
}

/** Validates the settings against the data before any training starts. */
export function checkSegmentationTask(o: SegmentationTaskOptions): void {
  if (o.train.length === 0)
    throw new Error("fine-tuning needs at least one labelled training case; the train split is empty");
  if (!(o.foregroundFraction >= 0 && o.foregroundFraction <= 1)) {
    throw new Error(`foregroundFraction is ${o.foregroundFraction}: use a value in [0, 1] (nnU-Net 0.33)`);
  }
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1)
    throw new Error(`batchSize is ${o.batchSize}: use a positive integer`);
  for (const c of [...o.train, ...o.val]) {
    const max = c.foreground.classes.length ? Math.max(...c.foreground.classes) : 0;
    if (max >= o.numClasses) {
      throw new Error(
        `case ${c.id} (${c.label.source}) has label value ${max} but the model has ${o.numClasses} classes (0..${o.numClasses - 1}); fix the manifest's labels or the model's numClasses`,
      );
    }
    if (o.padCrops === false) {
      const small = [0, 1, 2].filter((a) => c.image.shape[a] < o.cropSize[a]);
      if (small.length) {
        throw new Error(
          `case ${c.id} (${c.image.source}) is ${c.image.shape.join("x")}, smaller than the crop ${o.cropSize.join("x")} on axis ${small.map((a) => "DHW"[a]).join(", ")}, and padding is disabled; enable padding (padCrops) or use a smaller crop`,
        );
      }
    }
  }
  const channels = new Set([...o.train, ...o.val].map((c) => c.image.channels));
  if (channels.size > 1)
    throw new Error(
      `cases have different channel counts (${[...channels].join(", ")}); every case needs the manifest's channels`,
    );
}

/** A TrainTask for fit(): segmentation fine-tuning. */
export class SegmentationTask implements TrainTask {
  private optimizerRef: Optimizer | null = null;
  constructor(readonly o: SegmentationTaskOptions) {
    checkSegmentationTask(o);
  }

  variables(): tf.Variable[] {
    return this.o.model.trainableVariables();
  }

  paramRule(v: tf.Variable): ParamGroupRule {
    return (this.o.paramRule ?? defaultRule)(v);
  }

  /** One batch: nnU-Net oversampling (the last ceil(B·fraction) items are forced to foreground), then augmentation. */
  sampleBatch(rng: Rng): { x: tf.Tensor5D; y: tf.Tensor4D } {
    const { cropSize, batchSize, train } = this.o;
    const [D, H, W] = cropSize;
    const C = train[0].image.channels;
    const xs = new Float32Array(batchSize * D * H * W * C);
    const ys = new Int32Array(batchSize * D * H * W);
    const forced = Math.round(batchSize * this.o.foregroundFraction + 1e-9);
    for (let b = 0; b < batchSize; b++) {
      const c = train[randInt(rng, 0, train.length - 1)];
      const fg = b >= batchSize - forced ? 1 : 0;
      const start = sampleCropStart(rng, c.image.shape, cropSize as Vec3, {
        label: c.foreground,
        foregroundProb: fg,
      });
      const crop = extractCrop(c.image, c.label, start, cropSize as Vec3);
      const aug = augment(rng, crop.image, crop.label, this.o.augment);
      xs.set(aug.image.data, b * D * H * W * C);
      const l = aug.label!.data;
      for (let i = 0; i < l.length; i++) ys[b * D * H * W + i] = l[i];
    }
    return { x: tf.tensor5d(xs, [batchSize, D, H, W, C]), y: tf.tensor4d(ys, [batchSize, D, H, W], "int32") };
  }

  loss(_step: number, rng: Rng): tf.Scalar {
    const { x, y } = this.sampleBatch(rng);
    const out = this.o.model.forward(x, { ops: this.o.ops, training: true, rng });
    const outputs = Array.isArray(out) ? out : [out];
    return deepSupervisionLoss(outputs, [y], { batchDice: this.o.batchDice });
  }

  /** Mean foreground Dice over the validation cases (sliding window, no mirroring). */
  async evaluate(): Promise<{ metric: number; valDice: number }> {
    if (this.o.val.length === 0) return { metric: NaN, valDice: NaN };
    const dice = await evaluateDice(this.o.model, this.o.ops, this.o.val, {
      cropSize: this.o.cropSize,
      numClasses: this.o.numClasses,
      classes: this.o.evalClasses,
      overlap: this.o.valOverlap ?? 0,
    });
    return { metric: dice.mean, valDice: dice.mean };
  }

  async save(tag: "latest" | "best", state: FitState, optimizer: Optimizer): Promise<void> {
    if (!this.o.checkpointDir) return;
    this.optimizerRef = optimizer;
    const params = this.o.model.params;
    await saveCheckpoint(
      path.join(this.o.checkpointDir, `${tag}.safetensors`),
      params,
      {
        kind: "finetune",
        model: this.o.modelName,
        config: this.o.model.config,
        preprocessing: this.o.preprocessing,
        fit: state,
        extra: this.o.extra,
      },
      tag === "latest"
        ? { ...slotsByParamName(params, await optimizer.state()), kind: optimizer.config.kind }
        : undefined,
    );
  }
}
