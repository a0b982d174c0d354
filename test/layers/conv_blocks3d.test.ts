import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { fastOps } from "../../src/layers/fast_ops";
import { plainOps } from "../../src/layers/plain_ops";
import {
  LEAKY_SLOPE,
  concatChannels,
  instanceNorm3dPlain,
  instanceNormAct,
  leakyRelu,
  spatialSum,
  type NormAct,
} from "../../src/layers/conv_blocks3d";
import { upsampleTrilinear2x } from "../../src/models/transunet3d";
import { assertClose, assertNoLeak, input, valueAndGrads } from "./grad_check";

// The custom-gradient pieces of the baselines' CNN parts, each against its plain tf formulation with autodiff.
describe("layers/conv_blocks3d (custom gradients)", () => {
  before(async () => {
    await initBackend();
  });

  const plainNormAct = (x: tf.Tensor, g: tf.Tensor | null, b: tf.Tensor | null, act: NormAct) => {
    const y = instanceNorm3dPlain(x as tf.Tensor5D, g as tf.Tensor1D | null, b as tf.Tensor1D | null);
    return act === null ? y : act.slope === 0 ? tf.relu(y) : tf.leakyRelu(y, act.slope);
  };

  it("spatialSum matches tf.sum over the middle axis (one- and two-stage)", () => {
    for (const shape of [
      [2, 7, 3],
      [2, 1024, 5],
      [1, 576, 4],
    ]) {
      const [got] = valueAndGrads((x) => spatialSum(x as tf.Tensor3D), [input(shape, 1)]);
      const [ref] = valueAndGrads((x) => tf.sum(x, 1, true), [input(shape, 1)]);
      assertClose([got], [ref], `spatialSum ${shape}`, 1e-5);
    }
  });

  it("instanceNormAct: values and dX, dγ, dβ match InstanceNorm + activation by autodiff", () => {
    // [2, 8, 8, 8, C]: 512 voxels, the two-stage sums; [2, 3, 2, 5, C]: the one-stage path
    const acts: NormAct[] = [null, { slope: 0 }, { slope: LEAKY_SLOPE }, { slope: 0.2 }];
    for (const shape of [
      [2, 3, 2, 5, 3],
      [2, 8, 8, 8, 4],
      [1, 4, 8, 16, 2],
    ]) {
      const C = shape[4];
      for (const act of acts) {
        for (const affine of [false, true]) {
          const label = `${shape} act ${JSON.stringify(act)} affine ${affine}`;
          // offset and scale the input so that the mean and variance matter
          const x = input(shape, 3, 2.5);
          x.data = (x.data as Float32Array).map((v, i) => v + 0.5 * (i % C) - 1);
          const inputs = affine ? [x, input([C], 4, 1.5), input([C], 5)] : [x];
          const fast = (xs: tf.Tensor, g?: tf.Tensor, b?: tf.Tensor) =>
            instanceNormAct(
              xs as tf.Tensor5D,
              (g ?? null) as tf.Tensor1D | null,
              (b ?? null) as tf.Tensor1D | null,
              act,
            );
          const plain = (xs: tf.Tensor, g?: tf.Tensor, b?: tf.Tensor) => plainNormAct(xs, g ?? null, b ?? null, act);
          assertClose(valueAndGrads(fast, inputs), valueAndGrads(plain, inputs), label, 2e-4);
        }
      }
    }
  });

  it("leakyRelu (gradient from the output) matches tf.leakyRelu", () => {
    const inputs = [input([3, 50], 7, 2)];
    assertClose(
      valueAndGrads((x) => leakyRelu(x), inputs),
      valueAndGrads((x) => tf.leakyRelu(x, LEAKY_SLOPE), inputs),
      "leakyRelu",
      1e-6,
    );
  });

  it("concatChannels with fast ops matches tf.concat (values and both gradients)", () => {
    for (const [ca, cb] of [
      [3, 5],
      [8, 8],
      [1, 2],
    ]) {
      const inputs = [input([2, 3, 4, 5, ca], 8), input([2, 3, 4, 5, cb], 9)];
      const f = (ops: typeof fastOps) => (a: tf.Tensor, b: tf.Tensor) =>
        concatChannels(a as tf.Tensor5D, b as tf.Tensor5D, ops);
      assertClose(valueAndGrads(f(fastOps), inputs), valueAndGrads(f(plainOps), inputs), `concat ${ca}+${cb}`, 1e-6);
    }
  });

  it("upsampleTrilinear2x with fast ops matches the autodiff formulation", () => {
    for (const shape of [
      [1, 2, 3, 4, 2],
      [2, 4, 4, 2, 3],
      [1, 1, 2, 2, 1],
    ]) {
      const inputs = [input(shape, 10)];
      const f = (ops: typeof fastOps) => (x: tf.Tensor) => upsampleTrilinear2x(x as tf.Tensor5D, ops);
      assertClose(valueAndGrads(f(fastOps), inputs), valueAndGrads(f(plainOps), inputs), `upsample ${shape}`, 1e-5);
    }
  });

  it("no tensor leaks over repeated forward + backward", () => {
    const x = tf.tensor5d(input([2, 8, 8, 8, 4], 11).data as Float32Array, [2, 8, 8, 8, 4]);
    const y = tf.tensor5d(input([2, 8, 8, 8, 3], 12).data as Float32Array, [2, 8, 8, 8, 3]);
    const g = tf.tensor1d([1, 2, 0.5, 1]),
      b = tf.tensor1d([0, 0.1, -0.2, 0.3]);
    assertNoLeak(
      (xs, gs, bs) => instanceNormAct(xs as tf.Tensor5D, gs as tf.Tensor1D, bs as tf.Tensor1D, { slope: LEAKY_SLOPE }),
      [x, g, b],
      "instanceNormAct",
    );
    assertNoLeak((xs) => instanceNormAct(xs as tf.Tensor5D, null, null, null), [x], "instanceNorm");
    assertNoLeak((xs) => leakyRelu(xs), [x], "leakyRelu");
    assertNoLeak((a, c) => concatChannels(a as tf.Tensor5D, c as tf.Tensor5D, fastOps), [x, y], "concatChannels");
    assertNoLeak((xs) => upsampleTrilinear2x(xs as tf.Tensor5D, fastOps), [x], "upsampleTrilinear2x");
    tf.dispose([x, y, g, b]);
  });
});
