import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";

// The wasm kernel patches of src/runtime/backend.ts (GatherV2 as heap row copies) against values computed here in JS,
// and clone/saved-tensor semantics the patches must not disturb. On other backends these check the stock kernels.
describe("runtime/backend wasm kernel patches", () => {
  before(async () => {
    await initBackend();
  });

  /** Reference gather of x (flat, row-major `shape`) along `axis` with batchDims. */
  function refGather(
    x: number[],
    shape: number[],
    idx: number[],
    idxShape: number[],
    axis: number,
    batchDims: number,
  ): number[] {
    const batch = shape.slice(0, batchDims).reduce((a, b) => a * b, 1);
    const outer = shape.slice(batchDims, axis).reduce((a, b) => a * b, 1);
    const dim = shape[axis];
    const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const perBatch = idxShape.reduce((a, b) => a * b, 1) / batch;
    const out: number[] = [];
    for (let b = 0; b < batch; b++)
      for (let o = 0; o < outer; o++)
        for (let i = 0; i < perBatch; i++)
          for (let c = 0; c < inner; c++) out.push(x[((b * outer + o) * dim + idx[b * perBatch + i]) * inner + c]);
    return out;
  }

  const cases: Array<{
    shape: number[];
    idxShape: number[];
    axis: number;
    batchDims: number;
    dtype: "float32" | "int32";
  }> = [
    { shape: [50, 48], idxShape: [70], axis: 0, batchDims: 0, dtype: "float32" }, // row copies (slice ≥ 8)
    { shape: [40, 3], idxShape: [90], axis: 0, batchDims: 0, dtype: "float32" }, // element loop (slice < 8)
    { shape: [4, 9, 5], idxShape: [7], axis: 1, batchDims: 0, dtype: "float32" },
    { shape: [3, 6, 10], idxShape: [3, 4], axis: 1, batchDims: 1, dtype: "float32" },
    { shape: [30, 12], idxShape: [2, 5], axis: 0, batchDims: 0, dtype: "int32" },
    { shape: [8, 16], idxShape: [0], axis: 0, batchDims: 0, dtype: "float32" },
  ];
  for (const c of cases) {
    it(`GatherV2 ${c.dtype} [${c.shape}] by [${c.idxShape}] axis ${c.axis} batchDims ${c.batchDims}`, () => {
      const n = c.shape.reduce((a, b) => a * b, 1);
      const x = Array.from({ length: n }, (_, i) => (c.dtype === "int32" ? i * 3 - 7 : Math.sin(i) * 10));
      const m = c.idxShape.reduce((a, b) => a * b, 1);
      const idx = Array.from({ length: m }, (_, i) => (i * 7 + 3) % c.shape[c.axis]);
      const got = tf.tidy(() =>
        Array.from(
          tf
            .gather(tf.tensor(x, c.shape, c.dtype), tf.tensor(idx, c.idxShape, "int32"), c.axis, c.batchDims)
            .dataSync(),
        ),
      );
      const want = refGather(x, c.shape, idx, c.idxShape, c.axis, c.batchDims);
      assert.equal(got.length, want.length);
      got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `${i}: ${v} vs ${want[i]}`));
    });
  }

  it("GatherV2 rejects an out-of-range index", () => {
    tf.tidy(() => {
      const x = tf.ones([5, 8]);
      assert.throws(() => tf.gather(x, tf.tensor1d([0, 5], "int32")).dataSync(), /index value 5 is not in \[0, 4\]/);
      assert.throws(() => tf.gather(x, tf.tensor1d([-1], "int32")).dataSync(), /index value -1/);
    });
  });

  it("Identity (tf.clone, customGrad save) keeps values after the source is disposed and frees memory", () => {
    const bytes = tf.memory().numBytes;
    const tensors = tf.memory().numTensors;
    const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = tf.clone(a);
    a.dispose();
    assert.deepEqual(Array.from(b.dataSync()), [1, 2, 3, 4, 5, 6]);
    const c = tf.add(b, 1);
    b.dispose();
    assert.deepEqual(Array.from(c.dataSync()), [2, 3, 4, 5, 6, 7]);
    c.dispose();
    assert.equal(tf.memory().numTensors, tensors);
    assert.equal(tf.memory().numBytes, bytes);
  });

  it("gradients through saved (cloned) tensors stay correct and leak nothing", () => {
    const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const x = args[0] as tf.Tensor;
      const save = args[1] as tf.GradSaveFunc;
      const y = tf.square(x);
      save([x, y]);
      return {
        value: y,
        gradFunc: (dy: tf.Tensor, [xs, ys]: tf.Tensor[]) => tf.mul(dy, tf.add(tf.mul(xs, 2), tf.mul(ys, 0))),
      };
    });
    const x = tf.tensor1d([1, -2, 3]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const g = tf.grad((t: tf.Tensor) => tf.sum(f(t) as tf.Tensor))(x);
      assert.deepEqual(Array.from(g.dataSync()), [2, -4, 6]);
      g.dispose();
    }
    assert.equal(tf.memory().numTensors, before);
    x.dispose();
  });
});
