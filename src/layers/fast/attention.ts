// Window attention softmax(q·kᵀ·scale + bias + mask)·v with a hand-written gradient (docs/wasm-fast-ops.md §4).
// A batched matMul never reaches XNNPACK on wasm, but a depthwise conv does: for g = (window, head),
// C[g] = A[g]·B[g] is ONE tf.depthwiseConv2d with input A laid out [1, m, k, g] and filter B laid out [1, k, g, n]
// (channel multiplier n), 'valid' -> [1, m, 1, g·n] = C laid out [m, g, n]; XNNPACK runs it as a grouped GEMM.
// Layouts below are picked so the big [N, g, N] tensors (scores, probabilities) are transposed as rarely as possible.
// q, k, v are token-major [nW·N, C] = [w, n, h, d]; i/j index query/key tokens.
import * as tf from "@tensorflow/tfjs";
import { WindowAttentionArgs } from "../ops";
import { checkAttention, customOp, windowMask } from "../op_helpers";
import { cachedConstant, r3, r4 } from "./common";

/** C [m, g, n] = A [m, k, g] · B [k, g, n] per group g, as one depthwise convolution. */
function groupedMatMul(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  const [m, k, g] = a.shape;
  const n = b.shape[2];
  return r3(tf.depthwiseConv2d(r4(a, [1, m, k, g]), r4(b, [1, k, g, n]), 1, "valid"), [m, g, n]);
}

export function fastWindowAttention(
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
  const view = (t: tf.Tensor) => r4(t, [nW, N, h, d]); // [w, n, h, d]
  /** [i, w, (h, d)] -> tokens [nW·N, C] */
  const fromIG = (t: tf.Tensor) => tf.transpose(r3(t, [N, nW, C]), [1, 0, 2]).reshape([nW * N, C]);
  /** [d, (w, h), j] -> tokens */
  const fromDG = (t: tf.Tensor) => tf.transpose(r4(t, [d, nW, h, N]), [1, 3, 2, 0]).reshape([nW * N, C]);
  const inputs = bias ? [q, k, v, bias] : [q, k, v];
  return customOp<tf.Tensor2D>(inputs, ([qi, ki, vi, bi], save) => {
    const qs = tf.mul(qi, scale);
    const qa = r3(tf.transpose(view(qs), [1, 3, 0, 2]), [N, d, G]); // [i, d, g]
    const kb = r3(tf.transpose(view(ki), [3, 0, 2, 1]), [d, G, N]); // [d, g, j]
    let s: tf.Tensor = r4(groupedMatMul(qa, kb), [N, nW, h, N]); // [i, w, h, j]
    if (bi) s = tf.add(s, r4(tf.transpose(bi, [1, 0, 2]), [N, 1, h, N]));
    if (mask) s = tf.add(s, r4(tf.transpose(windowMask(mask, nW), [1, 0, 2]), [N, nW, 1, N]));
    const p = r3(tf.softmax(s), [N, G, N]); // [i, g, j]
    const vb = r3(tf.transpose(view(vi), [1, 0, 2, 3]), [N, G, d]); // [j, g, e]
    const o = groupedMatMul(r3(tf.transpose(p, [0, 2, 1]), [N, N, G]), vb); // [i, g, e]
    save([qs, ki, vi, p]);
    return {
      value: fromIG(o) as tf.Tensor2D,
      gradFunc: (dO, [qsv, kv, vv, pv]) => {
        const pr = pv as tf.Tensor3D;
        const dOa = r3(tf.transpose(view(dO), [1, 3, 0, 2]), [N, d, G]); // [i, e, g]
        const vt = r3(tf.transpose(view(vv), [3, 0, 2, 1]), [d, G, N]); // [e, g, j]
        const dP = groupedMatMul(dOa, vt); // [i, g, j]
        const dS = tf.mul(pr, tf.sub(dP, tf.sum(tf.mul(dP, pr), -1, true))) as tf.Tensor3D; // softmax backward
        // dvᵀ[e, g, j] = Σ_i dO[g, i, e]·P[g, i, j] and dkᵀ[d, g, j] = Σ_i q[g, i, d]·dS[g, i, j]: P and dS serve as
        // the filter in their native layout
        const dOe = r3(tf.transpose(view(dO), [3, 1, 0, 2]), [d, N, G]); // [e, i, g]
        const dvT = groupedMatMul(dOe, pr); // [e, g, j]
        const qe = r3(tf.transpose(view(qsv), [3, 1, 0, 2]), [d, N, G]); // [d, i, g]
        const dkT = groupedMatMul(qe, dS); // [d, g, j]
        // dq[g, i, d] = Σ_j dS[g, i, j]·k[g, j, d]
        const kc = r3(tf.transpose(view(kv), [1, 0, 2, 3]), [N, G, d]); // [j, g, d]
        const dq = groupedMatMul(r3(tf.transpose(dS, [0, 2, 1]), [N, N, G]), kc); // [i, g, d]
        const grads: tf.Tensor[] = [tf.mul(fromIG(dq), scale), fromDG(dkT), fromDG(dvT)];
        if (bi) {
          // dBias[h, i, j] = Σ_w dS[i, w, h, j]: ones[1, nW] @ dS as [i][w, (h, j)], a broadcast batched matMul (the
          // plain loop, but no transpose of the big dS and no packing: 1.5 ms against 6.5 ms at stage 0)
          const ones = cachedConstant(`ones:1x1x${nW}`, () => tf.ones([1, 1, nW]) as tf.Tensor3D);
          const db = tf.matMul(ones, r3(dS, [N, nW, h * N])); // [i, 1, (h, j)]
          grads.push(tf.transpose(r3(db, [N, h, N]), [1, 0, 2]));
        }
        return grads;
      },
    };
  });
}
