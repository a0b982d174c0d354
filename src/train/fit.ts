// fit: the one visible training loop, shared by segmentation fine-tuning and MAE pretraining.
// Per step: set the learning rate, forward + loss, gradients, clip, apply, log. Every `evalEvery` steps: evaluate and
// save checkpoints. What differs between tasks (the loss, the batches, what "better" means) comes in through `TrainTask`.
import * as tf from "@tensorflow/tfjs";
import { Optimizer, OptimizerConfig, ParamGroupRule, clipByGlobalNorm, defaultRule } from "./optim";
import { Schedule, learningRate } from "./schedule";
import { makeRng, seedFrom, Rng } from "../runtime/random";

export interface TrainConfig {
  /** Total optimizer steps (the schedule spans these). */
  maxSteps: number;
  optimizer: OptimizerConfig;
  schedule: Schedule;
  /** Global gradient-norm clip (12 in nnU-Net, 1 in MAE); 0 disables. */
  clipNorm: number;
  /** Evaluate (and checkpoint) every N steps; 0 = only at the end. */
  evalEvery: number;
  /** Seed of the per-step random streams (batches, augmentation, drop path). */
  seed: number;
}

/** What one step reports to callbacks. */
export interface StepRecord {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  ms: number;
  /** Present on evaluation steps. */
  eval?: Record<string, number>;
}

/** A task that fit can train: variables, a loss on a sampled batch, and optional evaluation / checkpoints. */
export interface TrainTask {
  /** Variables to train. */
  variables(): tf.Variable[];
  /** Learning-rate multiplier and weight-decay flag per variable (layer-wise decay); default: no decay on 1-D tensors. */
  paramRule?(v: tf.Variable): ParamGroupRule;
  /**
   * Builds the step's loss. Called inside tf.variableGrads, so every tensor it makes is freed afterwards;
   * draw all randomness from `rng` (a stream unique to this step, so a resumed run repeats the same batches).
   */
  loss(step: number, rng: Rng): tf.Scalar;
  /**
   * Optional: the step's loss and gradients computed by the task itself (data parallelism over worker threads);
   * default tf.variableGrads(() => loss(step, rng), variables()).
   */
  gradients?(step: number, rng: Rng): { value: tf.Scalar; grads: tf.NamedTensorMap };
  /** Scores the model (e.g. validation Dice). `metric` is what "best" means (higher is better). */
  evaluate?(step: number): Promise<{ metric: number; [k: string]: number }>;
  /** Saves the model and optimizer state under a tag ("latest", "best"); must write atomically. */
  save?(tag: "latest" | "best", state: FitState, optimizer: Optimizer): Promise<void>;
}

/** Where a run stands; saved with checkpoints so that resume continues the same schedule. */
export interface FitState {
  /** Steps completed. */
  step: number;
  bestMetric: number | null;
  bestStep: number | null;
}

export interface FitOptions {
  /** Called after every step; return false to stop the run early. */
  onStep?: (r: StepRecord) => boolean | void;
  /** Resume: state and optimizer contents saved by an earlier run (see TrainTask.save). */
  resume?: { state: FitState; optimizer?: Parameters<Optimizer["setState"]>[0] };
  /** Print a progress line with ETA to stderr (default: when stderr is a terminal). */
  progress?: boolean;
  /** Prefix of the progress line. */
  label?: string;
}

export interface FitResult extends FitState {
  records: StepRecord[];
  stoppedEarly: boolean;
  seconds: number;
}

/** Thrown when the loss or gradients become NaN/Inf; the last good checkpoint is left in place. */
export class NonFiniteLossError extends Error {
  constructor(
    readonly step: number,
    readonly value: number,
  ) {
    super(
      `training diverged at step ${step}: loss is ${value}. The weights of this step were not applied and no checkpoint ` +
        `was overwritten; lower the learning rate, or resume from the last "latest"/"best" checkpoint`,
    );
    this.name = "NonFiniteLossError";
  }
}

export function checkTrainConfig(c: TrainConfig): void {
  const bad = (field: string, value: unknown, fix: string) => {
    throw new Error(`train.${field} is ${JSON.stringify(value)}: ${fix}`);
  };
  if (!Number.isInteger(c.maxSteps) || c.maxSteps < 1) bad("maxSteps", c.maxSteps, "use a positive integer");
  if (!Number.isInteger(c.evalEvery) || c.evalEvery < 0)
    bad("evalEvery", c.evalEvery, "use 0 (end only) or a positive integer");
  if (!(c.clipNorm >= 0)) bad("clipNorm", c.clipNorm, "use 0 (off) or a positive norm, e.g. 12");
  if (!Number.isFinite(c.seed)) bad("seed", c.seed, "use an integer seed");
  if (c.schedule.warmupSteps >= c.maxSteps && c.maxSteps > 1)
    bad("schedule.warmupSteps", c.schedule.warmupSteps, `use fewer than maxSteps (${c.maxSteps})`);
}

