// `npm run bench`: the kit's speed figures on the current backend, printed as tables and written as JSON.
// Sections: whole nnFormer training steps (fast ops vs the plain-autodiff build, side by side), optionally the per-kernel
// breakdown of one step (tf.profile), and the op microbenchmarks. Every speed claim in the docs comes from here.
import * as path from "path";
import * as os from "os";
import * as tf from "@tensorflow/tfjs";
import { BackendReport, describeBackend } from "../runtime/backend";
import { writeFileAtomic } from "../runtime/files";
import {
  NNFORMER_E12_16X32X32,
  NNFORMER_E24_16X32X32,
  NNFORMER_E24_32X64X64,
  NNFORMER_E48_64X64X64,
  NNFORMER_SYNAPSE,
  NnFormerConfig,
} from "../models/nnformer";
import { Conv3dSpec, Ops } from "../layers/ops";
import { plainOps } from "../layers/plain_ops";
import { fastOps } from "../layers/fast_ops";
import { webgpuOps } from "../layers/webgpu_ops";
import { benchNnFormerStep, KernelTime, StepBenchRow } from "./step_bench";
import { benchConvRoutes, benchOps, formatBench, BenchRow } from "./ops_bench";
import { benchMaeModes, MaeBenchRow } from "./mae_bench";
import { benchModelStep, formatModelStepTable, ModelStepRow } from "./model_bench";
import { alignedTable, fixed, setupCells } from "./table";
import type { Vec3 } from "../runtime/math";

/** The kit's fast ops for the current backend (webgpu has its own attention). */
const kitFastOps = (): Ops => (tf.getBackend() === "webgpu" ? webgpuOps : fastOps);

/** Presets the step benchmark knows. `tiny` is the reference network: Synapse structure, crop 64³, embed 48, 14 classes. */
export const BENCH_PRESETS: Record<string, NnFormerConfig> = {
  tiny: { ...NNFORMER_E48_64X64X64, numClasses: 14 },
  small: NNFORMER_E24_32X64X64,
  micro: NNFORMER_E12_16X32X32,
  /** The demo's network (quick profile): embed 24 on 16x32x32 crops, 9 classes (the phantom's 8 organs + background). */
  quick: { ...NNFORMER_E24_16X32X32, numClasses: 9 },
  /** The official Synapse network (crop 64x128x128, embed 192, 150 M parameters): for GPUs. */
  synapse: NNFORMER_SYNAPSE,
};

/**
 * The plain-autodiff build a user would write first: plain tfjs ops everywhere, and tf.conv3d for convolutions.
 * On wasm tf.conv3d's gradients are wrong (docs/wasm-fast-ops.md §8.1), so this build is for timing only;
 * the kit's correct plain reference (plainOps) uses an im2col convolution on wasm, which runs out of wasm memory at 64³.
 */
export const naivePlainOps: Ops = {
  ...plainOps,
  name: "plain",
  conv3d(x: tf.Tensor5D, w: tf.Tensor5D, b: tf.Tensor1D | null, spec: Conv3dSpec): tf.Tensor5D {
    return tf.tidy(() => {
      const [pd, ph, pw] = spec.padding;
      const xp =
        pd || ph || pw
          ? (tf.pad(x, [
              [0, 0],
              [pd, pd],
              [ph, ph],
              [pw, pw],
              [0, 0],
            ]) as tf.Tensor5D)
          : x;
      const y = tf.conv3d(xp, w, spec.stride, "valid");
      return (b ? tf.add(y, b) : y) as tf.Tensor5D;
    });
  },
};

export interface BenchRunOptions {
  presets: string[];
  /** "fast", "plain" (naive plain-autodiff build) or both. */
  ops: Array<"fast" | "plain">;
  steps: number;
  /** Timed steps for the plain build (it is slow); default 1. */
  plainSteps: number;
  batch: number;
  profile: boolean;
  micro: boolean;
  /** MAE pretraining step per masking mode (sparse, SimMIM, compact) on these nnFormer presets; default none. */
  mae?: Array<"tiny" | "micro">;
  /** Registered models for the per-model step benchmark (fast ops), e.g. the Table II set; default none. */
  models?: string[];
  /** Crop of the per-model benchmark; default [32, 64, 64] (the table2 profile's). */
  modelCrop?: Vec3;
  /** Batch of the per-model benchmark; default 2 (the study's). */
  modelBatch?: number;
  out: string;
  backend: BackendReport;
  log?: (line: string) => void;
}

