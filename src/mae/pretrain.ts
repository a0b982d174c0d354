// MAE pretraining as a TrainTask for the shared loop (train/fit.ts): AdamW (β2 0.95, wd 0.05, none on norms, biases,
// RPB tables and tokens), 5% warmup + cosine, clip 1 (docs/mae.md §2). Seeded random crops (half of them forced to
// contain body) with optional augmentation, from a manifest split (labels ignored; default "unlabeled") or from
// generated phantoms. Intensities go through a Preprocessing plan that is saved in every checkpoint, so fine-tuning can
// verify it uses the same one. Held-out reconstruction loss is the evaluation (metric = −loss); "latest" (and "best")
// checkpoints are written atomically every evalEvery steps with the optimizer state, so resume continues the schedule.
import * as path from "path";
import * as fs from "fs";
import * as tf from "@tensorflow/tfjs";
import type { Ops } from "../layers/ops";
import { selectOps } from "../layers/fast_ops";
import type { NnFormerConfig } from "../models/nnformer";
import {
  fit,
  type FitOptions,
  type FitResult,
  type FitState,
  type StepRecord,
  type TrainConfig,
  type TrainTask,
} from "../train/fit";
import { ADAMW_MAE, defaultRule, type Optimizer } from "../train/optim";
import { makeRng, seedFrom, type Rng } from "../runtime/random";
import { AUGMENT_OFF, augment, type AugmentConfig } from "../data/augment";
import { foregroundIndex, sampleCropStart, extractCrop, type ForegroundIndex } from "../data/sampling";
import { generatePhantom } from "../data/phantom";
import { loadManifest, resolveManifest, type SplitName } from "../data/manifest";
import { loadSplit } from "../data/dataset";
import { Volume } from "../data/volume";
import { MaeNnFormer, type MaeOverrides } from "./mae3d";
import type { MaskSample } from "./masking";
import { voxelVisibility } from "./masking";
import {
  applyPreprocessing,
  bodyMask,
  preprocessLabel,
  checkPreprocessingMatch,
  computePreprocessing,
  type Preprocessing,
} from "../data/preprocess";
import { readMaeCheckpointInfo, restoreMaeCheckpoint, saveMaeCheckpoint } from "./checkpoint";
import { slotsByParamName, slotsByVariableName } from "../io/checkpoint";
import type { Vec3 } from "../runtime/math";

/** Where pretraining volumes come from. Labels are never used. */
export type PretrainData =
  /** Generated phantoms (no files): cases 0..count−1 of `seed`; the last `heldOut` are held out for evaluation. */
  | { kind: "phantom"; seed: number; count: number; shape?: Vec3; heldOut?: number }
  /** A manifest split (default "unlabeled") under its data root; the last `heldOut` cases are held out. */
  | { kind: "manifest"; manifest: string; split?: SplitName; dataRoot?: string; heldOut?: number }
  /** Volumes already in memory (raw intensities). */
  | { kind: "volumes"; modality: string; train: Volume[]; heldOut: Volume[] };

/** Spatial augmentation of docs/mae.md §2: mirroring on all axes, mild rotation and scaling; intensity augmentation off. */
export const MAE_AUGMENT: AugmentConfig = {
  ...AUGMENT_OFF,
  flipProb: [0.5, 0.5, 0.5],
  rotateProb: 0.2,
  rotateDeg: [15, 15, 15],
  scaleProb: 0.2,
  scaleRange: [0.7, 1.4],
};

