// plainOps: the reference implementation of Ops with plain tfjs ops and autodiff. Slow on wasm, but every piece
// is an op whose gradient tfjs gets right, so tests check fastOps against it. On the native `tensorflow` backend it
// is also the fast choice (tf.conv3d and tf.matMul are native there).
// Two places need care because tfjs-wasm 4.22 lacks or breaks a gradient:
//   conv3d:     wasm's Conv3DBackpropInputV2 / Conv3DBackpropFilterV2 are wrong, so on wasm the conv is an explicit
//               im2col (slices + concat + matMul) whose autodiff is correct; elsewhere pad + tf.conv3d('valid').
//   gatherRows: tf.gather's gradient needs UnsortedSegmentSum, which wasm lacks, so on wasm the gather is a one-hot
//               matMul (small tables) or a customGrad whose backward is tf.scatterND (sums duplicate indices).
import * as tf from "@tensorflow/tfjs";
import { Conv3dSpec, Ops, WindowAttentionArgs } from "./ops";
import { instanceNormActPlain } from "./conv_blocks3d";
import {
  checkAttention,
  convOutLength,
  convTransposeMatrix,
  customOp,
  depthToSpace3d,
  rollAxis,
  windowMask,
} from "./op_helpers";
import type { Vec3 } from "../runtime/math";

/** Largest R·M for which plain gatherRows on wasm builds a dense one-hot [M, R] matrix. */
const PLAIN_ONE_HOT_MAX = 1 << 24;

function linear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D | null): tf.Tensor2D {
  const y = tf.matMul(x, w) as tf.Tensor2D;
  return b ? (tf.add(y, b) as tf.Tensor2D) : y;
}

/** Zero-pad x [B, D, H, W, C] by p before and `extra` after each spatial axis. */
function padSpatial(x: tf.Tensor5D, p: Vec3, extra: Vec3 = [0, 0, 0]): tf.Tensor5D {
  if (p.every((v, i) => v === 0 && extra[i] === 0)) return x;
  return tf.pad(x, [
    [0, 0],
    [p[0], p[0] + extra[0]],
    [p[1], p[1] + extra[1]],
    [p[2], p[2] + extra[2]],
    [0, 0],
  ]);
}

/** Planes k, k+s, ..., k+s·(n-1) along axis 1 of t viewed as [A, L, R] (needs L ≥ k + s·n). */
function strided(t: tf.Tensor3D, k: number, s: number, n: number): tf.Tensor3D {
  const [a, , r] = t.shape;
  if (s === 1) return tf.slice(t, [0, k, 0], [a, n, r]);
  const run = tf.slice(t, [0, k, 0], [a, s * n, r]).reshape([a, n, s * r]); // [A, n, (s, R)]
  return tf.slice(run, [0, 0, 0], [a, n, r]) as tf.Tensor3D;
}

/**
 * Conv3d by im2col with autodiff: for each kernel tap a strided view of the padded input, the taps concatenated on
 * channels, one matMul. Correct on every backend (used on wasm, where tf.conv3d's gradients are wrong).
 */
function conv3dIm2col(x: tf.Tensor5D, w: tf.Tensor5D, spec: Conv3dSpec): tf.Tensor5D {
  const [B, D, H, W, Ci] = x.shape;
  const [kD, kH, kW, , Co] = w.shape;
  const { stride: s, padding: p } = spec;
  const out = [convOutLength(D, kD, s[0], p[0]), convOutLength(H, kH, s[1], p[1]), convOutLength(W, kW, s[2], p[2])];
  const lens = [D, H, W];
  const ks = [kD, kH, kW];
  // extra trailing zeros so that every strided view k + s·n stays in range
  const extra = [0, 1, 2].map((a) => Math.max(0, ks[a] - 1 + s[a] * out[a] - (lens[a] + 2 * p[a]))) as Vec3;
  const xp = padSpatial(x, p, extra);
  const [, Dp, Hp, Wp] = xp.shape;
  const cols: tf.Tensor2D[] = [];
  for (let kz = 0; kz < kD; kz++) {
    const xz = strided(xp.reshape([B, Dp, Hp * Wp * Ci]), kz, s[0], out[0]); // [B, Do, Hp·Wp·Ci]
    for (let ky = 0; ky < kH; ky++) {
      const xy = strided(xz.reshape([B * out[0], Hp, Wp * Ci]), ky, s[1], out[1]); // [B·Do, Ho, Wp·Ci]
      for (let kx = 0; kx < kW; kx++) {
        const xx = strided(xy.reshape([B * out[0] * out[1], Wp, Ci]), kx, s[2], out[2]); // [B·Do·Ho, Wo, Ci]
        cols.push(xx.reshape([-1, Ci]));
      }
    }
  }
  const im = cols.length === 1 ? cols[0] : tf.concat(cols, 1); // [P, kD·kH·kW·Ci], taps ordered (kz, ky, kx)
  const y = tf.matMul(im, w.reshape([kD * kH * kW * Ci, Co]));
  return y.reshape([B, out[0], out[1], out[2], Co]);
}

