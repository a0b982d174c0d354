// Both cores inside one training run, measured side by side: the nnFormer training step (forward with deep supervision,
// Dice+CE, backward, clip 12, AdamW) with
//   - threads: the threaded wasm build (XNNPACK kernels on T threads; runtime/threads.ts), set per process;
//   - workers: data parallelism over W worker threads (train/data_parallel.ts), batch split in W shards;
// and, for every setting, how much of the step is spent inside kernels versus around them (op dispatch, the autodiff
// tape, JS glue, tensor allocation). Thread counts need a fresh process each, so a sweep runs every point as a child
// process (this module is its entry) and collects the rows. Not a test: nothing here asserts a time.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { NnFormer, NnFormerConfig, NNFORMER_E24_16X32X32 } from "../models/nnformer";
import { nnFormerForwardMacs } from "../models/nnformer_flops";
import { NnFormerSegmentation } from "../models/nnformer_segmentation";
import { fastOps } from "../layers/fast_ops";
import { deepSupervisionLoss } from "../losses/dice_ce";
import { Optimizer, clipByGlobalNorm } from "../train/optim";
import { DataParallelGroup } from "../train/data_parallel";
import { makeRng, seedFrom } from "../runtime/random";
import { initBackend } from "../runtime/backend";
import { prepareWasmThreads, backendFlags, wasmThreadsInUse } from "../runtime/threads";
import { writeFileAtomic } from "../runtime/files";
import { lowerMedian } from "../runtime/math";
import { runChild } from "../study/pool";
import { BENCH_PRESETS } from "./run";

/** The step of the reference network before this work: 2.02 s per sample (batch 1, wasm, one thread). */
export const REFERENCE_BASELINE_MS = 2020;
/** PyTorch 1.13 (CPU, OpenBLAS, 2 threads) on the same machine and network: 0.62 s. */
export const PYTORCH_2T_MS = 620;

/** Presets of this benchmark: the step benchmark's, plus the quick study's network. */
export const PARALLEL_PRESETS: Record<string, NnFormerConfig> = {
  ...BENCH_PRESETS,
  quick: { ...NNFORMER_E24_16X32X32, numClasses: 9 },
};

export interface ParallelPoint {
  preset: string;
  batch: number;
  /** wasm threads of each process (XNNPACK). */
  threads: number;
  /** Data-parallel shards (1 = the plain single-thread step). */
  workers: number;
  steps: number;
}