export interface PretrainOptions {
  /** The encoder config: use the fine-tuning config (crop and windows decide the RPB table shapes). */
  model: NnFormerConfig;
  /** MAE settings (mask mode/ratio/unit, decoder widths, normPix). */
  mae?: MaeOverrides;
  data: PretrainData;
  /** A fixed plan (e.g. the fine-tuning run's); default: computed on the training volumes. */
  preprocessing?: Preprocessing;
  /** Optimizer steps. */
  maxSteps: number;
  /** Crops per step (default 2). */
  batchSize?: number;
  /** Peak AdamW learning rate (default 3e-4) and cosine floor (default 1e-6). */
  lr?: number;
  minLr?: number;
  /** Warmup as a fraction of maxSteps (default 0.05). */
  warmupFraction?: number;
  /** Global-norm clip (default 1). */
  clipNorm?: number;
  /** Evaluate and write "latest" every N steps (default 0: only at the end). */
  evalEvery?: number;
  /** Held-out crops in the evaluation (default 4). */
  evalCrops?: number;
  /** Seed of model init, crops, masks and augmentation (default 0). */
  seed?: number;
  /** Augmentation (default MAE_AUGMENT; AUGMENT_OFF for none). */
  augment?: AugmentConfig;
  /** Probability that a crop is centred on body (default 0.5). */
  bodyFraction?: number;
  /** Folder for mae_latest.safetensors / mae_best.safetensors (none written when omitted). */
  outDir?: string;
  /** Resume from a checkpoint file (true: outDir/mae_latest.safetensors). */
  resume?: string | boolean;
  /** Recorded with the training settings in every checkpoint (a study stores its settings fingerprint here). */
  record?: Record<string, unknown>;
  onStep?: (r: StepRecord) => boolean | void;
  progress?: boolean;
  /** Op implementations (default selectOps(tf.getBackend())). */
  ops?: Ops;
}

export interface PretrainResult {
  mae: MaeNnFormer;
  preprocessing: Preprocessing;
  /** Training loss per step of this run. */
  losses: number[];
  /** Held-out evaluations: reconstruction loss and the loss of predicting the mean (≈ variance of the targets). */
  evals: Array<{ step: number; loss: number; meanBaseline: number }>;
  fit: FitResult;
  /** Checkpoint files written. */
  checkpoints: string[];
}

/** Loads (or generates) the raw volumes of a data source, split into training and held-out cases. */
export async function loadPretrainVolumes(
  data: PretrainData,
): Promise<{ modality: string; train: Volume[]; heldOut: Volume[]; description: string }> {
  if (data.kind === "volumes") {
    return {
      modality: data.modality,
      train: data.train,
      heldOut: data.heldOut,
      description: `${data.train.length} + ${data.heldOut.length} volumes in memory`,
    };
  }
  const split = (vols: Volume[], k: number, what: string) => {
    if (!(Number.isInteger(k) && k >= 1 && k < vols.length)) {
      throw new Error(
        `data.heldOut = ${k}: ${what} has ${vols.length} cases; hold out between 1 and ${vols.length - 1}`,
      );
    }
    return { train: vols.slice(0, vols.length - k), heldOut: vols.slice(vols.length - k) };
  };
  if (data.kind === "phantom") {
    if (!(Number.isInteger(data.count) && data.count >= 2))
      throw new Error(`data.count = ${data.count}: generate at least 2 phantoms (one is held out)`);
    const vols = Array.from(
      { length: data.count },
      (_, i) => generatePhantom(data.seed, i, data.shape ? { shape: data.shape } : {}).image,
    );
    return {
      modality: "CT",
      ...split(vols, data.heldOut ?? 1, "the phantom set"),
      description: `phantoms seed ${data.seed} × ${data.count}${data.shape ? ` at ${data.shape.join("x")}` : ""}`,
    };
  }
  const manifest = loadManifest(data.manifest);
  const which: SplitName = data.split ?? "unlabeled";
  const resolved = resolveManifest(manifest, data.dataRoot, { only: [which] });
  const cases = await loadSplit(resolved, which);
  const vols = cases.map((c) => c.image);
  const k = data.heldOut ?? Math.max(1, Math.round(vols.length / 10));
  return {
    modality: manifest.modality,
    ...split(vols, k, `split "${which}" of ${manifest.name}`),
    description: `${manifest.name}/${which} (${vols.length} cases)`,
  };
}

/** The pretraining task: batches, loss, held-out evaluation and checkpoints for fit(). */
/** Training losses of the first steps kept in every checkpoint, so a rerun can be checked against them. */
export const RECORDED_FIRST_STEPS = 8;

