// nnFormer building blocks on token matrices [B·S·H·W, C] (rank 2; rank 5 only around convolutions).
// Spec: docs/nnformer.md §2. Every function reads its weights through a ParamGetter keyed by the official
// PyTorch state_dict names (layouts already converted: Linear (in,out), Conv3d (d,h,w,in,out), ConvT (d,h,w,out,in)).
import * as tf from "@tensorflow/tfjs";
import { Ops } from "./ops";
import type { Rng } from "../runtime/random";
import { WindowGeometry, partitionIndex, mergeIndex } from "./window_attention3d";
import type { Vec3 } from "../runtime/math";

/** Returns the tensor stored under an official name (throws on unknown names). */
export type ParamGetter = (name: string) => tf.Tensor;

/** LayerNorm eps of the official code (PyTorch default). TF.js layers default to 1e-3: do not use those. */
export const LN_EPS = 1e-5;

/** What every block needs besides its weights. */
export interface BlockContext {
  ops: Ops;
  batch: number;
  training: boolean;
  rng?: Rng;
  /** Int32 gather indices for a geometry and batch, cached by the model (JS arrays; tensors are made per call). */
  indices(g: WindowGeometry, batch: number): WindowIndices;
}

/** Per-block attention extras precomputed by the model. */
export interface AttentionExtras {
  /** Official relative_position_index as an int32 tensor [N·N]. */
  rpbIndex: tf.Tensor1D;
  /** −100 shift mask [nW, N, N] or null. */
  shiftMask: tf.Tensor3D | null;
  /** Optional additive key mask [B·nW, N, N] (MAE), added on top of the shift mask. */
  keyMask?: tf.Tensor3D | null;
}

export function layerNorm(ctx: BlockContext, x: tf.Tensor2D, p: ParamGetter, prefix: string): tf.Tensor2D {
  return ctx.ops.layerNorm(x, p(`${prefix}.weight`) as tf.Tensor1D, p(`${prefix}.bias`) as tf.Tensor1D, LN_EPS);
}

/** LayerNorm over channels of a channels-last volume [B, D, H, W, C]. */
export function layerNorm5d(ctx: BlockContext, x: tf.Tensor5D, p: ParamGetter, prefix: string): tf.Tensor5D {
  const C = x.shape[4];
  const y = layerNorm(ctx, tf.reshape(x, [-1, C]), p, prefix); // [B·D·H·W, C]
  return tf.reshape(y, x.shape);
}

export function linear(ctx: BlockContext, x: tf.Tensor2D, p: ParamGetter, prefix: string): tf.Tensor2D {
  return ctx.ops.linear(x, p(`${prefix}.weight`) as tf.Tensor2D, p(`${prefix}.bias`) as tf.Tensor1D);
}

/** Linear with the output columns [part·C, (part+1)·C) of a fused weight (qkv / kv), so big activations are never sliced. */
function linearPart(
  ctx: BlockContext,
  x: tf.Tensor2D,
  p: ParamGetter,
  prefix: string,
  part: number,
  C: number,
): tf.Tensor2D {
  const w = p(`${prefix}.weight`) as tf.Tensor2D; // [C, k·C]
  const b = p(`${prefix}.bias`) as tf.Tensor1D; // [k·C]
  return ctx.ops.linear(x, tf.slice(w, [0, part * C], [C, C]), tf.slice(b, [part * C], [C]));
}

/** Conv3d with PyTorch padding; weight [kD, kH, kW, Ci, Co]. */
export function conv3d(
  ctx: BlockContext,
  x: tf.Tensor5D,
  p: ParamGetter,
  prefix: string,
  stride: Vec3,
  padding: Vec3,
  inputGrad = true,
): tf.Tensor5D {
  return ctx.ops.conv3d(x, p(`${prefix}.weight`) as tf.Tensor5D, p(`${prefix}.bias`) as tf.Tensor1D, {
    stride,
    padding,
    inputGrad,
  });
}

/**
 * Stochastic depth per sample (timm DropPath): in training each batch item's branch is kept with probability 1 − rate
 * and scaled by 1/(1 − rate). x is [B·L, C].
 */
