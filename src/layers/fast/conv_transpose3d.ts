// ConvTranspose3d with kernel == stride (docs/wasm-fast-ops.md §3): every input voxel writes its own kD×kH×kW block, so
// the layer is a linear map x [P, Ci] -> [P, (kD, kH, kW, Co)] (custom-grad linear, bias fused as a tiled row)
// followed by a depth-to-space of two rank-4 transposes, whose autodiff (the inverse transposes) is already cheap.
// Output padding (PyTorch output_padding) appends trailing planes that hold only the bias.
import * as tf from "@tensorflow/tfjs";

import { convTransposeMatrix, customOp, depthToSpace3d } from "../op_helpers";
import { ones2d, r2 } from "./common";
import { addBiasRows, fastLinear, linearTransposedWeight } from "./linear";
import type { Vec3 } from "../../runtime/math";

/** b [Co] tiled K times to [K·Co]; the gradient sums the K copies with a cached ones row (no tf.tile gradient). */
function tileBias(b: tf.Tensor1D, k: number): tf.Tensor1D {
  const co = b.shape[0];
  return customOp<tf.Tensor1D>([b], ([bi]) => ({
    value: tf.tile(bi, [k]) as tf.Tensor1D,
    gradFunc: (dy) => [tf.matMul(ones2d(1, k), r2(dy, [k, co])).reshape([co])],
  }));
}

/** Zero-pads trailing planes on each spatial axis of y [B, D, H, W, C] through rank-3 views. */
function padTrailing3(y: tf.Tensor5D, extra: Vec3): tf.Tensor5D {
  let t: tf.Tensor = y;
  const shape = [...y.shape];
  for (let a = 0; a < 3; a++) {
    if (extra[a] === 0) continue;
    const before = shape.slice(0, a + 1).reduce((p, q) => p * q, 1);
    const after = shape.slice(a + 2).reduce((p, q) => p * q, 1);
    t = tf.pad(t.reshape([before, shape[a + 1], after]), [
      [0, 0],
      [0, extra[a]],
      [0, 0],
    ]);
    shape[a + 1] += extra[a];
  }
  return t.reshape(shape) as tf.Tensor5D;
}

export function fastConvTranspose3d(
  x: tf.Tensor5D,
  w: tf.Tensor5D,
  b: tf.Tensor1D | null,
  outputPadding: Vec3 = [0, 0, 0],
): tf.Tensor5D {
  const [B, D, H, W, ci] = x.shape;
  const [kD, kH, kW, co, wci] = w.shape;
  if (wci !== ci) throw new Error(`convTranspose3d: x has ${ci} channels but w [kD,kH,kW,Co,Ci] expects Ci=${wci}`);
  const k = kD * kH * kW;
  const padded = outputPadding.some((v) => v !== 0);
  // with output padding the bias must also cover the padded planes, so it is added after the pad
  const fusedBias = b && !padded ? tileBias(b, k) : null;
  const p = B * D * H * W;
  const xm = r2(x, [p, ci]);
  // few voxels (deep stages): keep the weight in its stored [(kD,kH,kW,Co), Ci] layout instead of transposing it
  const z =
    p * (ci + k * co) < ci * k * co
      ? linearTransposedWeight(xm, r2(w, [k * co, ci]), fusedBias)
      : fastLinear(xm, convTransposeMatrix(w), fusedBias); // [P, (kD,kH,kW,Co)]
  const y = depthToSpace3d(z, [B, D, H, W], [kD, kH, kW], co);
  if (!padded) return y;
  const yp = padTrailing3(y, outputPadding);
  if (!b) return yp;
  return addBiasRows(r2(yp, [yp.size / co, co]), b).reshape(yp.shape) as tf.Tensor5D;
}
