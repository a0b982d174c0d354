import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import {
  deepSupervisionLoss,
  deepSupervisionWeights,
  diceCeLoss,
  diceCeLossPlain,
  DiceCeOptions,
  nearestDownsample,
} from "../../src/losses/dice_ce";
import { assertClose, assertNoLeak, input, relErr, valueAndGrads } from "../layers/grad_check";

function labels(shape: number[], k: number, seed: number): Int32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  return Int32Array.from({ length: n }, (_, i) => (i * 7 + seed * 13 + ((i * i) % 5)) % k);
}

describe("losses/dice_ce", () => {
  before(async () => {
    await initBackend();
  });

  it("closed-form gradient matches autodiff: batch / per-item Dice, int / one-hot targets, flattened logits", () => {
    const shape = [2, 3, 4, 2];
    const K = 4;
    const lab = labels(shape, K, 1);
    for (const opts of [
      { batchDice: true },
      { batchDice: false },
      { batchDice: false, excludeBackground: false, smooth: 1 },
    ] as DiceCeOptions[]) {
      const logits = input([...shape, K], 3, 3);
      const asInt = (_x: tf.Tensor) => tf.tensor(lab, shape, "int32");
      const fast = valueAndGrads((x) => diceCeLoss(x, asInt(x), opts), [logits]);
      const plain = valueAndGrads((x) => diceCeLossPlain(x, asInt(x), opts), [logits]);
      assertClose(fast, plain, `dice_ce ${JSON.stringify(opts)}`);
      const oneHot = () => tf.oneHot(tf.tensor1d(lab, "int32"), K).reshape([...shape, K]);
      assertClose(
        valueAndGrads((x) => diceCeLoss(x, oneHot(), opts), [logits]),
        plain,
        `one-hot target ${JSON.stringify(opts)}`,
      );
    }
    // P ≥ 256 takes the blocked-transpose voxel sums; batch 2 with per-item Dice
    const big = input([2, 8, 8, 8, 3], 6, 2);
    const bigLab = tf.tensor(labels([2, 8, 8, 8], 3, 5), [2, 8, 8, 8], "int32");
    for (const batchDice of [false, true]) {
      assertClose(
        valueAndGrads((x) => diceCeLoss(x, bigLab, { batchDice }), [big]),
        valueAndGrads((x) => diceCeLossPlain(x, bigLab, { batchDice }), [big]),
        `[2,8,8,8,3] batchDice ${batchDice}`,
      );
    }
    bigLab.dispose();
    const flat = input([30, 3], 5, 2);
    const lab1 = tf.tensor1d(labels([30], 3, 2), "int32");
    assertClose(
      valueAndGrads((x) => diceCeLoss(x, lab1, { batchDice: true }), [flat]),
      valueAndGrads((x) => diceCeLossPlain(x, lab1, { batchDice: true }), [flat]),
      "flattened [P, K]",
    );
    lab1.dispose();
  });

  it("gives the nnU-Net value on a hand-made example", () => {
    // 4 voxels, 2 classes; logits give p(class 1) = 0.8, 0.8, 0.2, 0.2; labels 1, 0, 0, 0
    const l = Math.log(4);
    const x = tf.tensor2d([
      [0, l],
      [0, l],
      [l, 0],
      [l, 0],
    ]);
    const y = tf.tensor1d([1, 0, 0, 0], "int32");
    const got = tf.tidy(() => diceCeLoss(x, y, { batchDice: true }).dataSync()[0]);
    const ce = -(Math.log(0.8) + Math.log(0.2) + 2 * Math.log(0.8)) / 4;
    const dice = (2 * 0.8 + 1e-5) / (0.8 + 0.8 + 0.2 + 0.2 + 1 + 1e-5 + 1e-8); // class 1 only
    assert.ok(Math.abs(got - (ce + 1 - dice)) < 1e-5, `${got} vs ${ce + 1 - dice}`);
    tf.dispose([x, y]);
  });

  it("deep supervision: weights 4/7, 2/7, 1/7 and nearest-downsampled targets", () => {
    assert.ok(relErr(deepSupervisionWeights(3), [4 / 7, 2 / 7, 1 / 7]) < 1e-12);
    const K = 3;
    const full = tf.tensor(labels([1, 4, 8, 8], K, 3), [1, 4, 8, 8], "int32");
    const outs = [input([1, 4, 8, 8, K], 1), input([1, 2, 4, 4, K], 2), input([1, 1, 2, 2, K], 3)];
    const opts = { batchDice: false };
    const got = valueAndGrads((a, b, c) => deepSupervisionLoss([a, b, c], [full], opts), outs);
    const ref = valueAndGrads((a, b, c) => {
      const t1 = nearestDownsample(full, [2, 4, 4]);
      const t2 = nearestDownsample(full, [1, 2, 2]);
      return tf.addN([
        tf.mul(diceCeLossPlain(a, full, opts), 4 / 7),
        tf.mul(diceCeLossPlain(b, t1, opts), 2 / 7),
        tf.mul(diceCeLossPlain(c, t2, opts), 1 / 7),
      ]);
    }, outs);
    assertClose(got, ref, "deep supervision");
    // the picked voxel is f·o + floor(f/2)
    const d = tf.tidy(() => nearestDownsample(tf.range(0, 64).reshape([1, 4, 4, 4]), [2, 2, 1]).dataSync());
    assert.deepEqual(Array.from(d), [1 * 16 + 1 * 4 + 2, 1 * 16 + 3 * 4 + 2, 3 * 16 + 1 * 4 + 2, 3 * 16 + 3 * 4 + 2]);
    // batch 2, channels (rank 5), factors (3, 1, 2)
    const e = tf.tidy(() =>
      nearestDownsample(tf.range(0, 2 * 6 * 2 * 4 * 2).reshape([2, 6, 2, 4, 2]), [2, 2, 2]).dataSync(),
    );
    const want: number[] = [];
    for (let b = 0; b < 2; b++)
      for (let z = 0; z < 2; z++)
        for (let y = 0; y < 2; y++)
          for (let x = 0; x < 2; x++)
            for (let c = 0; c < 2; c++) want.push((((b * 6 + 3 * z + 1) * 2 + y) * 4 + 2 * x + 1) * 2 + c);
    assert.deepEqual(Array.from(e), want);
    full.dispose();
  });

  it("does not leak tensors", () => {
    const x = tf.randomNormal([2, 2, 3, 3, 3]);
    const y = tf.tensor(labels([2, 2, 3, 3], 3, 4), [2, 2, 3, 3], "int32");
    assertNoLeak((t) => diceCeLoss(t, y, { batchDice: false }), [x], "diceCeLoss");
    tf.dispose([x, y]);
  });
});
