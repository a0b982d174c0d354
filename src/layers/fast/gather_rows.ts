// table[index] with a gradient that works on wasm (tf.gather's own gradient needs UnsortedSegmentSum, which the
// wasm backend lacks). Forward: tf.gather. Backward: dTable [R, C] = Σ over rows m with index[m] = r of dY[m],
// by default as tf.scatterND (which sums duplicate indices). The alternative, oneHot(index)ᵀ [R, M] @ dY [M, C],
// lost everywhere we measured on wasm fwd+bwd (shared CPU): rel-pos table [343,3] -> [4096,3]: one-hot 36 ms,
// scatter 1.7 ms; [343,24] -> [4096,24]: 26 vs 6 ms; [2000,48] -> [2000,48]: 48 vs 8 ms (building and transposing the
// one-hot costs more than the whole scatter). It stays available for tests.
import * as tf from "@tensorflow/tfjs";
import { r2 } from "./common";
import { customOp } from "../op_helpers";

export type GatherBackward = "scatter" | "oneHot";

export function fastGatherRows(
  table: tf.Tensor2D,
  index: tf.Tensor1D,
  backward: GatherBackward = "scatter",
): tf.Tensor2D {
  const [R, C] = table.shape;
  const M = index.shape[0];
  return customOp<tf.Tensor2D>([table], ([t]) => ({
    value: tf.gather(t, index) as tf.Tensor2D,
    gradFunc: (dy) => [
      backward === "oneHot"
        ? tf.matMul(tf.transpose(tf.oneHot(index, R).toFloat()), dy)
        : tf.scatterND(r2(index, [M, 1]), dy, [R, C]),
    ],
  }));
}
