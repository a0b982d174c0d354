// Data parallelism over worker threads: one training step on a batch of B samples computed by W shards (this thread
// and W-1 workers), each with its own wasm instance, its own copy of the model and B/W of the batch. The workers get
// the current weights and their samples through shared memory, write their gradients back there, and this thread sums
// the W gradients (shard 0 first, then 1, 2, ...) for one optimizer step. The result equals the single-process step up
// to float summation order (test/parallel/data_parallel.test.ts).
//
// The loss must be split exactly, and Dice pooled over the batch (nnU-Net batch_dice) does not split into a sum over
// samples: shardedDiceCe exchanges the Dice statistics (per-class intersections and sums, and the voxel count) between
// the shards inside the loss, so each shard's gradient is the full loss's gradient with respect to its own logits.
//
// Costs per step: copying the weights to every worker and the gradients back (4 bytes per parameter each way), one
// barrier per loss term, and the optimizer on this thread alone.
import * as path from "path";
import { Worker } from "worker_threads";
import * as tf from "@tensorflow/tfjs";
import { cachedConstant, customOp, r2, transpose2d } from "../layers/fast/common";
import { targetOneHot, deepSupervisionLoss, DiceCeOptions } from "../losses/dice_ce";
import { NnFormer, NnFormerConfig } from "../models/nnformer";
import { NnFormerSegmentation } from "../models/nnformer_segmentation";
import type { SegmentationModel } from "../models/types";
import { modelEntry } from "../registry";
import type { TrainTask } from "./fit";
import type { SegmentationTask } from "./segmentation";
import { fastOps } from "../layers/fast_ops";
import { plainOps } from "../layers/plain_ops";
import { makeRng, seedFrom } from "../runtime/random";

// ---------------------------------------------------------------------------------------------------------------
// Shared memory and the barrier

/** Longest statistics vector one loss term exchanges: voxels, groups and 3 sums per class (up to 256 classes). */
const MAX_STATS = 2 + 3 * 256;
const CTRL = { gen: 0, done: 1, arrived: 2, failed: 3, ready: 4, step: 5 } as const;
const ERROR_BYTES = 4096;

/** The buffers every shard sees. */
export interface SharedBuffers {
  ctrl: SharedArrayBuffer;
  params: SharedArrayBuffer;
  grads: SharedArrayBuffer;
  x: SharedArrayBuffer;
  y: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  losses: SharedArrayBuffer;
  error: SharedArrayBuffer;
}

function allocate(world: number, numParams: number, xPerShard: number, yPerShard: number): SharedBuffers {
  const others = world - 1;
  return {
    ctrl: new SharedArrayBuffer(8 * 4),
    params: new SharedArrayBuffer(4 * numParams),
    grads: new SharedArrayBuffer(4 * numParams * others),
    x: new SharedArrayBuffer(4 * xPerShard * others),
    y: new SharedArrayBuffer(4 * yPerShard * others),
    stats: new SharedArrayBuffer(8 * 2 * world * MAX_STATS),
    losses: new SharedArrayBuffer(8 * world),
    error: new SharedArrayBuffer(ERROR_BYTES),
  };
}

/** One shard's view of the group: its rank, the world size, and the exchange of loss statistics. */
export class ShardChannel {
  private readonly ctrl: Int32Array;
  private readonly stats: Float64Array;
  private exchanges = 0;

  constructor(
    readonly rank: number,
    readonly world: number,
    private readonly buffers: SharedBuffers,
  ) {
    this.ctrl = new Int32Array(buffers.ctrl);
    this.stats = new Float64Array(buffers.stats);
  }

