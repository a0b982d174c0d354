// Training-step benchmark for any registered SegmentationModel (nnFormer or a Table II baseline): forward, Dice+CE
// (deep supervision where the model returns several outputs), backward, clipping, AdamW, exactly as fit() trains it.
// Reports step and forward time, parameters and memory. Not a test: nothing here asserts a time.
// The nnFormer-specific benchmark with FLOP counts stays in step_bench.ts.
import * as tf from "@tensorflow/tfjs";
import { buildModel, type BuildOptions } from "../registry";
import type { Ops } from "../layers/ops";
import { timeTrainingSteps, type KernelTime, type StepBenchOptions } from "./step_bench";
import { alignedTable, fixed, setupCells } from "./table";

export interface ModelStepRow {
  model: string;
  ops: string;
  backend: string;
  batch: number;
  crop: string;
  params: number;
  /** Median forward time (inference), ms. */
  forwardMs: number;
  /** Median training-step time, ms. */
  stepMs: number;
  /**
   * Median CPU time (user + system) of this process per step, ms. Single-threaded wasm: close to what the step takes
   * on a quiet machine even when other processes share the cores (wall time then counts their time too).
   */
  stepCpuMs: number;
  /** Crop voxels trained per second. */
  voxelsPerS: number;
  /** Peak tfjs tensor memory during one step, MiB (tf.profile). */
  peakTensorMiB: number;
  /** Peak resident set size of the process so far, MiB. */
  peakRssMiB: number;
  /** Steps timed after warm-up. */
  timedSteps: number;
}

export interface ModelBenchOptions extends StepBenchOptions {
  /** Batch size; default 2 (the study's). */
  batch?: number;
  /** Preset fields to override (the registry's `overrides`). */
  overrides?: object;
}

/** Times training steps of the registered model `name` built with `buildOpts`, running `ops`. */
export async function benchModelStep(
  name: string,
  buildOpts: BuildOptions,
  ops: Ops,
  options: ModelBenchOptions = {},
): Promise<{ row: ModelStepRow; kernels?: KernelTime[] }> {
  const batch = options.batch ?? 2;
  const steps = options.steps ?? 3;
  const model = buildModel(name, buildOpts, options.overrides);
  try {
    const t = await timeTrainingSteps(model, ops, buildOpts, {
      batch,
      steps,
      warmup: options.warmup ?? 1,
      profile: options.profile,
    });
    const [D, H, W] = buildOpts.cropSize;
    const row: ModelStepRow = {
      model: name,
      ops: ops.name,
      backend: tf.getBackend(),
      batch,
      crop: buildOpts.cropSize.join("x"),
      params: model.numParams(),
      forwardMs: t.forwardMs,
      stepMs: t.stepMs,
      stepCpuMs: t.stepCpuMs,
      voxelsPerS: (batch * D * H * W) / (t.stepMs / 1000),
      peakTensorMiB: t.peakTensorMiB,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      timedSteps: steps,
    };
    return { row, kernels: t.kernels };
  } finally {
    model.dispose();
  }
}

/** The per-model step table as aligned text. */
export function formatModelStepTable(rows: ModelStepRow[]): string {
  const head = [
    "model",
    "ops",
    "backend",
    "batch",
    "crop",
    "params",
    "fwd ms",
    "step ms",
    "step CPU ms",
    "vox/s",
    "peak RSS MiB",
    "peak tensors MiB",
  ];
  const body = rows.map((r) => [
    r.model,
    ...setupCells(r),
    fixed(r.forwardMs, 0),
    fixed(r.stepMs, 0),
    fixed(r.stepCpuMs, 0),
    Math.round(r.voxelsPerS).toLocaleString("en-US"),
    fixed(r.peakRssMiB, 0),
    fixed(r.peakTensorMiB, 0),
  ]);
  return alignedTable(head, body, true).join("\n");
}
