// Benchmark of MAE pretraining steps per masking mode: forward + masked MSE, backward, clip, AdamW. Compact mode
// feeds only the kept units (a crop of half the voxels at r 0.75, an eighth at 0.875), so it should be clearly faster
// than sparse, which runs the dense encoder on the zero-filled crop. Not a test: nothing here asserts a time.
import * as tf from "@tensorflow/tfjs";
import type { Ops } from "../layers/ops";
import { selectOps } from "../layers/fast_ops";
import { NNFORMER_E12_16X32X32, NNFORMER_E48_64X64X64, type NnFormerConfig } from "../models/nnformer";
import { MaeNnFormer } from "../mae/mae3d";
import type { MaskMode } from "../mae/masking";
import { ADAMW_MAE, Optimizer, clipByGlobalNorm, defaultRule } from "../train/optim";
import { makeRng, normal, seedFrom } from "../runtime/random";
import { lowerMedian } from "../runtime/math";

export interface MaeBenchRow {
  preset: string;
  mode: MaskMode;
  ratio: number;
  backend: string;
  batch: number;
  crop: string;
  /** Crop the encoder actually runs on (compact: the packed crop). */
  encoderCrop: string;
  /** Median training-step time, ms (NaN with `skipped`). */
  stepMs: number;
  /** Steps timed after warm-up. */
  timedSteps: number;
  /** Why the mode cannot run on this preset (e.g. compact crop too small). */
  skipped?: string;
}

/** Times `steps` MAE pretraining steps of `config` in `mode` (median, after `warmup` untimed steps). */
export async function benchMaeStep(
  config: NnFormerConfig,
  mode: MaskMode,
  options: { steps?: number; warmup?: number; ratio?: number; batch?: number; preset?: string; ops?: Ops } = {},
): Promise<MaeBenchRow> {
  const steps = options.steps ?? 3,
    warmup = options.warmup ?? 1,
    batch = options.batch ?? 1;
  const ratio = options.ratio ?? (mode === "simmim" ? 0.6 : 0.75);
  const ops = options.ops ?? selectOps(tf.getBackend());
  const row: MaeBenchRow = {
    preset: options.preset ?? "custom",
    mode,
    ratio,
    backend: tf.getBackend(),
    batch,
    crop: config.cropSize.join("x"),
    encoderCrop: config.cropSize.join("x"),
    stepMs: NaN,
    timedSteps: 0,
  };
  let mae: MaeNnFormer;
  try {
    mae = new MaeNnFormer({ ...config, dropPathRate: 0 }, { mask: { mode, ratio } });
  } catch (e) {
    return { ...row, skipped: (e as Error).message.split("\n")[0] };
  }
  if (mae.compactEncoder) row.encoderCrop = mae.compactEncoder.config.cropSize.join("x");
  const vars = mae.trainableVariables();
  const opt = new Optimizer(vars, ADAMW_MAE, defaultRule);
  const n = batch * config.cropSize.reduce((a, b) => a * b, 1) * config.inChannels;
  const rng = makeRng(seedFrom("mae-bench", mode));
  const x = Float32Array.from({ length: n }, () => normal(rng));
  const times: number[] = [];
  try {
    for (let i = 0; i < warmup + steps; i++) {
      const t0 = performance.now();
      const mask = mae.drawMask(rng, batch);
      const { value, grads } = tf.variableGrads(() => mae.loss({ x, mask }, ops), vars);
      await value.data();
      value.dispose();
      const clipped = await clipByGlobalNorm(grads, 1);
      opt.apply(clipped.grads, 1e-4);
      tf.dispose(Object.values(clipped.grads));
      if (i >= warmup) times.push(performance.now() - t0);
    }
  } finally {
    opt.dispose();
    mae.dispose();
  }
  return { ...row, stepMs: lowerMedian(times), timedSteps: times.length };
}

/** Every masking mode on the tiny preset (and micro): one row each; compact at r 0.75 and 0.875. */
export async function benchMaeModes(
  options: { steps?: number; warmup?: number; presets?: Array<"tiny" | "micro"> } = {},
): Promise<MaeBenchRow[]> {
  const presets: Record<string, NnFormerConfig> = { tiny: NNFORMER_E48_64X64X64, micro: NNFORMER_E12_16X32X32 };
  const rows: MaeBenchRow[] = [];
  for (const preset of options.presets ?? ["tiny", "micro"]) {
    const cases: Array<[MaskMode, number]> = [
      ["sparse", 0.75],
      ["simmim", 0.6],
      ["compact", 0.75],
      ["compact", 0.875],
    ];
    for (const [mode, ratio] of cases) {
      rows.push(await benchMaeStep(presets[preset], mode, { ...options, ratio, preset }));
    }
  }
  return rows;
}
