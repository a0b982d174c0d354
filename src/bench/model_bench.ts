// Training-step benchmark for any registered SegmentationModel (nnFormer or a Table II baseline): forward, Dice+CE
// (deep supervision where the model returns several outputs), backward, clipping, AdamW, exactly as fit() trains it.
// Reports step and forward time, parameters and memory. Not a test: nothing here asserts a time.
// The nnFormer-specific benchmark with FLOP counts stays in step_bench.ts.
import * as tf from "@tensorflow/tfjs";
import { buildModel, type BuildOptions } from "../registry";
import type { Ops } from "../layers/ops";
import { deepSupervisionLoss } from "../losses/dice_ce";
import { Optimizer, clipByGlobalNorm } from "../train/optim";
import { makeRng, seedFrom } from "../runtime/random";
import type { KernelTime } from "./step_bench";

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

export interface ModelBenchOptions {
  /** Batch size; default 2 (the study's). */
  batch?: number;
  /** Timed steps (median); default 3. */
  steps?: number;
  /** Untimed warm-up steps; default 1. */
  warmup?: number;
  /** Also return the per-kernel time breakdown of one step (tf.profile). */
  profile?: boolean;
  /** Preset fields to override (the registry's `overrides`). */
  overrides?: object;
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[(a.length - 1) >> 1];

/** Times training steps of the registered model `name` built with `buildOpts`, running `ops`. */
export async function benchModelStep(
  name: string,
  buildOpts: BuildOptions,
  ops: Ops,
  options: ModelBenchOptions = {},
): Promise<{ row: ModelStepRow; kernels?: KernelTime[] }> {
  const batch = options.batch ?? 2;
  const steps = options.steps ?? 3;
  const warmup = options.warmup ?? 1;
  const model = buildModel(name, buildOpts, options.overrides);
  const vars = model.trainableVariables();
  const opt = new Optimizer(vars, { kind: "adamw", beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
  const [D, H, W] = buildOpts.cropSize;
  const x = tf.randomNormal([batch, D, H, W, buildOpts.inChannels], 0, 1, "float32", 3) as tf.Tensor5D;
  const y = tf.tidy(() => tf.floor(tf.randomUniform([batch, D, H, W], 0, buildOpts.numClasses, "float32", 4)).toInt());

  const trainStep = (i: number) => {
    const rng = makeRng(seedFrom("model-bench", i));
    const { value, grads } = tf.variableGrads(() => {
      const out = model.forward(x, { ops, training: true, rng });
      return deepSupervisionLoss(Array.isArray(out) ? out : [out], [y], { batchDice: true });
    }, vars);
    value.dataSync();
    value.dispose();
    const clipped = clipByGlobalNorm(grads, 12);
    opt.apply(clipped.grads, 1e-4);
    tf.dispose(Object.values(clipped.grads));
  };
  const forward = () => {
    tf.tidy(() => {
      const out = model.forward(x, { ops, training: false });
      (Array.isArray(out) ? out[0] : out).dataSync();
    });
  };

  try {
    for (let i = 0; i < warmup; i++) trainStep(-1 - i);
    const stepTimes: number[] = [], cpuTimes: number[] = [];
    for (let i = 0; i < steps; i++) {
      const t = performance.now(), c = process.cpuUsage();
      trainStep(i);
      stepTimes.push(performance.now() - t);
      const dc = process.cpuUsage(c);
      cpuTimes.push((dc.user + dc.system) / 1000);
    }
    forward();
    const fwdTimes: number[] = [];
    for (let i = 0; i < Math.max(1, Math.min(steps, 3)); i++) {
      const t = performance.now();
      forward();
      fwdTimes.push(performance.now() - t);
    }
    const info = await tf.profile(() => trainStep(1000));
    let kernels: KernelTime[] | undefined;
    if (options.profile) {
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
    const stepMs = median(stepTimes);
    const row: ModelStepRow = {
      model: name,
      ops: ops.name,
      backend: tf.getBackend(),
      batch,
      crop: buildOpts.cropSize.join("x"),
      params: model.numParams(),
      forwardMs: median(fwdTimes),
      stepMs,
      stepCpuMs: median(cpuTimes),
      voxelsPerS: (batch * D * H * W) / (stepMs / 1000),
      peakTensorMiB: info.peakBytes / 2 ** 20,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      timedSteps: steps,
    };
    return { row, kernels };
  } finally {
    opt.dispose();
    model.dispose();
    tf.dispose([x, y]);
  }
}

const fixed = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : "-");

/** The per-model step table as aligned text. */
export function formatModelStepTable(rows: ModelStepRow[]): string {
  const head = ["model", "ops", "backend", "batch", "crop", "params", "fwd ms", "step ms", "step CPU ms", "vox/s", "peak RSS MiB", "peak tensors MiB"];
  const body = rows.map((r) => [
    r.model, r.ops, r.backend, String(r.batch), r.crop, r.params.toLocaleString("en-US"), fixed(r.forwardMs, 0),
    fixed(r.stepMs, 0), fixed(r.stepCpuMs, 0), Math.round(r.voxelsPerS).toLocaleString("en-US"), fixed(r.peakRssMiB, 0), fixed(r.peakTensorMiB, 0),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(head), ...body.map(line)].join("\n");
}
