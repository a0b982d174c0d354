// Helpers shared by both Ops implementations (plain_ops.ts and fast/*): custom-gradient nodes, convolution
// geometry, the depth-to-space and kernel-matrix views of a transposed conv, window masks, attention argument
// checks and torch.roll of one axis. This file sits below both, so neither implementation imports the other.
import * as tf from "@tensorflow/tfjs";
import { prod } from "../runtime/math";
import { WindowAttentionArgs } from "./ops";
import type { Vec3 } from "../runtime/math";

/** What a customGrad body returns: the value and one gradient per input, in input order. */
export interface GradResult<T extends tf.Tensor> {
  value: T;
  gradFunc: (dy: T, saved: tf.Tensor[]) => tf.Tensor[];
}

/**
 * Run `body` as one tf.customGrad node over `inputs`. Gradients flow only to `inputs`; anything else the body
 * closes over (indices, masks, geometry) is treated as a constant. Tensors the backward needs must go through
 * `save`: the forward runs inside a tidy.
 */
export function customOp<T extends tf.Tensor>(
  inputs: tf.Tensor[],
  body: (xs: tf.Tensor[], save: tf.GradSaveFunc) => GradResult<T>,
): T {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const r = body(args.slice(0, -1) as tf.Tensor[], save);
    // tfjs runs a custom gradient outside any tidy scope: without this one, every temporary of the backward would
    // live until the whole backward pass ends (enough to exhaust wasm's 4 GB heap on larger networks)
    return {
      value: r.value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => r.gradFunc(dy as T, saved)),
    };
  });
  return f(...inputs) as T;
}

/** PyTorch output length of a convolution along one axis. */
export function convOutLength(len: number, kernel: number, stride: number, pad: number): number {
  return Math.floor((len + 2 * pad - kernel) / stride) + 1;
}

/**
 * Depth-to-space of z [B·D·H·W, (a, b, c, Co)] to [B, D·kD, H·kH, W·kW, Co] by two rank-4 transposes.
 * Shared with fastOps (its autodiff, the inverse transposes, is already cheap).
 */
export function depthToSpace3d(
  z: tf.Tensor2D,
  dims: [number, number, number, number],
  k: Vec3,
  co: number,
): tf.Tensor5D {
  const [B, D, H, W] = dims;
  const [kD, kH, kW] = k;
  const z1 = tf.transpose(z.reshape([B * D, H * W, kD, kH * kW * co]), [0, 2, 1, 3]); // [(B,D), kD, (H,W), (kH,kW,Co)]
  const z2 = tf.transpose(z1.reshape([B * D * kD * H, W, kH, kW * co]), [0, 2, 1, 3]); // [(B,D,kD,H), kH, W, (kW,Co)]
  return z2.reshape([B, D * kD, H * kH, W * kW, co]);
}

/** The [Ci, (kD, kH, kW, Co)] matrix of a kernel == stride transposed conv with weight [kD, kH, kW, Co, Ci]. */
export function convTransposeMatrix(w: tf.Tensor5D): tf.Tensor2D {
  const [kD, kH, kW, Co, Ci] = w.shape;
  return tf.transpose(w.reshape([kD * kH * kW * Co, Ci])) as tf.Tensor2D; // [Ci, (kD,kH,kW,Co)]
}

/** The mask rows of each window, [numWindows, N, N] (window w uses mask[w % nMask]). */
export function windowMask(mask: tf.Tensor3D, numWindows: number): tf.Tensor3D {
  const nMask = mask.shape[0];
  if (nMask === numWindows) return mask;
  // concat rather than tf.tile: wasm's Tile kernel costs ~70 ns per element
  if (numWindows % nMask === 0) return tf.concat(new Array<tf.Tensor3D>(numWindows / nMask).fill(mask), 0);
  return tf.tidy(() =>
    tf.gather(
      mask,
      tf.tensor1d(
        Array.from({ length: numWindows }, (_, w) => w % nMask),
        "int32",
      ),
    ),
  );
}

export function checkAttention(q: tf.Tensor2D, args: WindowAttentionArgs): void {
  const { numWindows: nW, tokens: N, heads } = args;
  if (q.shape[0] !== nW * N)
    throw new Error(`windowAttention: q has ${q.shape[0]} rows, expected numWindows·tokens = ${nW * N}`);
  if (q.shape[1] % heads !== 0) throw new Error(`windowAttention: C=${q.shape[1]} is not divisible by heads=${heads}`);
  if (args.bias && (args.bias.shape[0] !== heads || args.bias.shape[1] !== N || args.bias.shape[2] !== N)) {
    throw new Error(`windowAttention: bias must be [heads, N, N] = [${heads}, ${N}, ${N}], got [${args.bias.shape}]`);
  }
  if (args.mask && (args.mask.shape[1] !== N || args.mask.shape[2] !== N)) {
    throw new Error(`windowAttention: mask must be [nMask, ${N}, ${N}], got [${args.mask.shape}]`);
  }
}

/** torch.roll of one spatial axis (1..3) of x [B, D, H, W, C], via a rank-2 view [before, n·after]. */
export function rollAxis<T extends tf.Tensor>(x: T, axis: number, shift: number): T {
  const shape = x.shape;
  const n = shape[axis];
  const s = ((shift % n) + n) % n;
  if (s === 0) return x;
  const before = prod(shape.slice(0, axis));
  const after = prod(shape.slice(axis + 1));
  const v = x.reshape([before, n * after]);
  const tail = tf.slice(v, [0, (n - s) * after], [before, s * after]); // out[0 .. s) = x[n-s .. n)
  const head = tf.slice(v, [0, 0], [before, (n - s) * after]);
  return tf.concat([tail, head], 1).reshape(shape) as T;
}