/** What a pretraining checkpoint records of its run so far (train.history): the held-out curve and the first losses. */
export interface PretrainHistory {
  evals: Array<{ step: number; loss: number; meanBaseline: number }>;
  /** Training loss of steps 1..RECORDED_FIRST_STEPS. */
  firstLosses: number[];
}

export class MaePretrainTask implements TrainTask {
  readonly losses: number[] = [];
  readonly evals: Array<{ step: number; loss: number; meanBaseline: number }> = [];
  readonly firstLosses: number[] = [];
  readonly checkpoints: string[] = [];
  private readonly train: Array<{ vol: Volume<Float32Array>; body: ForegroundIndex }>;
  private readonly evalBatches: Array<{ x: Float32Array; mask: MaskSample }>;
  private readonly meanBaseline: number;

  constructor(
    readonly mae: MaeNnFormer,
    readonly preprocessing: Preprocessing,
    train: Volume<Float32Array>[],
    heldOut: Volume<Float32Array>[],
    readonly opts: {
      batchSize: number;
      evalCrops: number;
      seed: number;
      augment: AugmentConfig;
      bodyFraction: number;
      padValue: number;
      ops: Ops;
      outDir?: string;
      trainInfo: Record<string, unknown>;
    },
    rawTrain: Volume[],
    rawHeldOut: Volume[],
  ) {
    this.train = train.map((vol, i) => ({ vol, body: foregroundIndex(bodyOf(rawTrain[i], preprocessing)) }));
    const held = heldOut.map((vol, i) => ({ vol, body: foregroundIndex(bodyOf(rawHeldOut[i], preprocessing)) }));
    // fixed held-out crops and masks: the same every evaluation, and the same on resume
    this.evalBatches = Array.from({ length: opts.evalCrops }, (_, i) => {
      const rng = makeRng(seedFrom("mae-eval", opts.seed, i));
      const x = this.crops(rng, [held[i % held.length]], 1, null);
      return { x, mask: mae.drawMask(rng, 1) };
    });
    // baseline: predict the held-out mean target at every masked voxel (the loss of a model that learnt nothing)
    let s = 0,
      n = 0;
    const targets = this.evalBatches.map((b) => ({ t: mae.target(b.x, b.mask), vis: voxelVisibility(b.mask) }));
    const C = mae.config.inChannels;
    for (const { t, vis } of targets)
      for (let v = 0; v < vis.length; v++)
        if (!vis[v])
          for (let c = 0; c < C; c++) {
            s += t[v * C + c];
            n++;
          }
    const mean = s / Math.max(1, n);
    let ss = 0;
    for (const { t, vis } of targets)
      for (let v = 0; v < vis.length; v++) if (!vis[v]) for (let c = 0; c < C; c++) ss += (t[v * C + c] - mean) ** 2;
    this.meanBaseline = ss / Math.max(1, n);
  }

  /** B crops [B, D, H, W, C] from random cases, optionally augmented. */
  private crops(
    rng: Rng,
    pool: Array<{ vol: Volume<Float32Array>; body: ForegroundIndex }>,
    batch: number,
    aug: AugmentConfig | null,
  ): Float32Array {
    const crop = this.mae.config.cropSize,
      C = this.mae.config.inChannels;
    const size = crop[0] * crop[1] * crop[2] * C;
    const out = new Float32Array(batch * size);
    for (let b = 0; b < batch; b++) {
      const item = pool[Math.floor(rng() * pool.length)];
      const start = sampleCropStart(rng, item.vol.shape, crop, {
        label: item.body,
        foregroundProb: this.opts.bodyFraction,
      });
      let img = extractCrop(item.vol, null, start, crop, { imagePad: this.opts.padValue }).image;
      if (aug) img = augment(rng, img, null, aug).image;
      out.set(img.data, b * size);
    }
    return out;
  }

  variables(): tf.Variable[] {
    return this.mae.trainableVariables();
  }

  paramRule(v: tf.Variable) {
    return defaultRule(v); // no decay on 1-D tensors, relative_position_bias_table, mask_token
  }

