// Benchmark of whole nnFormer training steps: forward with deep supervision, Dice+CE, backward, clipping, AdamW.
// Reports forward and step time, voxels per second, memory, and effective GFLOP/s (conv/convT/linear/attention-product
// FLOPs of the step, counted as 3 × forward, divided by the step time). Not a test: nothing here asserts a time.
import * as tf from "@tensorflow/tfjs";
import { NnFormer, NnFormerConfig } from "../models/nnformer";
import { NnFormerSegmentation } from "../models/nnformer_segmentation";
import type { SegmentationModel } from "../models/types";
import { nnFormerForwardMacs } from "../models/nnformer_flops";
import { Ops } from "../layers/ops";
import { deepSupervisionLoss } from "../losses/dice_ce";
import { Optimizer, clipByGlobalNorm } from "../train/optim";
import { makeRng, seedFrom } from "../runtime/random";
import { lowerMedian } from "../runtime/math";

export interface StepBenchRow {
  preset: string;
  ops: string;
  backend: string;
  batch: number;
  crop: string;
  params: number;
  /** Forward FLOPs (with deep-supervision heads), GFLOP. */
  forwardGflop: number;
  /** Median forward time (inference, deep-supervision heads on), ms. */
  forwardMs: number;
  /** Median training-step time, ms. */
  stepMs: number;
  /** Crop voxels trained per second. */
  voxelsPerS: number;
  /** 3 × forward FLOPs / step time. */
  effectiveGflops: number;
  /** Peak resident set size of the process so far, MiB. */
  peakRssMiB: number;
  /** Peak tfjs tensor memory during one step, MiB (tf.profile). */
  peakTensorMiB: number;
  /** Steps timed after warm-up. */
  timedSteps: number;
}

export interface StepBenchOptions {
  batch?: number;
  /** Timed steps (median); default 3. */
  steps?: number;
  /** Untimed warm-up steps; default 1. */
  warmup?: number;
  /** Also return the per-kernel time breakdown of one step (tf.profile). */
  profile?: boolean;
}

export interface KernelTime {
  kernel: string;
  calls: number;
  ms: number;
}

export interface TrainingTimes {
  /** Median wall time of a training step, ms. */
  stepMs: number;
  /** Median process CPU time of a step, ms (close to the wall time on a quiet machine). */
  stepCpuMs: number;
  /** Median inference forward time, ms. */
  forwardMs: number;
  /** Peak tfjs tensor memory during one step, MiB (tf.profile). */
  peakTensorMiB: number;
  kernels?: KernelTime[];
}

/**
 * Times training steps of any segmentation model on random data: forward (all deep-supervision outputs), Dice+CE,
 * backward, clip 12, AdamW. Disposes nothing of the model; the caller owns it.
 */
export async function timeTrainingSteps(
  model: SegmentationModel,
  ops: Ops,
  data: { cropSize: number[]; inChannels: number; numClasses: number },
  o: { batch: number; steps: number; warmup: number; profile?: boolean },
): Promise<TrainingTimes> {
  const vars = model.trainableVariables();
  const opt = new Optimizer(vars, { kind: "adamw", beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
  const [D, H, W] = data.cropSize;
  const x = tf.randomNormal([o.batch, D, H, W, data.inChannels], 0, 1, "float32", 3) as tf.Tensor5D;
  const y = tf.tidy(() => tf.floor(tf.randomUniform([o.batch, D, H, W], 0, data.numClasses, "float32", 4)).toInt());
  // reads are `await data()`, the one read every backend has (webgpu cannot read synchronously)
  const trainStep = async (i: number) => {
    const rng = makeRng(seedFrom("bench", i));
    const { value, grads } = tf.variableGrads(() => {
      const out = model.forward(x, { ops, training: true, rng });
      return deepSupervisionLoss(Array.isArray(out) ? out : [out], [y], { batchDice: true });
    }, vars);
    await value.data();
    value.dispose();
    const clipped = await clipByGlobalNorm(grads, 12);
    opt.apply(clipped.grads, 1e-4);
    tf.dispose(Object.values(clipped.grads));
  };
  const forward = async () => {
    const first = tf.tidy(() => {
      const out = model.forward(x, { ops, training: false });
      return Array.isArray(out) ? out[0] : out;
    });
    await first.data();
    first.dispose();
  };
  try {
    for (let i = 0; i < o.warmup; i++) await trainStep(-1 - i);
    const stepTimes: number[] = [],
      cpuTimes: number[] = [];
    for (let i = 0; i < o.steps; i++) {
      const t = performance.now(),
        c = process.cpuUsage();
      await trainStep(i);
      stepTimes.push(performance.now() - t);
      const dc = process.cpuUsage(c);
      cpuTimes.push((dc.user + dc.system) / 1000);
    }
    await forward();
    const fwdTimes: number[] = [];
    for (let i = 0; i < Math.max(1, Math.min(o.steps, 3)); i++) {
      const t = performance.now();
      await forward();
      fwdTimes.push(performance.now() - t);
    }
    const info = await tf.profile(() => trainStep(1000));
    let kernels: KernelTime[] | undefined;
    if (o.profile) {
      const byName = new Map<string, KernelTime>();
      for (const k of info.kernels) {
        const ms = Number(await (k as { kernelTimeMs: number | Promise<number> }).kernelTimeMs) || 0;
        const e = byName.get(k.name) ?? { kernel: k.name, calls: 0, ms: 0 };
        e.calls++;
        e.ms += ms;
        byName.set(k.name, e);
      }
      kernels = [...byName.values()].sort((a, b) => b.ms - a.ms);
    }
    return {
      stepMs: lowerMedian(stepTimes),
      stepCpuMs: lowerMedian(cpuTimes),
      forwardMs: lowerMedian(fwdTimes),
      peakTensorMiB: info.peakBytes / 2 ** 20,
      kernels,
    };
  } finally {
    opt.dispose();
    tf.dispose([x, y]);
  }
}

/** Times `steps` training steps of nnFormer `config` with `ops`. */
export async function benchNnFormerStep(
  preset: string,
  config: NnFormerConfig,
  ops: Ops,
  options: StepBenchOptions = {},
): Promise<{ row: StepBenchRow; kernels?: KernelTime[] }> {
  const batch = options.batch ?? 1;
  const steps = options.steps ?? 3;
  const model = new NnFormerSegmentation(preset, new NnFormer(config, { seed: 1 }));
  try {
    const t = await timeTrainingSteps(model, ops, config, {
      batch,
      steps,
      warmup: options.warmup ?? 1,
      profile: options.profile,
    });
    const [D, H, W] = config.cropSize;
    const macs = nnFormerForwardMacs(config).total * batch;
    const row: StepBenchRow = {
      preset,
      ops: ops.name,
      backend: tf.getBackend(),
      batch,
      crop: config.cropSize.join("x"),
      params: model.numParams(),
      forwardGflop: (2 * macs) / 1e9,
      forwardMs: t.forwardMs,
      stepMs: t.stepMs,
      voxelsPerS: (batch * D * H * W) / (t.stepMs / 1000),
      effectiveGflops: (3 * 2 * macs) / 1e9 / (t.stepMs / 1000),
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      peakTensorMiB: t.peakTensorMiB,
      timedSteps: steps,
    };
    return { row, kernels: t.kernels };
  } finally {
    model.dispose();
  }
}
