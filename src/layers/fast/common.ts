// Shared helpers for the hand-written-gradient ops (see docs/wasm-fast-ops.md): cached constants, column sums,
// padding/cropping views, typed reshapes and a fast 2-D transpose.
import * as tf from "@tensorflow/tfjs";

// customOp lives in ../op_helpers.ts (plain ops use it too); re-exported for the modules that import it from here.
export { customOp } from "../op_helpers";

// Constants kept across calls, one per backend and key. XNNPACK caches its packed right-hand operand per
// tensor, so a cached `ones` or selection matrix is packed once instead of every step.
const constants = new Map<string, tf.Tensor>();

/** A kept constant built once per (backend, key); `make` runs inside a tidy. */
export function cachedConstant<T extends tf.Tensor>(key: string, make: () => T): T {
  const k = `${tf.getBackend()}|${key}`;
  let t = constants.get(k);
  if (!t || t.isDisposed) {
    t = tf.keep(tf.tidy(make));
    constants.set(k, t);
  }
  return t as T;
}

/** Dispose every cached constant (they are rebuilt on demand). */
export function disposeCachedConstants(): void {
  for (const t of constants.values()) t.dispose();
  constants.clear();
}

/** A cached [rows, cols] tensor of ones. */
export function ones2d(rows: number, cols: number): tf.Tensor2D {
  return cachedConstant(`ones:${rows}x${cols}`, () => tf.ones([rows, cols]) as tf.Tensor2D);
}

/** Row block of columnSum's first stage. */
const COLSUM_BLOCK = 64;

/**
 * Column sums of a [R, C] matrix. On wasm tf.sum(m, 0) transposes internally and is ~10x slower than a matMul with a
 * cached ones row, and ones[1, R] @ m re-packs all of m for XNNPACK (~4 ns per element). For tall m the sum runs in
 * two stages: ones[1, b] @ m viewed as [R/b, b, C] (a broadcast batched matMul: the plain loop, but no packing), then
 * ones[1, R/b] @ the [R/b, C] partial sums. Measured on wasm: [8192, 48] 0.55 ms against 1.26 ms, [32768, 24] 0.91
 * against 2.30 ms.
 */
export function columnSum(m: tf.Tensor2D): tf.Tensor1D {
  const [r, c] = m.shape;
  const b = COLSUM_BLOCK;
  if (r < 8 * b || r % b !== 0) return tf.matMul(ones2d(1, r), m).reshape([c]);
  const ones = cachedConstant(`ones:1x1x${b}`, () => tf.ones([1, 1, b]) as tf.Tensor3D);
  const partial = tf.matMul(ones, r3(m, [r / b, b, c])); // [R/b, 1, C]
  return tf.matMul(ones2d(1, r / b), r2(partial, [r / b, c])).reshape([c]);
}

/**
 * Place `t` viewed as [A, n, R] at offset `start` of a new axis of length `len`: zero-pads where start > 0 or the
 * end is short, crops where start < 0 or t runs past len. Rank-3 views keep tfjs-wasm's pad/slice on fast paths.
 */
export function fitAxis(t: tf.Tensor3D, start: number, len: number): tf.Tensor3D {
  const [a, n, r] = t.shape;
  const padStart = Math.max(0, start);
  const cropStart = Math.max(0, -start);
  const padEnd = Math.max(0, len - (start + n));
  let out = t;
  if (padStart > 0 || padEnd > 0)
    out = tf.pad(out, [
      [0, 0],
      [padStart, padEnd],
      [0, 0],
    ]);
  const have = out.shape[1];
  if (cropStart > 0 || have - cropStart > len) out = tf.slice(out, [0, cropStart, 0], [a, len, r]);
  return out;
}

/** Typed reshapes (tfjs cannot infer the rank of `t.reshape([...])`). */
export const r2 = (t: tf.Tensor, s: [number, number]) => tf.reshape(t, s) as tf.Tensor2D;
export const r3 = (t: tf.Tensor, s: [number, number, number]) => tf.reshape(t, s) as tf.Tensor3D;
export const r4 = (t: tf.Tensor, s: [number, number, number, number]) => tf.reshape(t, s) as tf.Tensor4D;
export const r5 = (t: tf.Tensor, s: [number, number, number, number, number]) => tf.reshape(t, s) as tf.Tensor5D;

/**
 * Transpose of a 2-D tensor. tfjs-wasm's rank-2 Transpose is cache-hostile on tall matrices (measured 20-25 ns per
 * element for [8192, 144], against 0.9 for [144, 8192]); cutting the rows into blocks of b and doing two rank-3
 * transposes ([T/b, b, C] -> [T/b, C, b] -> [C, T/b, b]) takes ~1 ns per element, 10-30x faster.
 */
export function transpose2d(x: tf.Tensor2D): tf.Tensor2D {
  const [t, c] = x.shape;
  if (t < 256 || c < 8) return tf.transpose(x);
  const b = [32, 16, 8].find((v) => t % v === 0);
  if (!b) return tf.transpose(x);
  const blocks = tf.transpose(r3(x, [t / b, b, c]), [0, 2, 1]); // [T/b, C, b]
  return r2(tf.transpose(blocks, [1, 0, 2]), [c, t]); // [C, T/b, b] = [C, T]
}
