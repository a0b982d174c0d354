// Microbenchmark: plain (autodiff) vs fast (hand-written gradients) fwd+bwd of the ops at the shapes of the tiny
// 64³ nnFormer preset (embed 48, patch (2,4,4), windows 4³ -> stage 0 is 32×16×16 = 8192 tokens). Not a test.
// Method (as in docs/wasm-fast-ops.md): every call works on fresh copies of the inputs (t.add(0)),
// because XNNPACK caches its packed right-hand operand per tensor and training changes weights every step;
// fwd+bwd = tf.grads of Σ out·R for a fixed random R; 1 warm-up call, then the median of `reps` calls.
// GFLOP/s counts matmul/conv FLOPs only (2 per multiply-add), fwd+bwd = 3 × forward, for the fast version.
import * as tf from "@tensorflow/tfjs";
import { Conv3dSpec, Ops } from "../layers/ops";
import { plainOps } from "../layers/plain_ops";
import { fastOps as cpuFastOps } from "../layers/fast_ops";
import { webgpuOps } from "../layers/webgpu_ops";
import { ConvRoute, fastConv3d } from "../layers/fast/conv3d";
import { diceCeLoss, diceCeLossPlain } from "../losses/dice_ce";
import type { Vec3 } from "../runtime/math";
import { prod, lowerMedian } from "../runtime/math";

export interface BenchRow {
  op: string;
  shape: string;
  plainMs: number;
  fastMs: number;
  speedup: number;
  /** Effective GFLOP/s of the fast fwd+bwd (null where FLOPs are not meaningful). */
  gflops: number | null;
}

export interface BenchOptions {
  /** Timed calls per variant (median taken); default 3. */
  reps?: number;
  /** Only cases whose op name contains one of these strings. */
  only?: string[];
  /** Called after each row (progress output). */
  onRow?: (row: BenchRow) => void;
}

interface Case {
  op: string;
  shape: string;
  /** Forward FLOPs (0: not reported). */
  flops: number;
  /** Input shapes; int32 inputs are given as ready tensors. */
  inputs: (number[] | tf.Tensor)[];
  /** Indices of the inputs to differentiate (default: all float inputs). */
  wrt?: number[];
  plain: (...xs: tf.Tensor[]) => tf.Tensor;
  fast: (...xs: tf.Tensor[]) => tf.Tensor;
}

/** The kit's fast ops for the current backend (webgpu has its own attention). */
const fastOps = (): Ops => (tf.getBackend() === "webgpu" ? webgpuOps : cpuFastOps);

/** Median ms of fwd+bwd of f on fresh copies of the inputs (gradients read with await data(): GPU work included). */
async function timeFwdBwd(
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
  wrt: number[],
  reps: number,
): Promise<number> {
  const r = tf.tidy(() => tf.randomNormal(f(...inputs).shape, 0, 1, "float32", 7));
  const call = async () => {
    const g = tf.tidy(() => {
      const fresh = inputs.map((t, i) => (wrt.includes(i) ? tf.add(t, 0) : t));
      const loss = (...vs: tf.Tensor[]) => {
        const all = fresh.slice();
        wrt.forEach((k, j) => (all[k] = vs[j]));
        const y = f(...all);
        return y.rank === 0 ? y.mul(r) : tf.sum(tf.mul(y, r));
      };
      return tf.grads(loss)(wrt.map((k) => fresh[k]));
    });
    await Promise.all(g.map((t) => t.data()));
    tf.dispose(g);
  };
  await call();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await call();
    ts.push(performance.now() - t0);
  }
  r.dispose();
  return lowerMedian(ts);
}

function convCase(name: string, x: number[], co: number, spec: Conv3dSpec, kernel: Vec3 = [3, 3, 3]): Case {
  const [, D, H, W, ci] = x;
  const out = [D, H, W].map((n, a) => Math.floor((n + 2 * spec.padding[a] - kernel[a]) / spec.stride[a]) + 1);
  const wrt = spec.inputGrad === false ? [1, 2] : [0, 1, 2];
  return {
    op: `conv3d ${name}`,
    shape: `[${D},${H},${W},${ci}]->${co} k${kernel.join("")} s${spec.stride.join("")}${spec.inputGrad === false ? " no dX" : ""}`,
    flops: 2 * prod(out) * prod(kernel) * ci * co,
    inputs: [x, [...kernel, ci, co], [co]],
    wrt,
    plain: (a, w, b) => plainOps.conv3d(a as tf.Tensor5D, w as tf.Tensor5D, b as tf.Tensor1D, spec),
    fast: (a, w, b) => fastOps().conv3d(a as tf.Tensor5D, w as tf.Tensor5D, b as tf.Tensor1D, spec),
  };
}