export function dropPath(ctx: BlockContext, x: tf.Tensor2D, rate: number): tf.Tensor2D {
  if (!ctx.training || rate <= 0) return x;
  if (!ctx.rng)
    throw new Error(
      `forward(training: true) needs opts.rng for drop path (rate ${rate}); pass makeRng(seed) or set dropPathRate 0`,
    );
  const keep = 1 - rate;
  const m = new Float32Array(ctx.batch);
  for (let b = 0; b < ctx.batch; b++) m[b] = ctx.rng() < keep ? 1 / keep : 0;
  const [T, C] = x.shape;
  const y = tf.mul(tf.reshape(x, [ctx.batch, (T / ctx.batch) * C]), tf.tensor2d(m, [ctx.batch, 1])); // [B, L·C]
  return tf.reshape(y, [T, C]);
}

/** Gather indices of a block geometry for one batch size. */
export interface WindowIndices {
  /** Source row per window token (pad positions point at the appended zero row B·L). */
  part: Int32Array;
  /** Window row per token. */
  merge: Int32Array;
  /** True when the grid needs zero padding. */
  padded: boolean;
  /** True when windows are the tokens in order (one window, no roll, no padding: global stages): no gather at all. */
  identity: boolean;
}

/** t with one zero row appended (the pad row), then rows `idx` of it. */
function gatherWithPadRow(t: tf.Tensor2D, idx: Int32Array, pad: boolean): tf.Tensor2D {
  return tf.tidy(() => {
    const src = pad ? (tf.concat([t, tf.zeros([1, t.shape[1]])], 0) as tf.Tensor2D) : t; // [R (+1), C]
    return tf.gather(src, tf.tensor1d(idx, "int32")) as tf.Tensor2D;
  });
}

/**
 * A row permutation with its exact inverse as the gradient: y = pad(x)[fwd], dx = pad(dy)[bwd]. Window partition and
 * merge are such pairs (every real token sits in exactly one window row), so both directions are plain gathers: no
 * scatter, and no index tensor has to outlive the forward (the backward makes its own from the cached Int32Array).
 * Pure data movement, identical for plain and fast ops, so it does not go through Ops.gatherRows.
 */
export function permuteRows(
  x: tf.Tensor2D,
  fwd: Int32Array,
  fwdPad: boolean,
  bwd: Int32Array,
  bwdPad: boolean,
): tf.Tensor2D {
  const f = tf.customGrad((...args: unknown[]) => ({
    value: gatherWithPadRow(args[0] as tf.Tensor2D, fwd, fwdPad),
    gradFunc: (dy: tf.Tensor) => gatherWithPadRow(dy as tf.Tensor2D, bwd, bwdPad),
  }));
  return f(x) as tf.Tensor2D;
}

/** [B·L, C] → window rows [B·nW·N, C]: zero pad (after LN), roll by −shift, partition, as one gather. */
function toWindows(h: tf.Tensor2D, idx: WindowIndices): tf.Tensor2D {
  if (idx.identity) return h;
  return permuteRows(h, idx.part, idx.padded, idx.merge, false);
}

/** Window rows back to [B·L, C]: merge, roll by +shift, crop the padding, as one gather. */
function fromWindows(a: tf.Tensor2D, idx: WindowIndices): tf.Tensor2D {
  if (idx.identity) return a;
  return permuteRows(a, idx.merge, false, idx.part, idx.padded);
}

/** Relative position bias [heads, N, N] from the table [T, heads] and the official index. */
function relativeBias(ctx: BlockContext, table: tf.Tensor2D, index: tf.Tensor1D, N: number): tf.Tensor3D {
  const heads = table.shape[1];
  if (N === 1) return tf.reshape(table, [heads, 1, 1]); // window 1 (a 1-token grid): the table has one row
  const rows = ctx.ops.gatherRows(table, index); // [N·N, heads]
  return tf.reshape(tf.transpose(rows), [heads, N, N]);
}

function combineMasks(
  batch: number,
  shift: tf.Tensor3D | null,
  key: tf.Tensor3D | null | undefined,
): tf.Tensor3D | null {
  if (!key) return shift;
  if (!shift) return key;
  const [nW, N] = shift.shape;
  const sum = tf.add(tf.reshape(key, [batch, nW * N * N]), tf.reshape(shift, [1, nW * N * N])); // [B, nW·N·N]
  return tf.reshape(sum, [batch * nW, N, N]);
}

function attend(
  ctx: BlockContext,
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  v: tf.Tensor2D,
  g: WindowGeometry,
  heads: number,
  table: tf.Tensor2D,
  extras: AttentionExtras,
): tf.Tensor2D {
  const C = q.shape[1];
  return ctx.ops.windowAttention(q, k, v, {
    numWindows: ctx.batch * g.numWindows,
    tokens: g.tokens,
    heads,
    scale: Math.pow(C / heads, -0.5),
    bias: relativeBias(ctx, table, extras.rpbIndex, g.tokens),
    mask: combineMasks(ctx.batch, g.masked ? extras.shiftMask : null, extras.keyMask),
  });
}