export interface ParallelRow extends ParallelPoint {
  backend: string;
  flags: Record<string, unknown>;
  crop: string;
  /** Median training-step time, ms. */
  stepMs: number;
  msPerSample: number;
  /** Baseline ms per sample / ms per sample (the reference preset only). */
  vsBaseline: number;
  vsPytorch: number;
  effectiveGflops: number;
  /** Share of the main thread's step time spent inside kernels; the rest is dispatch and glue. */
  kernelShare: number;
  kernelCalls: number;
  /** Peak RSS of the process (its worker threads included), MiB. */
  peakRssMiB: number;
  loadAverage: number[];
  error?: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Kernel time

interface KernelClock {
  ms: number;
  calls: number;
}

const clock: KernelClock = { ms: 0, calls: 0 };
let clockInstalled = false;

/**
 * Wraps every kernel of the active backend with a timer (kernels run synchronously on wasm and cpu, so the time
 * between entry and return is the kernel's). Kernels that run other kernels through the engine would count twice;
 * the wasm kernels call their helpers directly, so they do not.
 */
function installKernelClock(): void {
  if (clockInstalled) return;
  clockInstalled = true;
  const backend = tf.getBackend();
  for (const k of tf.getKernelsForBackend(backend)) {
    const inner = k.kernelFunc;
    tf.unregisterKernel(k.kernelName, backend);
    tf.registerKernel({
      ...k,
      kernelFunc: (args) => {
        const t = performance.now();
        try {
          return inner(args);
        } finally {
          clock.ms += performance.now() - t;
          clock.calls++;
        }
      },
    });
  }
}

/** Times one point in this process (threads must already be set up). */
export async function benchParallelPoint(p: ParallelPoint): Promise<ParallelRow> {
  const base = PARALLEL_PRESETS[p.preset];
  if (!base) throw new Error(`unknown preset "${p.preset}"; use one of ${Object.keys(PARALLEL_PRESETS).join(", ")}`);
  const config = base;
  const [D, H, W] = config.cropSize;
  const x = tf.randomNormal([p.batch, D, H, W, config.inChannels], 0, 1, "float32", 3) as tf.Tensor5D;
  const y = tf.tidy(() => tf.floor(tf.randomUniform([p.batch, D, H, W], 0, config.numClasses, "float32", 4)).toInt());
  let group: DataParallelGroup | null = null;
  let model: NnFormerSegmentation | null = null;
  let vars: tf.Variable[];
  let grads: (i: number) => Record<string, tf.Tensor>;
  if (p.workers > 1) {
    group = await DataParallelGroup.create({
      world: p.workers,
      replica: { kind: "nnformer", config, seed: 1, ops: "fast", batchDice: true },
      xShape: x.shape,
      yShape: y.shape,
    });
    vars = group.replica.variables;
    grads = () => group!.gradients(x, y).grads;
  } else {
    model = new NnFormerSegmentation(p.preset, new NnFormer(config, { seed: 1 }));
    const m = model;
    vars = m.trainableVariables();
    grads = (i) => {
      const rng = makeRng(seedFrom("bench", i));
      const r = tf.variableGrads(() => {
        const out = m.forward(x, { ops: fastOps, training: true, rng });
        return deepSupervisionLoss(Array.isArray(out) ? out : [out], [y], { batchDice: true });
      }, vars);
      r.value.dataSync();
      r.value.dispose();
      return r.grads;
    };
  }
  const opt = new Optimizer(vars, { kind: "adamw", beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
  const step = async (i: number) => {
    const g = grads(i);
    const clipped = await clipByGlobalNorm(g, 12);
    opt.apply(clipped.grads, 1e-4);
    tf.dispose(Object.values(clipped.grads));
    tf.dispose(Object.values(g));
  };
  try {
    installKernelClock();
    await step(-1); // warm-up: kernels' first calls, XNNPACK operator set-up, workers' first step
    const times: number[] = [],
      shares: number[] = [];
    let calls = 0;
    for (let i = 0; i < p.steps; i++) {
      const k0 = clock.ms,
        c0 = clock.calls;
      const t = performance.now();
      await step(i);
      const ms = performance.now() - t;
      times.push(ms);
      shares.push((clock.ms - k0) / ms);
      calls = clock.calls - c0;
    }
    const stepMs = lowerMedian(times);
    const macs = nnFormerForwardMacs(config).total * p.batch;
    const perSample = stepMs / p.batch;
    const reference = p.preset === "tiny";
    return {
      ...p,
      threads: wasmThreadsInUse(),
      backend: tf.getBackend(),
      flags: backendFlags(),
      crop: config.cropSize.join("x"),
      stepMs,
      msPerSample: perSample,
      vsBaseline: reference ? REFERENCE_BASELINE_MS / perSample : NaN,
      vsPytorch: reference ? perSample / PYTORCH_2T_MS : NaN,
      effectiveGflops: (3 * 2 * macs) / 1e9 / (stepMs / 1000),
      kernelShare: lowerMedian(shares),
      kernelCalls: calls,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      loadAverage: os.loadavg(),
    };
  } finally {
    opt.dispose();
    if (group) await group.close();
    model?.dispose();
    tf.dispose([x, y]);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Sweeps: one child process per point

export interface SweepOptions {
  presets: string[];
  batches: number[];
  threads: number[];
  workers: number[];
  steps: number;
  /** Folder for the points' JSON and logs. */
  dir: string;
  log?: (line: string) => void;
}

/** Every combination of the sweep (workers must divide the batch; others are left out), each in its own process. */
export async function runParallelSweep(o: SweepOptions): Promise<ParallelRow[]> {
  const log = o.log ?? ((s: string) => console.log(s));
  const rows: ParallelRow[] = [];
  const self = path.join(__dirname, `parallel_bench${path.extname(__filename)}`);
  for (const preset of o.presets)
    for (const batch of o.batches)
      for (const threads of o.threads)
        for (const workers of o.workers) {
          if (batch % workers !== 0) continue;
          const point: ParallelPoint = { preset, batch, threads, workers, steps: o.steps };
          const tag = `${preset}-b${batch}-t${threads}-w${workers}`;
          const file = path.join(o.dir, `${tag}.json`);
          log(`... ${preset}, batch ${batch}, ${threads} thread(s), ${workers} worker(s): ${o.steps} timed step(s)`);
          try {
            await runChild({
              module: self,
              args: [JSON.stringify(point), file],
              logFile: path.join(o.dir, `${tag}.log`),
            }).done;
            const row = JSON.parse(fs.readFileSync(file, "utf8")) as ParallelRow;
            rows.push(row);
            log(`    ${row.stepMs.toFixed(0)} ms per step, ${row.msPerSample.toFixed(0)} ms per sample`);
          } catch (e) {
            const error = (e as Error).message.split("\n").slice(0, 6).join(" | ");
            log(`    failed: ${error}`);
            rows.push({ ...point, error } as ParallelRow);
          }
        }
  return rows;
}

const fx = (v: number, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : "-");

/** The sweep as an aligned table. */
export function formatParallelTable(rows: ParallelRow[]): string {
  const head = [
    "preset",
    "crop",
    "batch",
    "threads",
    "workers",
    "step ms",
    "ms/sample",
    "vs 2.02 s",
    "vs PyTorch",
    "eff GFLOP/s",
    "kernels",
    "dispatch",
    "peak RSS MiB",
  ];
  const body = rows.map((r) =>
    r.error
      ? [r.preset, "-", String(r.batch), String(r.threads), String(r.workers), `failed: ${r.error.slice(0, 60)}`]
      : [
          r.preset,
          r.crop,
          String(r.batch),
          String(r.threads),
          String(r.workers),
          fx(r.stepMs),
          fx(r.msPerSample),
          Number.isFinite(r.vsBaseline) ? `${fx(r.vsBaseline, 2)}x` : "-",
          Number.isFinite(r.vsPytorch) ? `${fx(r.vsPytorch, 2)}x` : "-",
          fx(r.effectiveGflops, 1),
          `${fx(100 * r.kernelShare)} %`,
          `${fx(100 * (1 - r.kernelShare))} %`,
          fx(r.peakRssMiB),
        ],
  );
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join("  ");
  return [line(head), ...body.map(line)].join("\n");
}

/** A child process of the sweep: `parallel_bench.ts '<point JSON>' <out.json>`. */
async function childMain(): Promise<void> {
  const point = JSON.parse(process.argv[2]) as ParallelPoint;
  const out = process.argv[3];
  const restore = point.threads > 1 ? prepareWasmThreads(point.threads) : () => {};
  process.env.MAE_NNFORMER_BACKEND ??= "wasm";
  await initBackend();
  restore();
  const row = await benchParallelPoint(point);
  writeFileAtomic(out, JSON.stringify(row) + "\n");
}

if (require.main === module) {
  childMain().catch((e) => {
    console.error(e instanceof Error ? e.stack : e);
    process.exit(1);
  });
}