export interface BenchReport {
  date: string;
  backend: string;
  backendDetail: string;
  node: string;
  cpu: string;
  cores: number;
  steps: StepBenchRow[];
  /** Per-model training steps (registry models, fast ops). */
  models: ModelStepRow[];
  /** MAE pretraining steps per masking mode. */
  mae: MaeBenchRow[];
  kernels: Record<string, KernelTime[]>;
  ops: BenchRow[];
  /** The two fast conv3d routes timed at the merge shapes (with --micro). */
  convRoutes?: { shape: string; zsplitMs: number; gatherMs: number }[];
  errors: string[];
}

/** The step table as aligned text. */
export function formatStepTable(rows: StepBenchRow[]): string {
  const head = [
    "preset",
    "ops",
    "backend",
    "batch",
    "crop",
    "params",
    "fwd GFLOP",
    "fwd ms",
    "step ms",
    "vox/s",
    "eff GFLOP/s",
    "peak RSS MiB",
    "peak tensors MiB",
  ];
  const body = rows.map((r) => [
    r.preset,
    ...setupCells(r),
    fixed(r.forwardGflop, 2),
    fixed(r.forwardMs, 0),
    fixed(r.stepMs, 0),
    Math.round(r.voxelsPerS).toLocaleString("en-US"),
    fixed(r.effectiveGflops, 2),
    fixed(r.peakRssMiB, 0),
    fixed(r.peakTensorMiB, 0),
  ]);
  return alignedTable(head, body).join("\n");
}

/** The MAE table, with each mode's speed-up over sparse masking on the same preset. */
export function formatMaeTable(rows: MaeBenchRow[]): string {
  const sparse = new Map(rows.filter((r) => r.mode === "sparse").map((r) => [r.preset, r.stepMs]));
  const head = ["preset", "mode", "ratio", "crop", "encoder crop", "step ms", "vs sparse"];
  const body = rows.map((r) => [
    r.preset,
    r.mode,
    String(r.ratio),
    r.crop,
    r.encoderCrop,
    r.skipped ? "skipped*" : fixed(r.stepMs, 0),
    r.skipped || !sparse.get(r.preset) ? "-" : `${fixed(sparse.get(r.preset)! / r.stepMs, 2)}x`,
  ]);
  const notes = rows.filter((r) => r.skipped).map((r) => `* ${r.preset} ${r.mode} ${r.ratio}: ${r.skipped}`);
  return [...alignedTable(head, body), ...notes].join("\n");
}