  loss(_step: number, rng: Rng): tf.Scalar {
    const x = this.crops(rng, this.train, this.opts.batchSize, this.opts.augment);
    const mask = this.mae.drawMask(rng, this.opts.batchSize);
    return this.mae.loss({ x, mask }, this.opts.ops);
  }

  /** Held-out reconstruction loss (metric = −loss) and the predict-the-mean baseline. */
  async evaluate(step: number): Promise<{ metric: number; loss: number; meanBaseline: number }> {
    let total = 0;
    for (const b of this.evalBatches) {
      const l = tf.tidy(() => this.mae.loss(b, this.opts.ops));
      total += (await l.data())[0];
      l.dispose();
    }
    const loss = total / this.evalBatches.length;
    this.evals.push({ step, loss, meanBaseline: this.meanBaseline });
    return { metric: -loss, loss, meanBaseline: this.meanBaseline };
  }

  async save(tag: "latest" | "best", state: FitState, optimizer: Optimizer): Promise<void> {
    if (!this.opts.outDir) return;
    const file = path.join(this.opts.outDir, `mae_${tag}.safetensors`);
    await saveMaeCheckpoint(file, this.mae, {
      preprocessing: this.preprocessing,
      fitState: state,
      train: { ...this.opts.trainInfo, history: { evals: this.evals, firstLosses: this.firstLosses } },
      optimizer: slotsByParamName(this.mae.namedParams(), await optimizer.state()),
    });
    if (!this.checkpoints.includes(file)) this.checkpoints.push(file);
  }
}

/** The body mask of a raw volume, on the plan's grid (resampled by nearest neighbour like a label map). */
function bodyOf(raw: Volume, p: Preprocessing): Volume<Uint8Array> {
  if (p.intensity.kind === "ct") return preprocessLabel(bodyMask(raw), p);
  const n = raw.data.length / raw.channels,
    m = new Uint8Array(n);
  for (let i = 0; i < n; i++) m[i] = raw.data[i * raw.channels] !== 0 ? 1 : 0;
  return preprocessLabel({ ...raw, data: m, channels: 1 }, p);
}

/** The value of air after preprocessing (crops that leave the volume are padded with it). */
function padValueOf(p: Preprocessing): number {
  return p.intensity.kind === "ct" ? (p.intensity.clip[0] - p.intensity.mean) / p.intensity.std : 0;
}

/**
 * Pretrains an MAE on the encoder config `options.model` and returns the trained model, the preprocessing plan and
 * the losses. With `resume`, the run continues from the checkpoint's step with its weights, optimizer moments and the
 * same per-step streams (fit seeds every step from (seed, step)), so it ends where an uninterrupted run would.
 */
