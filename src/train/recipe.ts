// The fine-tuning recipe of the kit, in one place: optimizer choice (SGD Nesterov 0.99 as nnU-Net, or AdamW), poly
// learning-rate decay with linear warm-up, gradient clipping at 12 (nnU-Net), layer-wise decay for a pretrained
// encoder, resume from the run's latest checkpoint, and the run-folder naming. The study, the CLI `finetune` (a
// one-cell study) and notebook 04 all go through it.
import * as fs from "fs";
import * as path from "path";
import { Ops } from "../layers/ops";
import type { SegmentationModel } from "../models/types";
import { resolveModelName } from "../registry";
import { AUGMENT_DEFAULT, AUGMENT_OFF } from "../data/augment";
import type { Preprocessing } from "../data/preprocess";
import { checkKind, readCheckpoint, restoreParams, slotsByVariableName } from "../io/checkpoint";
import { fit, type FitOptions, type FitResult, type StepRecord, type TrainConfig } from "./fit";
import { ADAMW_DEFAULT, SGD_NNUNET } from "./optim";
import { nnFormerLayerDecay } from "./layer_decay";
import { SegmentationTask, type PreparedCase } from "./segmentation";
import { DataParallelGroup, dataParallelTask } from "./data_parallel";
import type { Vec3 } from "../runtime/math";

/** Fine-tuning settings (a study profile's `finetune` block). */
export interface FinetuneSettings {
  steps: number;
  batchSize: number;
  optimizer: "adamw" | "sgd";
  /** Peak learning rate, the same for every initialisation (equal budget, no per-arm tuning). */
  lr: number;
  warmupFraction: number;
  /** Validation every N steps (the convergence curve). */
  evalEvery: number;
  augment: boolean;
  foregroundFraction: number;
  /** Layer-wise learning-rate decay for a pretrained encoder (1 or absent = off; MAE uses 0.65-0.75). */
  layerDecay?: number;
  /** Zero-pad crops sticking out of smaller volumes (default true); false makes such volumes an error. */
  padCrops?: boolean;
}

/** Validation Dice and training loss at an evaluation step. */
export interface CurvePoint {
  step: number;
  valDice: number;
  trainLoss: number;
}

/** The training loop settings of the recipe: optimizer by name, poly schedule (exponent 0.9) with warm-up, clip 12. */
export function finetuneTrainConfig(f: FinetuneSettings, seed: number): TrainConfig {
  return {
    maxSteps: f.steps,
    optimizer: f.optimizer === "sgd" ? { ...SGD_NNUNET } : { ...ADAMW_DEFAULT },
    schedule: { kind: "poly", lr: f.lr, exponent: 0.9, warmupSteps: Math.round(f.warmupFraction * f.steps) },
    clipNorm: 12,
    evalEvery: f.evalEvery,
    seed,
  };
}

/** The folder of one run under a study's output: <out>/runs/<key with | and = replaced by _>. */
export function runFolder(out: string, runKey: string): string {
  return path.join(out, "runs", runKey.replace(/[|=]/g, "_"));
}

export interface FinetuneRun {
  model: SegmentationModel;
  /** Registry name (recorded in checkpoints). */
  modelName: string;
  ops: Ops;
  train: PreparedCase[];
  val: PreparedCase[];
  numClasses: number;
  cropSize: Vec3;
  /** Label values scored in validation. */
  evalClasses: number[];
  preprocessing: Preprocessing;
  settings: FinetuneSettings;
  seed: number;
  /** The encoder starts from pretrained weights (layer-wise decay applies when settings.layerDecay < 1). */
  pretrained: boolean;
  /** Checkpoint folder (best/latest.safetensors); a latest.safetensors already there is resumed. None: no files. */
  dir?: string;
  /** Recorded in the checkpoints besides the curve. */
  extra?: Record<string, unknown>;
  onStep?: (r: StepRecord) => boolean | void;
  progress?: boolean;
  label?: string;
  log?: (line: string) => void;
  /**
   * Data-parallel shards (this thread + N-1 worker threads, each its own wasm instance and batchSize/N of every
   * batch; see data_parallel.ts). Default 1. Same results up to float summation order, except drop path, which then
   * draws per shard.
   */
  dataParallel?: number;
}