/** Runs the benchmark and writes `<out>` (JSON). */
export async function runBench(o: BenchRunOptions): Promise<BenchReport> {
  const log = o.log ?? ((s: string) => console.log(s));
  const report: BenchReport = {
    date: new Date().toISOString(),
    backend: o.backend.name,
    backendDetail: describeBackend(o.backend),
    node: process.version,
    cpu: os.cpus()[0]?.model ?? "unknown",
    cores: os.cpus().length,
    steps: [],
    models: [],
    mae: [],
    kernels: {},
    ops: [],
    errors: [],
  };
  log(report.backendDetail);
  log(
    `cpu: ${report.cpu} x${report.cores}, node ${report.node}, load average ${os
      .loadavg()
      .map((v) => v.toFixed(2))
      .join(" ")}`,
  );
  for (const preset of o.presets) {
    const config = BENCH_PRESETS[preset];
    if (!config)
      throw new Error(`bench: unknown preset "${preset}"; use one of ${Object.keys(BENCH_PRESETS).join(", ")}`);
    for (const kind of o.ops) {
      const ops = kind === "fast" ? kitFastOps() : naivePlainOps;
      const steps = kind === "fast" ? o.steps : o.plainSteps;
      log(`... ${preset} / ${kind}: ${steps} timed step(s) after 1 warm-up`);
      try {
        const { row, kernels } = await benchNnFormerStep(preset, config, ops, {
          steps,
          warmup: 1,
          batch: o.batch,
          profile: o.profile,
        });
        report.steps.push(row);
        if (kernels) report.kernels[`${preset}/${kind}`] = kernels;
        log(`    step ${fixed(row.stepMs, 0)} ms, ${fixed(row.effectiveGflops, 2)} effective GFLOP/s`);
      } catch (e) {
        const msg = `${preset}/${kind}: ${(e as Error).message.split("\n")[0]}`;
        report.errors.push(msg);
        log(`    failed: ${msg}`);
      }
    }
  }
  const crop = o.modelCrop ?? [32, 64, 64];
  for (const name of o.models ?? []) {
    log(
      `... ${name} / fast: ${o.steps} timed step(s) after 1 warm-up, crop ${crop.join("x")}, batch ${o.modelBatch ?? 2}`,
    );
    try {
      const { row, kernels } = await benchModelStep(
        name,
        { inChannels: 1, numClasses: 14, cropSize: crop, seed: 1 },
        kitFastOps(),
        {
          steps: o.steps,
          warmup: 1,
          batch: o.modelBatch ?? 2,
          profile: o.profile,
        },
      );
      report.models.push(row);
      if (kernels) report.kernels[`${name}/fast`] = kernels;
      log(`    step ${fixed(row.stepMs, 0)} ms (CPU ${fixed(row.stepCpuMs, 0)} ms)`);
    } catch (e) {
      const msg = `${name}: ${(e as Error).message.split("\n")[0]}`;
      report.errors.push(msg);
      log(`    failed: ${msg}`);
    }
  }
  if (report.steps.length) {
    log("\nnnFormer training step (forward with deep supervision, Dice+CE, backward, clip, AdamW); batch " + o.batch);
    log(formatStepTable(report.steps));
  }
  if (report.models.length) {
    log(
      `\ntraining step per model (forward, Dice+CE with deep supervision where the model has it, backward, clip, AdamW), 14 classes; ` +
        `load average ${os
          .loadavg()
          .map((v) => v.toFixed(2))
          .join(" ")} (step CPU ms is the time on a quiet machine)`,
    );
    log(formatModelStepTable(report.models));
  }
  for (const [k, rows] of Object.entries(report.kernels)) {
    const total = rows.reduce((s, r) => s + r.ms, 0);
    log(
      `\nper-kernel time of one step, ${k} (tf.profile; nested kernels of custom gradients are counted inside their scope):`,
    );
    for (const r of rows.slice(0, 20))
      log(
        `  ${r.kernel.padEnd(28)} ${String(r.calls).padStart(6)} calls ${fixed(r.ms, 0).padStart(7)} ms ${fixed((100 * r.ms) / total, 1).padStart(5)} %`,
      );
  }
  if (o.mae?.length) {
    log("\nMAE pretraining step per masking mode (batch 1, AdamW):");
    report.mae = await benchMaeModes({ steps: o.steps, warmup: 1, presets: o.mae });
    log(formatMaeTable(report.mae));
  }
  if (o.micro) {
    log("\nop microbenchmarks (fwd+bwd, fresh inputs each call):");
    report.ops = await benchOps({ reps: 3 });
    log(formatBench(report.ops));
    log("\nfast conv3d routes at the merge shapes (fwd+bwd ms; sets pickConvRoute's size rule):");
    const routes = await benchConvRoutes(3);
    for (const r of routes) log(`  ${r.shape}: zsplit ${r.zsplitMs.toFixed(1)} ms, gather ${r.gatherMs.toFixed(1)} ms`);
    report.convRoutes = routes;
  }
  writeFileAtomic(o.out, JSON.stringify(report, null, 2) + "\n");
  log(`\nwritten ${path.relative(process.cwd(), o.out) || o.out}`);
  return report;
}