/** MLP: Linear(C, rC) → GELU → Linear(rC, C). */
function mlp(ctx: BlockContext, x: tf.Tensor2D, p: ParamGetter, prefix: string): tf.Tensor2D {
  return linear(ctx, ctx.ops.gelu(linear(ctx, x, p, `${prefix}.fc1`)), p, `${prefix}.fc2`);
}

/** Where a window block finds its weights (official prefix) and how it runs. */
export interface WindowBlockArgs {
  p: ParamGetter;
  prefix: string;
  g: WindowGeometry;
  heads: number;
  /** Drop-path rate of this block (training only). */
  dropRate: number;
  extras: AttentionExtras;
}

/**
 * Transformer block (LV-SA / GV-SA, §2.3): x + DP(Attn(LN1 x)), then + DP(MLP(LN2 x)).
 * The output projection runs after the window merge (per-token linear, same values; skips the padding rows).
 */
export function transformerBlock(ctx: BlockContext, x: tf.Tensor2D, a: WindowBlockArgs): tf.Tensor2D {
  const idx = ctx.indices(a.g, ctx.batch);
  const win = toWindows(layerNorm(ctx, x, a.p, `${a.prefix}.norm1`), idx); // [B·nW·N, C]
  const qkv = (i: number) => linearPart(ctx, win, a.p, `${a.prefix}.attn.qkv`, i, x.shape[1]);
  return attentionThenMlp(ctx, x, [qkv(0), qkv(1), qkv(2)], idx, a);
}

/**
 * Skip attention (first decoder block, §2.6): keys/values from LN1(skip) through one Linear(C, 2C), queries are
 * LN1(x_up) itself (no query projection), never shifted; residual base x = x_up + skip.
 */
export function skipAttentionBlock(
  ctx: BlockContext,
  x: tf.Tensor2D,
  xUp: tf.Tensor2D,
  skip: tf.Tensor2D,
  a: WindowBlockArgs,
): tf.Tensor2D {
  const idx = ctx.indices(a.g, ctx.batch);
  const kIn = toWindows(layerNorm(ctx, skip, a.p, `${a.prefix}.norm1`), idx); // [B·nW·N, C]
  const q = toWindows(layerNorm(ctx, xUp, a.p, `${a.prefix}.norm1`), idx);
  const kv = (i: number) => linearPart(ctx, kIn, a.p, `${a.prefix}.attn.kv`, i, x.shape[1]);
  return attentionThenMlp(ctx, x, [q, kv(0), kv(1)], idx, a);
}

/** The part both blocks share: windowed attention merged back to tokens [B·L, C], projected, added to x; then MLP. */
function attentionThenMlp(
  ctx: BlockContext,
  x: tf.Tensor2D,
  [q, k, v]: [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D],
  idx: WindowIndices,
  { p, prefix, g, heads, dropRate, extras }: WindowBlockArgs,
): tf.Tensor2D {
  const table = p(`${prefix}.attn.relative_position_bias_table`) as tf.Tensor2D;
  const att = fromWindows(attend(ctx, q, k, v, g, heads, table, extras), idx); // [B·L, C]
  const y = tf.add(x, dropPath(ctx, linear(ctx, att, p, `${prefix}.attn.proj`), dropRate)) as tf.Tensor2D;
  const m = mlp(ctx, layerNorm(ctx, y, p, `${prefix}.norm2`), p, `${prefix}.mlp`);
  return tf.add(y, dropPath(ctx, m, dropRate)) as tf.Tensor2D;
}

/** Cached gather indices per (geometry, batch). */
export class WindowIndexCache {
  private cache = new Map<string, WindowIndices>();
  get(g: WindowGeometry, batch: number): WindowIndices {
    const key = `${g.grid}|${g.window}|${g.rolled ? g.shift : "0"}|${batch}`;
    let hit = this.cache.get(key);
    if (!hit) {
      const L = g.grid[0] * g.grid[1] * g.grid[2];
      const padded = g.padded.some((P, a) => P !== g.grid[a]);
      const part = partitionIndex(g, batch, batch * L);
      const identity = part.length === batch * L && part.every((r, i) => r === i);
      hit = { part, merge: mergeIndex(g, batch), padded, identity };
      this.cache.set(key, hit);
    }
    return hit;
  }
}
