// Linear layer y = x·W + b with a hand-written gradient (docs/wasm-fast-ops.md §1).
// Only a rank-2 matMul without transpose flags reaches XNNPACK on wasm, and matMul's autodiff uses the flags, so:
//   forward: tf.fused.matMul (bias fused into the GEMM)
//   dX     : dY @ transpose(W)
//   dW, db : XNNPACK re-packs the right operand of every matMul whose B tensor is new, so the narrower of x / dY
//            is packed and the other transposed; db comes from a matMul with a cached ones tensor (tf.sum over
//            axis 0 is ~15x slower on wasm).
import * as tf from "@tensorflow/tfjs";
import { columnSum, ones2d, transpose2d } from "./common";
import { customOp } from "../op_helpers";

/** dW [Cin, Cout] and (optionally) db [Cout] of y = x·W + b, from x [T, Cin] and dY [T, Cout]. */
function linearParamGrads(x: tf.Tensor2D, dy: tf.Tensor2D, withBias: boolean): tf.Tensor[] {
  const [T, ci] = x.shape;
  const co = dy.shape[1];
  // with fewer tokens than input channels (deep stages) the [Cout, Cin] result would be the biggest thing to transpose
  if (co >= ci && T >= ci) {
    const dyT = transpose2d(dy); // [Cout, T]
    const dw = tf.transpose(tf.matMul(dyT, x)); // x [T, Cin] is the packed operand
    return withBias ? [dw, tf.matMul(dyT, ones2d(T, 1)).reshape([co])] : [dw];
  }
  const xT = transpose2d(x); // [Cin, T]
  if (!withBias) return [tf.matMul(xT, dy)];
  const g = tf.matMul(tf.concat([xT, ones2d(1, T)], 0), dy); // [Cin + 1, Cout], dY is the packed operand
  return [tf.slice(g, [0, 0], [ci, co]), tf.slice(g, [ci, 0], [1, co]).reshape([co])];
}

/**
 * dX = dY·Wᵀ for dY [T, Cout], W [Cin, Cout]. Either W is transposed (Cin·Cout elements, and Wᵀ is packed as the
 * right operand), or, when the token count is small (deep stages: T = 16 against a [1536, 384] weight),
 * dXᵀ = W·dYᵀ keeps W as the left operand (never packed) and transposes only the two thin T-row matrices.
 */
function linearInputGrad(dy: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  const [t, co] = dy.shape;
  const ci = w.shape[0];
  if (t * (ci + co) < ci * co) return tf.transpose(tf.matMul(w, tf.transpose(dy))) as tf.Tensor2D;
  return tf.matMul(dy, tf.transpose(w));
}

/** y = x·w + b for x [T, Cin], w [Cin, Cout], b [Cout] or null, with a custom gradient. */
export function fastLinear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D | null): tf.Tensor2D {
  const inputs = b ? [x, w, b] : [x, w];
  return customOp<tf.Tensor2D>(inputs, ([xi, wi, bi], save) => {
    save([xi, wi]);
    return {
      value: tf.fused.matMul({ a: xi as tf.Tensor2D, b: wi as tf.Tensor2D, bias: bi }) as tf.Tensor2D,
      gradFunc: (dy, [xs, ws]) => [
        linearInputGrad(dy, ws as tf.Tensor2D),
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

/**
 * y = x·wtᵀ + b for x [T, Cin] and a weight stored transposed, wt [Cout, Cin], with few tokens (T·(Cin + Cout) <
 * Cin·Cout; the deep transposed convolutions: T = 16 against [1536, 384]). The weight is never transposed: the forward
 * is (wt·xᵀ)ᵀ with wt as the left operand, dX = dY·wt and dWt = dYᵀ·x; only the thin T-row matrices are transposed.
 */
export function linearTransposedWeight(x: tf.Tensor2D, wt: tf.Tensor2D, b: tf.Tensor1D | null): tf.Tensor2D {
  const inputs = b ? [x, wt, b] : [x, wt];
  return customOp<tf.Tensor2D>(inputs, ([xi, wi, bi], save) => {
    save([xi, wi]);
    const y = tf.transpose(tf.matMul(wi as tf.Tensor2D, tf.transpose(xi))) as tf.Tensor2D; // [T, Cout]
    return {
      value: bi ? (tf.add(y, bi) as tf.Tensor2D) : y,
      gradFunc: (dy, [xs, ws]) => {
        const grads: tf.Tensor[] = [tf.matMul(dy, ws as tf.Tensor2D), tf.matMul(tf.transpose(dy), xs as tf.Tensor2D)];
        if (bi) grads.push(columnSum(dy));
        return grads;
      },
    };
  });
}
