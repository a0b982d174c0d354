// The differentiable building blocks the models are written in. Two implementations share this interface:
//   plainOps (plain_ops.ts): straightforward tfjs ops and autodiff. The reference for tests, and the fast choice on the
//     native `tensorflow` backend, where tf.conv3d / tf.matMul are already good.
//   fastOps (fast_ops.ts): hand-written gradients (tf.customGrad) in formulations that reach XNNPACK on `wasm`
//     (see docs/wasm-fast-ops.md). Same values and gradients as plainOps within float tolerance.
// Models take an Ops argument, so the same model code runs either way and the benchmark can compare them.
import * as tf from "@tensorflow/tfjs";
import type { Vec3 } from "../runtime/math";

export interface Conv3dSpec {
  /** Stride per axis [sD, sH, sW]. */
  stride: Vec3;
  /** Symmetric zero padding per axis [pD, pH, pW] (PyTorch Conv3d semantics). */
  padding: Vec3;
  /** False for a network's first conv: the image needs no gradient, so dX may be skipped (returned as zeros). */
  inputGrad?: boolean;
}

export interface WindowAttentionArgs {
  /** Number of windows in the batch (all batch items, window-major). */
  numWindows: number;
  /** Tokens per window, N. */
  tokens: number;
  heads: number;
  /** Multiplies q before q·kᵀ (head_dim^-0.5 in nnFormer). */
  scale: number;
  /** Additive relative-position bias [heads, N, N], or null. */
  bias: tf.Tensor3D | null;
  /** Additive mask [nMask, N, N] (0 or -100 / -1e9), or null. Window w uses mask[w % nMask]. Not differentiated. */
  mask: tf.Tensor3D | null;
}

export interface Ops {
  readonly name: "plain" | "fast";
  /** y = x·w + b. x [T, Cin], w [Cin, Cout] (PyTorch Linear weight transposed), b [Cout] or null. */
  linear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D | null): tf.Tensor2D;
  /** Conv3d, channels-last. x [B, D, H, W, Ci], w [kD, kH, kW, Ci, Co], b [Co] or null. */
  conv3d(x: tf.Tensor5D, w: tf.Tensor5D, b: tf.Tensor1D | null, spec: Conv3dSpec): tf.Tensor5D;
  /**
   * ConvTranspose3d with kernel == stride (no overlap), channels-last. x [B, D, H, W, Ci], w [kD, kH, kW, Co, Ci]
   * (tfjs conv3dTranspose layout), b [Co] or null. Output [B, D·kD + oD, H·kH + oH, W·kW + oW, Co] where
   * outputPadding [oD, oH, oW] adds trailing planes that receive only the bias (PyTorch output_padding).
   */
  convTranspose3d(x: tf.Tensor5D, w: tf.Tensor5D, b: tf.Tensor1D | null, outputPadding?: Vec3): tf.Tensor5D;
  /**
   * softmax(q·kᵀ·scale + bias + mask)·v per window and head. q, k, v are [numWindows·N, C] token-major, with
   * C = heads·headDim and the channel axis ordered (head, dim). Returns [numWindows·N, C] in the same layout.
   */
  windowAttention(q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, args: WindowAttentionArgs): tf.Tensor2D;
  /** table[index] for a [R, C] table and int32 indices [M] -> [M, C]; differentiable w.r.t. table on every backend. */
  gatherRows(table: tf.Tensor2D, index: tf.Tensor1D): tf.Tensor2D;
  /** LayerNorm over the last axis of x [T, C] with affine gamma, beta [C]. */
  layerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor2D;
  /** Exact GELU, x·Φ(x) with the erf form (PyTorch nn.GELU default). */
  gelu<T extends tf.Tensor>(x: T): T;
  /** torch.roll over the spatial axes of x [B, D, H, W, C]: out[d] = x[(d - shift) mod D], per axis. */
  roll(x: tf.Tensor5D, shifts: Vec3): tf.Tensor5D;
  /**
   * InstanceNorm3d over D·H·W per (sample, channel) with optional affine gamma, beta [C], then LeakyReLU(slope)
   * (ReLU at slope 0) or nothing (act null). x [B, D, H, W, C]. The conv-block models' normalisation.
   */
  instanceNormAct(
    x: tf.Tensor5D,
    gamma: tf.Tensor1D | null,
    beta: tf.Tensor1D | null,
    act: { slope: number } | null,
  ): tf.Tensor5D;
}