  /**
   * Sums `local` over the shards (every shard calls this the same number of times, in the same order) and returns
   * the sum, identical on every shard: the terms are added in rank order. Blocks until all shards have arrived.
   */
  allReduce(local: Float64Array): Float64Array {
    if (local.length > MAX_STATS) throw new Error(`allReduce: ${local.length} values, at most ${MAX_STATS}`);
    const ex = this.exchanges++;
    const slot = ex % 2; // a shard can run one exchange ahead of the slowest; alternate slots so it never overwrites
    const base = slot * this.world * MAX_STATS;
    this.stats.set(local, base + this.rank * MAX_STATS);
    const arrived = Atomics.add(this.ctrl, CTRL.arrived, 1) + 1;
    const target = (ex + 1) * this.world;
    if (arrived === target) Atomics.notify(this.ctrl, CTRL.arrived);
    else waitUntil(this.ctrl, CTRL.arrived, (v) => v >= target, this.buffers);
    const sum = new Float64Array(local.length);
    for (let r = 0; r < this.world; r++) {
      const off = base + r * MAX_STATS;
      for (let i = 0; i < local.length; i++) sum[i] += this.stats[off + i];
    }
    return sum;
  }
}

/** Waits on ctrl[i] until ok(value); throws the failing worker's message when a shard reports a failure. */
function waitUntil(ctrl: Int32Array, i: number, ok: (v: number) => boolean, buffers: SharedBuffers): void {
  for (;;) {
    const v = Atomics.load(ctrl, i);
    if (ok(v)) return;
    if (Atomics.load(ctrl, CTRL.failed)) throw new Error(`data-parallel worker failed: ${readError(buffers)}`);
    Atomics.wait(ctrl, i, v, 1000);
  }
}

function readError(b: SharedBuffers): string {
  const bytes = new Uint8Array(b.error);
  const end = bytes.indexOf(0);
  return Buffer.from(bytes.slice(0, end < 0 ? bytes.length : end)).toString("utf8") || "(no message)";
}

function reportError(b: SharedBuffers, e: unknown): void {
  const text = Buffer.from(String((e as Error)?.stack ?? e).slice(0, ERROR_BYTES - 1), "utf8");
  new Uint8Array(b.error).set(text.subarray(0, ERROR_BYTES - 1));
  const ctrl = new Int32Array(b.ctrl);
  Atomics.store(ctrl, CTRL.failed, 1);
  for (const i of [CTRL.gen, CTRL.done, CTRL.arrived, CTRL.ready]) Atomics.notify(ctrl, i);
}

// ---------------------------------------------------------------------------------------------------------------
// The loss, split over shards

const DEN_EPS = 1e-8; // as in losses/dice_ce.ts (nnU-Net v1)
const MIN_PROB = 1e-38;

/**
 * CE + (1 − soft Dice) of the whole batch, computed on this shard's part of it (the same loss and gradient as
 * diceCeLoss on the full batch). With batchDice the Dice sums are pooled over all shards; without it each sample's
 * Dice stays local and only the counts are shared. The returned value is this shard's share: the shares add up to the
 * full loss. The gradient with respect to this shard's logits is the full loss's.
 */