/** Trains `task` for config.maxSteps (or from a resumed step to the end). */
export async function fit(task: TrainTask, config: TrainConfig, options: FitOptions = {}): Promise<FitResult> {
  checkTrainConfig(config);
  const variables = task.variables();
  const optimizer = new Optimizer(variables, config.optimizer, task.paramRule?.bind(task) ?? defaultRule);
  const state: FitState = options.resume ? { ...options.resume.state } : { step: 0, bestMetric: null, bestStep: null };
  if (options.resume?.optimizer) optimizer.setState(options.resume.optimizer);
  const records: StepRecord[] = [];
  const showProgress = options.progress ?? Boolean(process.stderr.isTTY);
  const t0 = Date.now();
  const startStep = state.step;
  let stoppedEarly = false;
  try {
    while (state.step < config.maxSteps) {
      const step = state.step;
      const ts = performance.now();
      const lr = learningRate(config.schedule, step, config.maxSteps);
      const rng = makeRng(seedFrom("fit", config.seed, step));
      const { value, grads } = task.gradients
        ? task.gradients(step, rng)
        : tf.variableGrads(() => task.loss(step, rng), variables);
      const loss = (await value.data())[0];
      value.dispose();
      if (!Number.isFinite(loss)) {
        tf.dispose(Object.values(grads));
        throw new NonFiniteLossError(step, loss);
      }
      const clipped = await clipByGlobalNorm(grads, config.clipNorm);
      if (!Number.isFinite(clipped.norm)) {
        tf.dispose(Object.values(clipped.grads));
        throw new NonFiniteLossError(step, clipped.norm);
      }
      optimizer.apply(clipped.grads, lr);
      tf.dispose(Object.values(clipped.grads));
      state.step = step + 1;
      const record: StepRecord = { step: state.step, loss, lr, gradNorm: clipped.norm, ms: performance.now() - ts };

      const isEval = (config.evalEvery > 0 && state.step % config.evalEvery === 0) || state.step === config.maxSteps;
      let improved = false;
      if (isEval && task.evaluate) {
        const ev = await task.evaluate(state.step);
        record.eval = ev;
        if (state.bestMetric === null || ev.metric > state.bestMetric) {
          state.bestMetric = ev.metric;
          state.bestStep = state.step;
          improved = true;
        }
      }
      records.push(record);
      if (showProgress)
        progressLine(
          options.label ?? "train",
          record,
          state.step - startStep,
          config.maxSteps - startStep,
          Date.now() - t0,
        );
      // the callback runs before the checkpoints, so what it records (curves) is saved with them; if it throws
      // (an interruption), this step's checkpoints are not written and a resume restarts from the previous ones
      const carryOn = options.onStep?.(record) !== false;
      if (improved) await task.save?.("best", state, optimizer);
      if (isEval || !carryOn) await task.save?.("latest", state, optimizer);
      if (!carryOn) {
        stoppedEarly = true;
        break;
      }
    }
  } finally {
    optimizer.dispose();
    if (showProgress) process.stderr.write("\n");
  }
  return { ...state, records, stoppedEarly, seconds: (Date.now() - t0) / 1000 };
}

function progressLine(label: string, r: StepRecord, done: number, total: number, elapsedMs: number): void {
  const width = 24;
  const filled = Math.round((width * done) / Math.max(1, total));
  const eta = done > 0 ? ((elapsedMs / done) * (total - done)) / 1000 : 0;
  const ev = r.eval
    ? " " +
      Object.entries(r.eval)
        .map(([k, v]) => `${k} ${v.toFixed(3)}`)
        .join(" ")
    : "";
  process.stderr.write(
    `\r${label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${r.step}/${r.step - done + total} loss ${r.loss.toFixed(4)} lr ${r.lr.toExponential(2)}${ev} ETA ${formatSeconds(eta)}   `,
  );
}

/** "1h02m", "3m05s", "12s". */
export function formatSeconds(s: number): string {
  s = Math.round(s);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}