function conv3d(x: tf.Tensor5D, w: tf.Tensor5D, b: tf.Tensor1D | null, spec: Conv3dSpec): tf.Tensor5D {
  // spec.inputGrad is a permission to skip dX, not a requirement: the reference always computes it.
  const y =
    tf.getBackend() === "wasm"
      ? conv3dIm2col(x, w, spec)
      : tf.conv3d(padSpatial(x, spec.padding), w, spec.stride, "valid");
  return b ? tf.add(y, b) : y;
}

/** Pad trailing planes (output padding) on each spatial axis of y [B, D, H, W, C]. */
function padTrailing(y: tf.Tensor5D, extra: Vec3): tf.Tensor5D {
  if (extra.every((v) => v === 0)) return y;
  return tf.pad(y, [
    [0, 0],
    [0, extra[0]],
    [0, extra[1]],
    [0, extra[2]],
    [0, 0],
  ]);
}

function checkConvTranspose(x: tf.Tensor5D, w: tf.Tensor5D): void {
  if (x.shape[4] !== w.shape[4]) {
    throw new Error(`convTranspose3d: x has ${x.shape[4]} channels but w [kD,kH,kW,Co,Ci] expects Ci=${w.shape[4]}`);
  }
}

function convTranspose3d(
  x: tf.Tensor5D,
  w: tf.Tensor5D,
  b: tf.Tensor1D | null,
  outputPadding: Vec3 = [0, 0, 0],
): tf.Tensor5D {
  checkConvTranspose(x, w);
  const [B, D, H, W, Ci] = x.shape;
  const [kD, kH, kW, Co] = w.shape;
  const z = tf.matMul(x.reshape([B * D * H * W, Ci]), convTransposeMatrix(w)) as tf.Tensor2D; // [P, (kD,kH,kW,Co)]
  const y = padTrailing(depthToSpace3d(z, [B, D, H, W], [kD, kH, kW], Co), outputPadding);
  return b ? tf.add(y, b) : y;
}

function windowAttention(q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, args: WindowAttentionArgs): tf.Tensor2D {
  checkAttention(q, args);
  const { numWindows: nW, tokens: N, heads: h, scale } = args;
  const C = q.shape[1];
  const d = C / h;
  const split = (t: tf.Tensor2D) => tf.transpose(t.reshape([nW, N, h, d]), [0, 2, 1, 3]).reshape([nW * h, N, d]);
  let s = tf.matMul(tf.mul(split(q), scale), split(k), false, true).reshape([nW, h, N, N]); // [w, h, i, j]
  if (args.bias) s = tf.add(s, args.bias.reshape([1, h, N, N]));
  if (args.mask) s = tf.add(s, windowMask(args.mask, nW).reshape([nW, 1, N, N]));
  const o = tf.matMul(tf.softmax(s).reshape([nW * h, N, N]), split(v)); // [(w, h), i, d]
  return tf.transpose(o.reshape([nW, h, N, d]), [0, 2, 1, 3]).reshape([nW * N, C]);
}

function gatherRows(table: tf.Tensor2D, index: tf.Tensor1D): tf.Tensor2D {
  if (tf.getBackend() !== "wasm") return tf.gather(table, index);
  const [R, C] = table.shape;
  const M = index.shape[0];
  if (R * M <= PLAIN_ONE_HOT_MAX) return tf.matMul(tf.oneHot(index, R).toFloat(), table) as tf.Tensor2D; // [M, R] @ [R, C]
  return customOp<tf.Tensor2D>([table], ([t]) => ({
    value: tf.gather(t, index) as tf.Tensor2D,
    gradFunc: (dy) => [tf.scatterND(index.reshape([M, 1]), dy, [R, C])],
  }));
}

function layerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta);
}

function gelu<T extends tf.Tensor>(x: T): T {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

function roll(x: tf.Tensor5D, shifts: Vec3): tf.Tensor5D {
  let y = x;
  for (let a = 0; a < 3; a++) y = rollAxis(y, a + 1, shifts[a]);
  return y;
}

/** Plain tfjs ops with autodiff: the reference implementation and the choice on the `tensorflow` backend. */
export const plainOps: Ops = {
  name: "plain",
  instanceNormAct: instanceNormActPlain,
  linear,
  conv3d,
  convTranspose3d,
  windowAttention,
  gatherRows,
  layerNorm,
  gelu,
  roll,
};