export function shardedDiceCe(channel: ShardChannel) {
  return (logits: tf.Tensor, target: tf.Tensor, opts: DiceCeOptions): tf.Scalar =>
    tf.tidy(() => {
      const K = logits.shape[logits.rank - 1];
      const P = logits.size / K;
      const G = opts.batchDice ? 1 : logits.rank === 5 ? logits.shape[0] : 1;
      const first = (opts.excludeBackground ?? true) ? 1 : 0;
      const smooth = opts.smooth ?? 1e-5;
      const x = r2(logits, [P, K]);
      const y = targetOneHot(target, P, K);
      // kept across calls: the backward runs after this tidy has ended
      const mask = cachedConstant(`shardedDiceClasses:${K}:${first}`, () =>
        tf.tensor2d(
          Array.from({ length: K }, (_, c) => (c >= first ? 1 : 0)),
          [1, K],
        ),
      );
      return customOp<tf.Scalar>([x], ([xi], save) => {
        const p = tf.softmax(xi) as tf.Tensor2D;
        const py = tf.mul(p, y) as tf.Tensor2D;
        const ceLocal = tf.neg(tf.sum(tf.log(tf.maximum(tf.sum(py, -1), MIN_PROB)))).dataSync()[0];
        // per-group class sums [G, K] of p·y, p and y
        const sums = (m: tf.Tensor2D) =>
          tf.sum(tf.reshape(transpose2d(m), [K, G, P / G]), -1).transpose() as tf.Tensor2D;
        let I = sums(py),
          S = sums(p),
          Y = sums(y);
        // shared: voxels, groups and (batch Dice) the class sums
        const local = new Float64Array(opts.batchDice ? 2 + 3 * K : 2);
        local[0] = P;
        local[1] = G;
        if (opts.batchDice) {
          local.set(I.dataSync(), 2);
          local.set(S.dataSync(), 2 + K);
          local.set(Y.dataSync(), 2 + 2 * K);
        }
        const all = channel.allReduce(local);
        const [Pall, Gall] = [all[0], all[1]];
        if (opts.batchDice) {
          I = tf.tensor2d(Float32Array.from(all.subarray(2, 2 + K)), [1, K]);
          S = tf.tensor2d(Float32Array.from(all.subarray(2 + K, 2 + 2 * K)), [1, K]);
          Y = tf.tensor2d(Float32Array.from(all.subarray(2 + 2 * K, 2 + 3 * K)), [1, K]);
        }
        const n = (opts.batchDice ? 1 : Gall) * (K - first); // Dice terms averaged: pooled classes, or per sample and class
        const num = tf.add(tf.mul(I, 2), smooth) as tf.Tensor2D;
        const den = tf.add(tf.add(S, Y), smooth + DEN_EPS) as tf.Tensor2D;
        const diceSum = tf.sum(tf.mul(tf.div(num, den), mask)).dataSync()[0]; // Σ over this shard's groups
        // value: CE share + Dice share (with batch Dice every shard holds the whole Dice: count it once per world)
        const diceShare = opts.batchDice ? (1 - diceSum / n) / channel.world : G / Gall - diceSum / n;
        save([p, num, den, y]);
        return {
          value: tf.scalar(ceLocal / Pall + diceShare),
          gradFunc: (dl, [ps, nm, dn, ys]) => {
            const a = tf.mul(tf.div(mask, dn), -2 / n);
            const c = tf.mul(tf.div(tf.div(nm, dn), dn), tf.div(mask, n));
            const gamma =
              G === 1
                ? tf.add(tf.mul(ys, a), c)
                : tf.reshape(
                    tf.add(tf.mul(tf.reshape(ys, [G, P / G, K]), tf.reshape(a, [G, 1, K])), tf.reshape(c, [G, 1, K])),
                    [P, K],
                  );
            const jac = tf.mul(ps, tf.sub(gamma, tf.sum(tf.mul(gamma, ps), -1, true)));
            return [tf.mul(tf.add(tf.div(tf.sub(ps, ys), Pall), jac), dl)];
          },
        };
      });
    });
}

// ---------------------------------------------------------------------------------------------------------------
// Replicas: what every shard builds

/** A model copy on one shard: its trainable variables (same order on every shard) and its loss on a batch. */
export interface Replica {
  variables: tf.Variable[];
  /** Loss of a batch, every loss term through `termLoss` (the sharded Dice+CE); `step` and `rank` seed drop path. */
  loss(x: tf.Tensor5D, y: tf.Tensor, termLoss: DiceCeLossFn, step: number, rank: number): tf.Scalar;
  dispose(): void;
}

export type DiceCeLossFn = (logits: tf.Tensor, target: tf.Tensor, opts: DiceCeOptions) => tf.Scalar;

/** How every shard builds its model copy (JSON, sent to the workers). */
export type ReplicaSpec = {
  ops: "fast" | "plain";
  batchDice: boolean;
  /** Seed of the drop-path streams (one per step and shard). */
  seed: number;
} & ({ kind: "nnformer"; config: NnFormerConfig } | { kind: "registry"; model: string; config: object });

