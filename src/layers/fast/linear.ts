// Linear layer y = x·W + b with a hand-written gradient (wasm-fast-ops.md §1).
// Only a rank-2 matMul without transpose flags reaches XNNPACK on wasm, and matMul's autodiff uses the flags, so:
//   forward: tf.fused.matMul (bias fused into the GEMM)
//   dX     : dY @ transpose(W)
//   dW, db : XNNPACK re-packs the right operand of every matMul whose B tensor is new, so the narrower of x / dY
//            is packed and the other transposed; db comes from a matMul with a cached ones tensor (tf.sum over
//            axis 0 is ~15x slower on wasm).
import * as tf from "@tensorflow/tfjs";
import { customOp, ones2d, transpose2d } from "./common";

/** dW [Cin, Cout] and (optionally) db [Cout] of y = x·W + b, from x [T, Cin] and dY [T, Cout]. */
export function linearParamGrads(x: tf.Tensor2D, dy: tf.Tensor2D, withBias: boolean): tf.Tensor[] {
  const [T, ci] = x.shape;
  const co = dy.shape[1];
  if (co >= ci) {
    const dyT = transpose2d(dy); // [Cout, T]
    const dw = tf.transpose(tf.matMul(dyT, x)); // x [T, Cin] is the packed operand
    return withBias ? [dw, tf.matMul(dyT, ones2d(T, 1)).reshape([co])] : [dw];
  }
  const xT = transpose2d(x); // [Cin, T]
  if (!withBias) return [tf.matMul(xT, dy)];
  const g = tf.matMul(tf.concat([xT, ones2d(1, T)], 0), dy); // [Cin + 1, Cout], dY is the packed operand
  return [tf.slice(g, [0, 0], [ci, co]), tf.slice(g, [ci, 0], [1, co]).reshape([co])];
}

/** y = x·w + b for x [T, Cin], w [Cin, Cout], b [Cout] or null, with a custom gradient. */
export function fastLinear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D | null): tf.Tensor2D {
  const inputs = b ? [x, w, b] : [x, w];
  return customOp<tf.Tensor2D>(inputs, ([xi, wi, bi], save) => {
    save([xi, wi]);
    return {
      value: tf.fused.matMul({ a: xi as tf.Tensor2D, b: wi as tf.Tensor2D, bias: bi }) as tf.Tensor2D,
      gradFunc: (dy, [xs, ws]) => [
        tf.matMul(dy, tf.transpose(ws)),
        ...linearParamGrads(xs as tf.Tensor2D, dy, Boolean(bi)),
      ],
    };
  });
}

/**
 * x [R, C] + b [C] with db by a matMul with cached ones (for biases that cannot be fused into a GEMM).
 */
export function addBiasRows(x: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  return customOp<tf.Tensor2D>([x, b], ([xi, bi]) => ({
    value: tf.add(xi, bi),
    gradFunc: (dy) => [dy, tf.matMul(ones2d(1, dy.shape[0]), dy).reshape([dy.shape[1]])],
  }));
}