export interface FinetuneResult {
  fit: FitResult;
  /** Validation curve, including the part before a resume. */
  curve: CurvePoint[];
  /** Wall time of each step run here (ms). */
  stepMs: number[];
}

/** Fine-tunes (or resumes) one run with the recipe. */
export async function finetune(run: FinetuneRun): Promise<FinetuneResult> {
  const f = run.settings;
  const curve: CurvePoint[] = [];
  const stepMs: number[] = [];
  let resume: FitOptions["resume"];
  const latest = run.dir ? path.join(run.dir, "latest.safetensors") : null;
  if (latest && fs.existsSync(latest)) {
    // an interrupted run: continue from its last checkpoint (same weights, moments and step streams)
    const ck = readCheckpoint(latest);
    checkKind(ck, ["finetune"], "resuming a fine-tuning run");
    if (resolveModelName(ck.info.model) !== resolveModelName(run.modelName))
      throw new Error(
        `${latest}: checkpoint is for model "${ck.info.model}", not "${run.modelName}"; use another output folder`,
      );
    restoreParams(ck, run.model.params, { config: run.model.config, what: run.modelName });
    if (!ck.info.fit) throw new Error(`${latest}: no fit state recorded; the file is damaged (delete it to restart)`);
    resume = { state: ck.info.fit, optimizer: slotsByVariableName(run.model.params, ck.optimizer) };
    curve.push(...(((ck.info.extra ?? {}) as { curve?: CurvePoint[] }).curve ?? []));
    run.log?.(`    resuming ${run.label ?? run.modelName} from step ${resume.state.step} (${latest})`);
  }
  const task = new SegmentationTask({
    model: run.model,
    ops: run.ops,
    train: run.train,
    val: run.val,
    numClasses: run.numClasses,
    cropSize: run.cropSize,
    batchSize: f.batchSize,
    foregroundFraction: f.foregroundFraction,
    augment: f.augment ? AUGMENT_DEFAULT : AUGMENT_OFF,
    batchDice: true,
    evalClasses: run.evalClasses,
    valOverlap: 0,
    paramRule:
      run.pretrained && f.layerDecay !== undefined && f.layerDecay < 1 ? nnFormerLayerDecay(f.layerDecay) : undefined,
    padCrops: f.padCrops,
    modelName: run.modelName,
    preprocessing: run.preprocessing,
    checkpointDir: run.dir,
    // augment is read back by predict, which refuses mirror TTA for a network trained without mirroring
    extra: { ...run.extra, curve, augment: f.augment },
  });
  const world = run.dataParallel ?? 1;
  const group =
    world > 1
      ? await DataParallelGroup.create({
          world,
          main: run.model,
          replica: {
            kind: "registry",
            model: run.modelName,
            config: run.model.config as object,
            ops: run.ops.name === "fast" ? "fast" : "plain",
            batchDice: true,
            seed: run.seed,
          },
          xShape: [f.batchSize, ...run.cropSize, run.train[0].image.channels],
          yShape: [f.batchSize, ...run.cropSize],
        })
      : null;
  let result: FitResult;
  try {
    result = await fit(group ? dataParallelTask(task, group) : task, finetuneTrainConfig(f, run.seed), {
      resume,
      progress: run.progress,
      label: run.label,
      onStep: (rec) => {
        stepMs.push(rec.ms);
        if (rec.eval) curve.push({ step: rec.step, valDice: rec.eval.valDice, trainLoss: rec.loss });
        return run.onStep?.(rec);
      },
    });
  } finally {
    await group?.close();
  }
  return { fit: result, curve, stepMs };
}