/** The segmentation loss of `model` (deep supervision, Dice+CE) as a replica. Disposing it disposes the model. */
export function replicaOf(model: SegmentationModel, spec: Pick<ReplicaSpec, "ops" | "batchDice" | "seed">): Replica {
  const ops = spec.ops === "fast" ? fastOps : plainOps;
  return {
    variables: model.trainableVariables(),
    loss: (x, y, termLoss, step, rank) => {
      // drop path draws from a stream per step and shard (so B/W samples per shard do not repeat each other's masks)
      const rng = makeRng(seedFrom("data-parallel", spec.seed, step, rank));
      const out = model.forward(x, { ops, training: true, rng });
      return deepSupervisionLoss(Array.isArray(out) ? out : [out], [y], { batchDice: spec.batchDice, loss: termLoss });
    },
    dispose: () => model.dispose(),
  };
}

/** Builds a shard's model copy from its spec. */
export function buildReplica(spec: ReplicaSpec): Replica {
  const model =
    spec.kind === "nnformer"
      ? new NnFormerSegmentation("data-parallel", new NnFormer(spec.config, { seed: spec.seed }))
      : modelEntry(spec.model).fromConfig(spec.config, spec.model);
  return replicaOf(model, spec);
}

// ---------------------------------------------------------------------------------------------------------------
// The group (this thread = shard 0)

export interface DataParallelOptions {
  /** Shards including this thread (>= 2). */
  world: number;
  replica: ReplicaSpec;
  /** Shard 0's model (e.g. the one a training task owns); default: built from the spec, disposed by close(). */
  main?: SegmentationModel;
  /** Batch shape: x [B, D, H, W, C] and labels y [B, D, H, W]; B must be a multiple of world. */
  xShape: number[];
  yShape: number[];
}

/** One step's outcome: the summed loss and gradients by variable name (the caller disposes the gradients). */
export interface ParallelGrads {
  loss: number;
  grads: Record<string, tf.Tensor>;
}

/** W shards that compute the gradient of a batch together; this thread is shard 0 and owns the model and optimizer. */
export class DataParallelGroup {
  readonly replica: Replica;
  private readonly workers: Worker[] = [];
  private readonly buffers: SharedBuffers;
  private readonly ctrl: Int32Array;
  private readonly channel: ShardChannel;
  private readonly offsets: number[] = [];
  private readonly numParams: number;
  private readonly xPer: number;
  private readonly yPer: number;
  private step = 0;
  private closed = false;

  private constructor(readonly o: DataParallelOptions) {
    const B = o.xShape[0];
    if (!Number.isInteger(o.world) || o.world < 2) throw new Error(`data parallel: world must be >= 2, got ${o.world}`);
    if (B % o.world !== 0)
      throw new Error(`data parallel: batch ${B} does not split over ${o.world} shards; use a multiple of ${o.world}`);
    if (o.yShape[0] !== B) throw new Error(`data parallel: labels [${o.yShape}] do not match the batch of ${B}`);
    this.replica = o.main ? replicaOf(o.main, o.replica) : buildReplica(o.replica);
    let n = 0;
    for (const v of this.replica.variables) {
      this.offsets.push(n);
      n += v.size;
    }
    this.numParams = n;
    this.xPer = o.xShape.slice(1).reduce((a, b) => a * b, B / o.world);
    this.yPer = o.yShape.slice(1).reduce((a, b) => a * b, B / o.world);
    this.buffers = allocate(o.world, n, this.xPer, this.yPer);
    this.ctrl = new Int32Array(this.buffers.ctrl);
    this.channel = new ShardChannel(0, o.world, this.buffers);
  }