function convTCase(name: string, x: number[], co: number, k: Vec3): Case {
  const [, D, H, W, ci] = x;
  return {
    op: `convT ${name}`,
    shape: `[${D},${H},${W},${ci}]->${co} k${k.join("")}`,
    flops: 2 * D * H * W * ci * prod(k) * co,
    inputs: [x, [...k, co, ci], [co]],
    plain: (a, w, b) => plainOps.convTranspose3d(a as tf.Tensor5D, w as tf.Tensor5D, b as tf.Tensor1D),
    fast: (a, w, b) => fastOps().convTranspose3d(a as tf.Tensor5D, w as tf.Tensor5D, b as tf.Tensor1D),
  };
}

function linearCase(name: string, t: number, ci: number, co: number): Case {
  return {
    op: `linear ${name}`,
    shape: `[${t},${ci}]x[${ci},${co}]`,
    flops: 2 * t * ci * co,
    inputs: [[t, ci], [ci, co], [co]],
    plain: (x, w, b) => plainOps.linear(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D),
    fast: (x, w, b) => fastOps().linear(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D),
  };
}

function attentionCase(nW: number, N: number, h: number, d: number): Case {
  const args = (bias: tf.Tensor) => ({
    numWindows: nW,
    tokens: N,
    heads: h,
    scale: d ** -0.5,
    bias: bias as tf.Tensor3D,
    mask: null,
  });
  const C = h * d;
  return {
    op: "windowAttention",
    shape: `${nW} windows x ${N} tokens x ${h} heads, d ${d}`,
    flops: 2 * 2 * nW * h * N * N * d,
    inputs: [
      [nW * N, C],
      [nW * N, C],
      [nW * N, C],
      [h, N, N],
    ],
    plain: (q, k, v, b) => plainOps.windowAttention(q as tf.Tensor2D, k as tf.Tensor2D, v as tf.Tensor2D, args(b)),
    fast: (q, k, v, b) => fastOps().windowAttention(q as tf.Tensor2D, k as tf.Tensor2D, v as tf.Tensor2D, args(b)),
  };
}

/** Dice + CE over 14 classes on a [1, n, n, n] crop; its int labels are disposed by the caller. */
function lossCase(n: number): Case {
  const labels = tf.tensor(
    Array.from({ length: n ** 3 }, (_, i) => (i * 7) % 14),
    [1, n, n, n],
    "int32",
  );
  const opts = { batchDice: false };
  return {
    op: "loss dice+CE",
    shape: `[1,${n},${n},${n},14]`,
    flops: 0,
    inputs: [[1, n, n, n, 14], labels],
    wrt: [0],
    plain: (x, y) => diceCeLossPlain(x, y, opts),
    fast: (x, y) => diceCeLoss(x, y, opts),
  };
}

/** The cases; int inputs are created here and disposed by the caller. */
function cases(): Case[] {
  const relIndex = tf.tensor1d(
    Array.from({ length: 64 * 64 }, (_, i) => (i * 37) % 343),
    "int32",
  );
  const s1: Conv3dSpec = { stride: [1, 1, 1], padding: [1, 1, 1] };
  const s2: Conv3dSpec = { stride: [2, 2, 2], padding: [1, 1, 1] };
  return [
    linearCase("stage-0 qkv", 8192, 48, 144),
    linearCase("stage-0 fc2", 8192, 192, 48),
    convCase("A", [1, 32, 32, 32, 16], 16, s1),
    convCase("embed 1", [1, 64, 64, 64, 1], 24, { ...s2, inputGrad: false }),
    convCase("embed 2", [1, 32, 32, 32, 24], 24, s1),
    convCase("embed 3", [1, 32, 32, 32, 24], 48, { stride: [1, 2, 2], padding: [1, 1, 1] }),
    convCase("embed 4", [1, 32, 16, 16, 48], 48, s1),
    convCase("merge 0", [1, 32, 16, 16, 48], 96, s2),
    convCase("merge 1", [1, 16, 8, 8, 96], 192, s2),
    convCase("merge 2", [1, 8, 4, 4, 192], 384, s2),
    attentionCase(128, 64, 3, 16),
    attentionCase(16, 64, 6, 16),
    convTCase("up 0", [1, 16, 8, 8, 96], 48, [2, 2, 2]),
    convTCase("head 0", [1, 32, 16, 16, 48], 14, [2, 4, 4]),
    convTCase("head 1", [1, 16, 8, 8, 96], 14, [2, 4, 4]),
    {
      op: "gatherRows",
      shape: "rel-pos table [343,3] -> [4096,3]",
      flops: 0,
      inputs: [[343, 3], relIndex],
      wrt: [0],
      plain: (t, i) => plainOps.gatherRows(t as tf.Tensor2D, i as tf.Tensor1D),
      fast: (t, i) => fastOps().gatherRows(t as tf.Tensor2D, i as tf.Tensor1D),
    },
    {
      op: "layerNorm",
      shape: "[8192,48]",
      flops: 0,
      inputs: [[8192, 48], [48], [48]],
      plain: (x, g, b) => plainOps.layerNorm(x as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5),
      fast: (x, g, b) => fastOps().layerNorm(x as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5),
    },
    {
      op: "gelu",
      shape: "[8192,192]",
      flops: 0,
      inputs: [[8192, 192]],
      plain: (x) => plainOps.gelu(x),
      fast: (x) => fastOps().gelu(x),
    },
    {
      op: "roll",
      shape: "[1,32,16,16,48] by (-2,-2,-2)",
      flops: 0,
      inputs: [[1, 32, 16, 16, 48]],
      plain: (x) => plainOps.roll(x as tf.Tensor5D, [-2, -2, -2]),
      fast: (x) => fastOps().roll(x as tf.Tensor5D, [-2, -2, -2]),
    },
    lossCase(64),
    lossCase(32),
  ];
}

