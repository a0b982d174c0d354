// One test per kit kernel override (src/runtime/webgpu_kernels.ts): each faulty rank-5 op, values and gradients,
// against the cpu backend. Runs in the webgpu suite (npm run test:webgpu).
import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { collapseBroadcast, collapseTranspose } from "../../src/runtime/webgpu_kernels";
import { input } from "../layers/grad_check";
import { assertMatchesBackend, assertNoGpuErrors, runOn, startWebgpuSuite } from "./helpers";

describe("webgpu/kernel overrides (rank 5) vs cpu", () => {
  before(startWebgpuSuite);
  afterEach(function () {
    assertNoGpuErrors(this.currentTest?.title ?? "");
  });

  it("collapseBroadcast merges axes with the same broadcast pattern", () => {
    assert.deepEqual(collapseBroadcast([2, 3, 4, 5, 6], [6]), { a: [120, 6], b: [1, 6], out: [120, 6] });
    assert.deepEqual(collapseBroadcast([2, 1, 4, 1, 6], [3, 1, 1, 6]), {
      a: [2, 1, 4, 6],
      b: [1, 3, 1, 6],
      out: [2, 3, 4, 6],
    });
    assert.deepEqual(collapseBroadcast([1, 1], [1]), { a: [1], b: [1], out: [1] });
  });

  it("binary ops: rank 5 with a rank-1 vector, a [1,1,1,1,C] vector, a scalar and mixed broadcasts", async () => {
    const x = input([2, 3, 4, 3, 5], 1);
    const cases: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor, number[]][] = [
      ["add [C]", tf.add, [5]],
      ["sub [1,1,1,1,C]", tf.sub, [1, 1, 1, 1, 5]],
      ["mul [D,1,W,C]", tf.mul, [3, 1, 3, 5]],
      ["div mixed [2,1,4,1,5]", (a, b) => tf.div(a, tf.add(tf.abs(b), 0.5)), [2, 1, 4, 1, 5]],
      ["maximum same shape (tfjs has no broadcast gradient for it)", tf.maximum, [2, 3, 4, 3, 5]],
      ["squaredDifference same shape", tf.squaredDifference, [2, 3, 4, 3, 5]],
      ["mul same shape", tf.mul, [2, 3, 4, 3, 5]],
      ["prelu [C]", (a, b) => tf.prelu(a, b), [5]],
    ];
    for (const [label, f, shape] of cases) await assertMatchesBackend(label, f, [x, input(shape, 2)]);
    const noGrad = { ...input([5], 2), grad: false };
    const noGrad5 = { ...input(x.shape, 3), grad: false };
    await assertMatchesBackend("greater [C]", (a, b, c) => tf.mul(a, tf.greater(c, b).toFloat()), [x, noGrad, noGrad5]);
    await assertMatchesBackend("add scalar", (a) => tf.add(a, 0.25), [x]);
  });

  it("Select (tf.where) and the gradients that use it: leakyRelu, clipByValue", async () => {
    const x = input([2, 3, 2, 4, 3], 3);
    const cond = { ...input(x.shape, 7), grad: false };
    await assertMatchesBackend("where", (a, b, c) => tf.where(tf.greater(c, 0), a, tf.mul(b, 2)), [
      x,
      input(x.shape, 4),
      cond,
    ]);
    await assertMatchesBackend("leakyRelu", (a) => tf.leakyRelu(a, 0.01), [x]);
    await assertMatchesBackend("clipByValue", (a) => tf.clipByValue(a, -0.3, 0.4), [x]);
  });

  it("PadV2: spatial padding (merged view), padding on every axis (per-axis views), and the slice gradient", async () => {
    const x = input([2, 3, 4, 3, 2], 5);
    const spatial: [number, number][] = [
      [0, 0],
      [1, 2],
      [0, 1],
      [2, 0],
      [0, 0],
    ];
    await assertMatchesBackend("pad spatial", (a) => tf.pad(a, spatial), [x]);
    const every: [number, number][] = [
      [1, 0],
      [0, 1],
      [1, 1],
      [2, 0],
      [0, 1],
    ];
    await assertMatchesBackend("pad every axis, value 0.5", (a) => tf.pad(a, every, 0.5), [x]);
    await assertMatchesBackend("slice (gradient = pad)", (a) => tf.slice(a, [1, 0, 1, 1, 0], [1, 2, 2, 2, 2]), [x]);
  });

  it("Reverse: spatial flips (merged), alternating axes (one at a time)", async () => {
    const x = input([2, 3, 4, 3, 2], 6);
    for (const axes of [[1], [1, 2, 3], [2], [0, 2, 4], [1, 3]])
      await assertMatchesBackend(`reverse ${axes}`, (a) => tf.reverse(a, axes), [x]);
  });

  it("Transpose and reductions of int32 buffers (labels, and .toFloat() of them, which keeps the int32 buffer)", async () => {
    const ints = (shape: number[], mod: number) =>
      tf
        .range(
          0,
          shape.reduce((a, b) => a * b, 1),
          1,
          "int32",
        )
        .mod(tf.scalar(mod, "int32"))
        .reshape(shape);
    const cases: [string, () => tf.Tensor][] = [
      ["transpose rank 3", () => tf.transpose(ints([10, 12, 20], 1000), [0, 2, 1])],
      ["transpose rank 4", () => tf.transpose(ints([2, 10, 6, 20], 1000), [0, 2, 1, 3])],
      ["transpose rank 5, no merge", () => tf.transpose(ints([2, 3, 4, 5, 20], 1000), [0, 4, 2, 1, 3])],
      [
        "transpose of toFloat()",
        () =>
          tf.transpose(
            tf
              .oneHot(ints([2000], 5), 5)
              .toFloat()
              .reshape([10, 20, 10, 5]),
            [0, 3, 1, 2],
          ),
      ],
      ["sum keepDims axes 1,2", () => tf.sum(ints([2, 10, 6, 20], 9), [1, 2], true)],
      ["max axis 0", () => tf.max(ints([10, 12, 20], 1000), 0)],
      [
        "mean of toFloat() over spatial axes",
        () => tf.mean(tf.oneHot(ints([2, 8, 8, 16], 7), 5).toFloat(), [0, 1, 2, 3]),
      ],
    ];
    for (const [label, f] of cases) {
      const [want] = await runOn("cpu", () => [f()]);
      const [got] = await runOn("webgpu", () => [f()]);
      assertNoGpuErrors(label);
      assert.deepEqual(Array.from(got), Array.from(want), label);
    }
  });

  it("AddN of more tensors than a shader can bind (a global gradient norm): values and gradients", async () => {
    const xs = Array.from({ length: 23 }, (_, i) => input([40, 30], 30 + i));
    await assertMatchesBackend("addN x23", (...ts) => tf.addN(ts), xs);
    await assertMatchesBackend("addN x7", (...ts) => tf.addN(ts), xs.slice(0, 7));
  });

  it("collapseTranspose drops size-1 axes and merges axes that stay neighbours", () => {
    assert.deepEqual(collapseTranspose([2, 3, 4, 5, 20], [0, 3, 4, 1, 2]), { shape: [2, 12, 100], perm: [0, 2, 1] });
    assert.deepEqual(collapseTranspose([1, 3, 1, 5], [2, 3, 0, 1]), { shape: [3, 5], perm: [1, 0] });
    assert.deepEqual(collapseTranspose([4, 5], [0, 1]), { shape: [20], perm: [0] });
  });

  it("overrides leave rank <= 4 alone and release their views (no tensor or GPU buffer leak)", async () => {
    const before = tf.memory().numTensors;
    const got = await runOn("webgpu", () => [
      tf.add(tf.ones([2, 2, 2, 2, 3]), tf.ones([3])),
      tf.pad(tf.ones([1, 2, 2, 2, 1]), [
        [0, 0],
        [1, 1],
        [1, 1],
        [1, 1],
        [0, 0],
      ]),
      tf.reverse(tf.range(0, 8).reshape([1, 2, 2, 2, 1]), [1, 2, 3]),
    ]);
    assert.equal(tf.memory().numTensors, before);
    assert.ok(got[0].every((v) => v === 2));
    assert.equal(
      got[1].reduce((a, b) => a + b, 0),
      8,
    );
    assert.deepEqual(Array.from(got[2]), [7, 6, 5, 4, 3, 2, 1, 0]);
  });
});
