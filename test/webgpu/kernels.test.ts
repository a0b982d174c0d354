// One test per kit kernel override (src/runtime/webgpu_kernels.ts): each faulty rank-5 op, values and gradients,
// against the cpu backend. Runs in the webgpu suite (npm run test:webgpu).
import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { collapseBroadcast } from "../../src/runtime/webgpu_kernels";
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
