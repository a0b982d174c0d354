// The fast ops on the webgpu backend. tfjs-webgpu's batched matMul is its tiled, shared-memory kernel, while the
// grouped depthwise-conv form fastOps uses for attention (built for XNNPACK on wasm) runs as a naive per-element
// shader there. So on webgpu window attention is written with batched matMuls, with a hand-written gradient that
// reuses the softmax output; everything else is fastOps as is (convolutions are already per-slice conv2d, which
// tfjs-webgpu runs as an implicit-GEMM matmul shader, and no rank-5 tensor reaches a faulty kernel).
import * as tf from "@tensorflow/tfjs";
import { Ops, WindowAttentionArgs } from "./ops";
import { checkAttention, windowMask } from "./op_helpers";
import { instanceNormAct } from "./conv_blocks3d";
import { customOp, r3, r4 } from "./fast/common";
import { fastConv3d } from "./fast/conv3d";
import { fastConvTranspose3d } from "./fast/conv_transpose3d";
import { fastGatherRows } from "./fast/gather_rows";
import { fastLinear } from "./fast/linear";
import { fastGelu, fastLayerNorm } from "./fast/norm_act";
import { fastRoll } from "./fast/roll";

/**
 * softmax(q·kᵀ·scale + bias + mask)·v per (window, head) g as batched matMuls over [G, N, d] (G = nW·h).
 * Backward: dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = scale·dS·K, dK = dSᵀ·(scale·Q),
 * dBias = Σ_w dS.
 */
export function batchedWindowAttention(
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  v: tf.Tensor2D,
  args: WindowAttentionArgs,
): tf.Tensor2D {
  checkAttention(q, args);
  const { numWindows: nW, tokens: N, heads: h, scale, bias, mask } = args;
  const C = q.shape[1];
  const d = C / h;
  const G = nW * h;
  const split = (t: tf.Tensor) => r3(tf.transpose(r4(t, [nW, N, h, d]), [0, 2, 1, 3]), [G, N, d]); // [(w, h), n, d]
  const merge = (t: tf.Tensor) => tf.transpose(r4(t, [nW, h, N, d]), [0, 2, 1, 3]).reshape([nW * N, C]) as tf.Tensor2D;
  const inputs = bias ? [q, k, v, bias] : [q, k, v];
  return customOp<tf.Tensor2D>(inputs, ([qi, ki, vi, bi], save) => {
    const qs = split(tf.mul(qi, scale)); // [G, i, d]
    const kh = split(ki); // [G, j, d]
    const vh = split(vi); // [G, j, d]
    let s: tf.Tensor = r4(tf.matMul(qs, kh, false, true), [nW, h, N, N]); // [w, h, i, j]
    if (bi) s = tf.add(s, r4(bi, [1, h, N, N]));
    if (mask) s = tf.add(s, r4(windowMask(mask, nW), [nW, 1, N, N]));
    const p = r3(tf.softmax(s), [G, N, N]); // [G, i, j]
    save([qs, kh, vh, p]);
    return {
      value: merge(tf.matMul(p, vh)),
      gradFunc: (dO, [qsv, khv, vhv, pv]) => {
        const p3 = pv as tf.Tensor3D;
        const dOh = split(dO); // [G, i, d]
        const dV = tf.matMul(p3, dOh, true, false); // [G, j, d]
        const dP = tf.matMul(dOh, vhv as tf.Tensor3D, false, true); // [G, i, j]
        const dS = tf.mul(p3, tf.sub(dP, tf.sum(tf.mul(dP, p3), -1, true))) as tf.Tensor3D;
        const dQ = tf.mul(tf.matMul(dS, khv as tf.Tensor3D), scale); // [G, i, d]
        const dK = tf.matMul(dS, qsv as tf.Tensor3D, true, false); // [G, j, d]
        const grads: tf.Tensor[] = [merge(dQ), merge(dK), merge(dV)];
        if (bi) grads.push(tf.sum(r4(dS, [nW, h, N, N]), 0));
        return grads;
      },
    };
  });
}

/** fastOps with window attention as batched matMuls: the choice on webgpu. */
export const webgpuOps: Ops = {
  name: "fast",
  instanceNormAct: (x, gamma, beta, act) => instanceNormAct(x, gamma, beta, act),
  linear: fastLinear,
  conv3d: (x, w, b, spec) => fastConv3d(x, w, b, spec),
  convTranspose3d: fastConvTranspose3d,
  windowAttention: batchedWindowAttention,
  gatherRows: (table, index) => fastGatherRows(table, index),
  layerNorm: fastLayerNorm,
  gelu: fastGelu,
  roll: fastRoll,
};