export async function pretrainMae(options: PretrainOptions): Promise<PretrainResult> {
  const o = {
    batchSize: 2,
    lr: 3e-4,
    minLr: 1e-6,
    warmupFraction: 0.05,
    clipNorm: 1,
    evalEvery: 0,
    evalCrops: 4,
    seed: 0,
    augment: MAE_AUGMENT,
    bodyFraction: 0.5,
    ...options,
  };
  if (!(Number.isInteger(o.batchSize) && o.batchSize >= 1))
    throw new Error(`batchSize = ${o.batchSize}: use a positive integer (MAE: 2–8)`);
  if (!(o.warmupFraction >= 0 && o.warmupFraction < 1))
    throw new Error(`warmupFraction = ${o.warmupFraction}: use a fraction in [0, 1), e.g. 0.05`);
  if (!(Number.isInteger(o.evalCrops) && o.evalCrops >= 1))
    throw new Error(`evalCrops = ${o.evalCrops}: use at least 1`);
  const ops = o.ops ?? selectOps(tf.getBackend());
  const resumeFile =
    o.resume === true ? (o.outDir ? path.join(o.outDir, "mae_latest.safetensors") : undefined) : o.resume || undefined;
  if (o.resume === true && !resumeFile)
    throw new Error("resume: true needs outDir (it resumes from outDir/mae_latest.safetensors)");
  if (resumeFile && !fs.existsSync(resumeFile))
    throw new Error(
      `resume: checkpoint ${resumeFile} does not exist; start without resume or point at mae_latest.safetensors`,
    );

  const data = await loadPretrainVolumes(o.data);
  if (data.train.length === 0 || data.heldOut.length === 0)
    throw new Error("pretrainMae: need at least one training and one held-out volume");
  const info = resumeFile ? readMaeCheckpointInfo(resumeFile) : null;
  let preprocessing = o.preprocessing ?? info?.preprocessing ?? computePreprocessing(data.train, data.modality);
  if (info) checkPreprocessingMatch(info.preprocessing, preprocessing);
  if (preprocessing.channels !== o.model.inChannels) {
    throw new Error(
      `preprocessing has ${preprocessing.channels} channel(s) but model.inChannels is ${o.model.inChannels}; make them agree`,
    );
  }
  const train = data.train.map((v) => applyPreprocessing(v, preprocessing));
  const heldOut = data.heldOut.map((v) => applyPreprocessing(v, preprocessing));

  const config: TrainConfig = {
    maxSteps: o.maxSteps,
    optimizer: ADAMW_MAE,
    schedule: { kind: "cosine", lr: o.lr, minLr: o.minLr, warmupSteps: Math.round(o.warmupFraction * o.maxSteps) },
    clipNorm: o.clipNorm,
    evalEvery: o.evalEvery,
    seed: o.seed,
  };
  const trainInfo: Record<string, unknown> = {
    maxSteps: o.maxSteps,
    batchSize: o.batchSize,
    lr: o.lr,
    minLr: o.minLr,
    warmupSteps: config.schedule.warmupSteps,
    clipNorm: o.clipNorm,
    evalEvery: o.evalEvery,
    seed: o.seed,
    augment: o.augment,
    bodyFraction: o.bodyFraction,
    data: data.description,
    ...o.record,
  };
  if (info?.train) {
    const keys = ["maxSteps", "batchSize", "lr", "minLr", "warmupSteps", "clipNorm", "seed", "data"];
    const diff = keys
      .filter((k) => JSON.stringify(info.train![k]) !== JSON.stringify(trainInfo[k]))
      .map((k) => `${k}: checkpoint ${JSON.stringify(info.train![k])}, now ${JSON.stringify(trainInfo[k])}`);
    if (diff.length)
      throw new Error(
        `resume: ${resumeFile} was written by a run with other settings, so the schedule would not continue:\n  ${diff.join("\n  ")}`,
      );
  }

  const mae = new MaeNnFormer(o.model, o.mae ?? {}, { seed: o.seed });
  try {
    let resume: FitOptions["resume"];
    if (info) {
      restoreMaeCheckpoint(mae, info.ckpt);
      if (!info.fitState) throw new Error(`resume: ${resumeFile} has no fit state (it was not written by pretrainMae)`);
      resume = {
        state: info.fitState,
        optimizer: info.optimizer ? slotsByVariableName(mae.namedParams(), info.optimizer) : undefined,
      };
    }
    const task = new MaePretrainTask(
      mae,
      preprocessing,
      train,
      heldOut,
      {
        batchSize: o.batchSize,
        evalCrops: o.evalCrops,
        seed: o.seed,
        augment: o.augment,
        bodyFraction: o.bodyFraction,
        padValue: padValueOf(preprocessing),
        ops,
        outDir: o.outDir,
        trainInfo,
      },
      data.train,
      data.heldOut,
    );
    const before = info?.train?.history as PretrainHistory | undefined; // a resumed run keeps its earlier record
    if (before) {
      task.evals.push(...before.evals);
      task.firstLosses.push(...before.firstLosses);
    }
    const result = await fit(task, config, {
      resume,
      progress: o.progress,
      label: `mae ${mae.mae.mask.mode}`,
      onStep: (r) => {
        task.losses.push(r.loss);
        if (r.step <= RECORDED_FIRST_STEPS) task.firstLosses.push(r.loss);
        return o.onStep?.(r);
      },
    });
    preprocessing = task.preprocessing;
    return { mae, preprocessing, losses: task.losses, evals: task.evals, fit: result, checkpoints: task.checkpoints };
  } catch (e) {
    mae.dispose();
    throw e;
  }
}