function makeInputs(c: Case): tf.Tensor[] {
  return c.inputs.map((s, i) =>
    s instanceof tf.Tensor ? s : tf.randomNormal(s, 0, i === 0 ? 1 : 0.1, "float32", 11 + i),
  );
}

/** Time plain vs fast fwd+bwd for every case (or the `only` subset) on the current backend. */
export async function benchOps(opts: BenchOptions = {}): Promise<BenchRow[]> {
  const reps = opts.reps ?? 3;
  const all = cases();
  const rows: BenchRow[] = [];
  for (const c of all) {
    if (opts.only && !opts.only.some((o) => c.op.includes(o))) continue;
    const inputs = makeInputs(c);
    const wrt = c.wrt ?? inputs.map((t, i) => (t.dtype === "float32" ? i : -1)).filter((i) => i >= 0);
    const plainMs = await timeFwdBwd(c.plain, inputs, wrt, reps);
    const fastMs = await timeFwdBwd(c.fast, inputs, wrt, reps);
    const row: BenchRow = {
      op: c.op,
      shape: c.shape,
      plainMs,
      fastMs,
      speedup: plainMs / fastMs,
      gflops: c.flops ? (3 * c.flops) / (fastMs * 1e6) : null,
    };
    rows.push(row);
    opts.onRow?.(row);
    tf.dispose(inputs.filter((t, i) => !(c.inputs[i] instanceof tf.Tensor)));
  }
  for (const c of all) tf.dispose(c.inputs.filter((s): s is tf.Tensor => s instanceof tf.Tensor));
  return rows;
}

/** The two fast conv3d routes at the merge shapes, to set pickConvRoute's size rule: [shape, zsplitMs, gatherMs]. */
export async function benchConvRoutes(reps = 3): Promise<{ shape: string; zsplitMs: number; gatherMs: number }[]> {
  const shapes: [number[], number, Conv3dSpec][] = [
    [[1, 32, 16, 16, 48], 96, { stride: [2, 2, 2], padding: [1, 1, 1] }],
    [[1, 16, 8, 8, 96], 192, { stride: [2, 2, 2], padding: [1, 1, 1] }],
    [[1, 8, 4, 4, 192], 384, { stride: [2, 2, 2], padding: [1, 1, 1] }],
    [[1, 16, 16, 16, 32], 32, { stride: [2, 2, 2], padding: [1, 1, 1] }],
    [[1, 8, 8, 8, 64], 64, { stride: [1, 1, 1], padding: [1, 1, 1] }],
    [[1, 16, 16, 16, 16], 16, { stride: [2, 2, 2], padding: [1, 1, 1] }],
  ];
  const rows: { shape: string; zsplitMs: number; gatherMs: number }[] = [];
  for (const [x, co, spec] of shapes) {
    const inputs = [tf.randomNormal(x), tf.randomNormal([3, 3, 3, x[4], co], 0, 0.1), tf.randomNormal([co])];
    const f = (route: ConvRoute) => (a: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
      fastConv3d(a as tf.Tensor5D, w as tf.Tensor5D, b as tf.Tensor1D, spec, route);
    const zsplitMs = await timeFwdBwd(f("zsplit"), inputs, [0, 1, 2], reps);
    const gatherMs = await timeFwdBwd(f("gather"), inputs, [0, 1, 2], reps);
    tf.dispose(inputs);
    rows.push({ shape: `[${x.slice(1)}]->${co} s${spec.stride.join("")}`, zsplitMs, gatherMs });
  }
  return rows;
}

/** The rows as a Markdown table. */
export function formatBench(rows: BenchRow[]): string {
  const lines = ["| op | shape | plain ms | fast ms | speedup | fast GFLOP/s |", "|---|---|---|---|---|---|"];
  for (const r of rows) {
    lines.push(
      `| ${r.op} | ${r.shape} | ${r.plainMs.toFixed(1)} | ${r.fastMs.toFixed(1)} | ${r.speedup.toFixed(1)}x | ${r.gflops === null ? "-" : r.gflops.toFixed(1)} |`,
    );
  }
  return lines.join("\n");
}