  /** Starts the W-1 workers (each loads tfjs, starts wasm and builds its replica) and waits until they are ready. */
  static async create(o: DataParallelOptions): Promise<DataParallelGroup> {
    const g = new DataParallelGroup(o);
    const module = path.join(__dirname, `data_parallel_worker${path.extname(__filename)}`);
    for (let rank = 1; rank < o.world; rank++) {
      // a worker thread does not inherit the tsx loader: a .ts entry registers it first
      const entry = module.endsWith(".ts")
        ? `require(${JSON.stringify(require.resolve("tsx/cjs"))}); require(${JSON.stringify(module)});`
        : module;
      const w = new Worker(entry, {
        eval: module.endsWith(".ts"),
        workerData: {
          rank,
          world: o.world,
          buffers: g.buffers,
          replica: o.replica,
          xShape: [o.xShape[0] / o.world, ...o.xShape.slice(1)],
          yShape: [o.yShape[0] / o.world, ...o.yShape.slice(1)],
        },
      });
      w.unref();
      w.on("error", (e) => reportError(g.buffers, e));
      g.workers.push(w);
    }
    // workers load modules asynchronously: wait without blocking this thread's event loop
    while (Atomics.load(g.ctrl, CTRL.ready) < o.world - 1) {
      if (Atomics.load(g.ctrl, CTRL.failed)) {
        await g.close();
        throw new Error(`data-parallel worker failed to start: ${readError(g.buffers)}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return g;
  }

  /** Gradients of the loss of batch (x, y) with respect to the replica's variables, summed over the shards. */
  gradients(x: tf.Tensor5D, y: tf.Tensor, step = this.step): ParallelGrads {
    if (this.closed) throw new Error("data parallel: the group is closed");
    const W = this.o.world;
    const B = x.shape[0];
    if (B !== this.o.xShape[0] || x.size !== this.xPer * W || y.size !== this.yPer * W)
      throw new Error(
        `data parallel: batch [${x.shape}] / [${y.shape}] differs from [${this.o.xShape}] / [${this.o.yShape}]`,
      );
    const params = new Float32Array(this.buffers.params);
    this.replica.variables.forEach((v, i) => params.set(v.dataSync() as Float32Array, this.offsets[i]));
    const xs = x.dataSync() as Float32Array;
    const ys = y.dataSync();
    new Float32Array(this.buffers.x).set(xs.subarray(this.xPer));
    new Int32Array(this.buffers.y).set(ys.subarray(this.yPer));
    this.step = step + 1;
    Atomics.store(this.ctrl, CTRL.step, step);
    Atomics.store(this.ctrl, CTRL.done, 0);
    Atomics.add(this.ctrl, CTRL.gen, 1);
    Atomics.notify(this.ctrl, CTRL.gen);
    // shard 0: the first B/W samples
    const shape0 = [B / W, ...x.shape.slice(1)];
    const { value, grads } = tf.tidy(() => {
      const x0 = tf.tensor5d(xs.subarray(0, this.xPer), shape0 as [number, number, number, number, number]);
      const y0 = tf.tensor(Int32Array.from(ys.subarray(0, this.yPer)), [B / W, ...y.shape.slice(1)], "int32");
      return tf.variableGrads(
        () => this.replica.loss(x0, y0, shardedDiceCe(this.channel), step, 0),
        this.replica.variables,
      );
    });
    const loss0 = value.dataSync()[0];
    value.dispose();
    waitUntil(this.ctrl, CTRL.done, (v) => v >= W - 1, this.buffers);
    const all = new Float32Array(this.buffers.grads);
    const losses = new Float64Array(this.buffers.losses);
    const out: Record<string, tf.Tensor> = {};
    this.replica.variables.forEach((v, i) => {
      const g0 = grads[v.name];
      out[v.name] = tf.tidy(() => {
        let sum: tf.Tensor = g0;
        for (let r = 1; r < W; r++) {
          const off = (r - 1) * this.numParams + this.offsets[i];
          sum = tf.add(sum, tf.tensor(all.subarray(off, off + v.size), v.shape));
        }
        return sum;
      });
      g0.dispose();
    });
    let loss = loss0;
    for (let r = 1; r < W; r++) loss += losses[r];
    return { loss, grads: out };
  }

  /** Stops the workers and frees the replica. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctrl, CTRL.gen, -1);
    Atomics.notify(this.ctrl, CTRL.gen);
    // ref again while they stop: an unref'd worker's exit would not keep the process alive until close() returns
    for (const w of this.workers) w.ref();
    await Promise.all(this.workers.map((w) => w.terminate()));
    if (!this.o.main) this.replica.dispose();
  }
}

/**
 * `task` with each step's gradients computed by `group` (fit calls task.gradients): the task samples the batch as
 * usual, the group splits it over its shards. group.main must be the task's model.
 */
export function dataParallelTask(task: SegmentationTask, group: DataParallelGroup): TrainTask {
  if (group.o.main !== task.o.model)
    throw new Error("dataParallelTask: the group's shard 0 must hold the task's model");
  return {
    variables: () => task.variables(),
    paramRule: (v) => task.paramRule(v),
    loss: (step, rng) => task.loss(step, rng),
    evaluate: () => task.evaluate(),
    save: (tag, state, optimizer) => task.save(tag, state, optimizer),
    gradients: (step, rng) => {
      const { x, y } = task.sampleBatch(rng);
      try {
        const r = group.gradients(x, y, step);
        return { value: tf.scalar(r.loss), grads: r.grads };
      } finally {
        tf.dispose([x, y]);
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The worker side (run by data_parallel_worker.ts)

export interface WorkerData {
  rank: number;
  world: number;
  buffers: SharedBuffers;
  replica: ReplicaSpec;
  xShape: number[];
  yShape: number[];
}

/** A worker's loop: wait for a step, load the weights and samples, compute, write the gradients, repeat. */
export function workerLoop(d: WorkerData): void {
  const b = d.buffers;
  const ctrl = new Int32Array(b.ctrl);
  try {
    const replica = buildReplica(d.replica);
    const channel = new ShardChannel(d.rank, d.world, b);
    const offsets: number[] = [];
    let numParams = 0;
    for (const v of replica.variables) {
      offsets.push(numParams);
      numParams += v.size;
    }
    const xPer = d.xShape.reduce((a, c) => a * c, 1);
    const yPer = d.yShape.reduce((a, c) => a * c, 1);
    const params = new Float32Array(b.params);
    const grads = new Float32Array(b.grads);
    const xs = new Float32Array(b.x);
    const ys = new Int32Array(b.y);
    const losses = new Float64Array(b.losses);
    if (numParams !== params.length)
      throw new Error(`worker ${d.rank} built ${numParams} parameters, shard 0 has ${params.length}: the specs differ`);
    Atomics.add(ctrl, CTRL.ready, 1);
    let seen = Atomics.load(ctrl, CTRL.gen);
    for (;;) {
      waitUntil(ctrl, CTRL.gen, (v) => v !== seen, b);
      seen = Atomics.load(ctrl, CTRL.gen);
      if (seen < 0) break;
      const step = Atomics.load(ctrl, CTRL.step);
      replica.variables.forEach((v, i) =>
        v.assign(tf.tensor(params.slice(offsets[i], offsets[i] + v.size), v.shape, "float32")),
      );
      const off = (d.rank - 1) * xPer;
      const x = tf.tensor5d(xs.slice(off, off + xPer), d.xShape as [number, number, number, number, number]);
      const yOff = (d.rank - 1) * yPer;
      const y = tf.tensor(ys.slice(yOff, yOff + yPer), d.yShape, "int32");
      const { value, grads: g } = tf.variableGrads(
        () => replica.loss(x, y, shardedDiceCe(channel), step, d.rank),
        replica.variables,
      );
      losses[d.rank] = value.dataSync()[0];
      const base = (d.rank - 1) * numParams;
      replica.variables.forEach((v, i) => grads.set(g[v.name].dataSync() as Float32Array, base + offsets[i]));
      tf.dispose([x, y, value, ...Object.values(g)]);
      if (Atomics.add(ctrl, CTRL.done, 1) + 1 >= d.world - 1) Atomics.notify(ctrl, CTRL.done);
    }
    replica.dispose();
  } catch (e) {
    reportError(b, e);
  }
}
