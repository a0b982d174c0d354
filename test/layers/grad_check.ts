// Helpers for value + gradient comparisons between op implementations (and backends).
import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { Conv3dSpec } from "../../src/layers/ops";

/** Max |a − b| / max |b| (b is the reference). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "size mismatch");
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / (m || 1);
}

/** Deterministic pseudo-random data in [-scale, scale). */
export function randomData(shape: number[], seed: number, scale = 1): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

export interface Input {
  data: Float32Array | Int32Array;
  shape: number[];
  /** Differentiate w.r.t. this input (default: true for float inputs). */
  grad?: boolean;
}

export const input = (shape: number[], seed: number, scale = 1): Input => ({
  data: randomData(shape, seed, scale),
  shape,
});

/** The value of f and its gradients for the loss Σ f(...)·R (R fixed, pseudo-random), as tensors. */
export function valueAndGradTensors(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: Input[]): tf.Tensor[] {
  const ts = inputs.map((i) =>
    i.data instanceof Int32Array ? tf.tensor(i.data, i.shape, "int32") : tf.tensor(i.data, i.shape),
  );
  const wrt = inputs.map((i, k) => ((i.grad ?? !(i.data instanceof Int32Array)) ? k : -1)).filter((k) => k >= 0);
  const y = f(...ts);
  const r = tf.tensor(randomData(y.shape, 99), y.shape);
  const loss = (...vs: tf.Tensor[]) => {
    const all = ts.slice();
    wrt.forEach((k, j) => (all[k] = vs[j]));
    return tf.sum(tf.mul(f(...all), r));
  };
  return [y, ...tf.grads(loss)(wrt.map((k) => ts[k]))];
}

/**
 * valueAndGradTensors read back as plain arrays, so results from different backends can be compared (synchronous
 * reads: not for webgpu, whose tests read the tensors with await data()).
 */
export function valueAndGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: Input[]): Float32Array[] {
  return tf.tidy(() => valueAndGradTensors(f, inputs).map((t) => t.dataSync() as Float32Array));
}

/** Run fn on another backend and switch back. */
export async function onBackend<T>(name: string, fn: () => T): Promise<T> {
  const prev = tf.getBackend();
  await tf.setBackend(name);
  try {
    return fn();
  } finally {
    await tf.setBackend(prev);
  }
}

/** Assert every array of `got` matches `ref` within tol (relative to max |ref|). */
export function assertClose(
  got: Float32Array[],
  ref: Float32Array[],
  label: string,
  tol = 1e-4,
  skip: number[] = [],
): void {
  assert.equal(got.length, ref.length, `${label}: ${got.length} outputs vs ${ref.length}`);
  got.forEach((g, i) => {
    if (skip.includes(i)) return;
    const e = relErr(g, ref[i]);
    assert.ok(e <= tol, `${label}: ${i === 0 ? "value" : `grad ${i - 1}`} rel err ${e.toExponential(2)} > ${tol}`);
  });
}

/** numTensors must not grow over repeated fwd+bwd (after a warm-up call that may fill constant caches). */
export function assertNoLeak(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], label: string, reps = 3): void {
  const step = () =>
    tf.tidy(() => {
      const g = tf.grads((...xs: tf.Tensor[]) => tf.sum(f(...xs)))(inputs);
      tf.dispose(g);
    });
  step();
  const before = tf.memory().numTensors;
  for (let i = 0; i < reps; i++) step();
  assert.equal(tf.memory().numTensors, before, `${label}: tensors leaked`);
}

/** Conv cases: the strides, kernels and paddings nnFormer uses, with odd sizes and batch 2. */
export const CONV_CASES: { name: string; x: number[]; w: number[]; spec: Conv3dSpec }[] = [
  { name: "k3 s1 p1", x: [1, 5, 6, 4, 3], w: [3, 3, 3, 3, 4], spec: { stride: [1, 1, 1], padding: [1, 1, 1] } },
  {
    name: "k3 s2 p1 odd, batch 2",
    x: [2, 5, 7, 6, 3],
    w: [3, 3, 3, 3, 4],
    spec: { stride: [2, 2, 2], padding: [1, 1, 1] },
  },
  { name: "k3 s(1,2,2) p1", x: [1, 4, 6, 5, 2], w: [3, 3, 3, 2, 3], spec: { stride: [1, 2, 2], padding: [1, 1, 1] } },
  {
    name: "k(1,3,3) s(1,2,2) p(0,1,1)",
    x: [2, 3, 6, 7, 2],
    w: [1, 3, 3, 2, 3],
    spec: { stride: [1, 2, 2], padding: [0, 1, 1] },
  },
  {
    name: "k3 s2 p(0,1,1), D 7->3",
    x: [1, 7, 4, 4, 2],
    w: [3, 3, 3, 2, 3],
    spec: { stride: [2, 2, 2], padding: [0, 1, 1] },
  },
  {
    name: "k3 s1 p1 inputGrad false, batch 2",
    x: [2, 4, 4, 4, 1],
    w: [3, 3, 3, 1, 4],
    spec: { stride: [1, 1, 1], padding: [1, 1, 1], inputGrad: false },
  },
];
