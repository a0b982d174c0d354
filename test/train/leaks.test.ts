import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { NnFormer, NNFORMER_E12_16X32X32 } from "../../src/models/nnformer";
import { fastOps } from "../../src/layers/fast_ops";
import { plainOps } from "../../src/layers/plain_ops";
import { deepSupervisionLoss } from "../../src/losses/dice_ce";
import { fit, TrainTask } from "../../src/train/fit";
import { Rng } from "../../src/runtime/random";

// The whole training step of the issue: forward with deep supervision, Dice+CE, backward, clipping, AdamW.
describe("train/leaks: 20 nnFormer training steps", function () {
  this.timeout(120000);
  before(async () => {
    await initBackend();
  });

  for (const ops of [fastOps, plainOps]) {
    it(`leave tf.memory().numTensors unchanged (${ops.name} ops)`, async () => {
      const model = new NnFormer(NNFORMER_E12_16X32X32, { seed: 3 });
      const x = tf.randomNormal([1, 16, 32, 32, 1], 0, 1, "float32", 1) as tf.Tensor5D;
      const y = tf.randomUniform([1, 16, 32, 32], 0, 3, "int32", 2);
      const task: TrainTask = {
        variables: () => model.trainableVariables(),
        loss: (_step: number, rng: Rng) => {
          const out = model.forward(x, { ops, training: true, rng });
          return deepSupervisionLoss([out.logits, ...out.aux], [y], { batchDice: true });
        },
      };
      const config = {
        maxSteps: 20,
        optimizer: { kind: "adamw" as const, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 },
        schedule: { kind: "cosine" as const, lr: 1e-3, minLr: 1e-5, warmupSteps: 2 },
        clipNorm: 1,
        evalEvery: 0,
        seed: 0,
      };
      await fit(task, { ...config, maxSteps: 1 }); // first use builds cached constants (index tables, ones)
      const before = tf.memory().numTensors;
      const r = await fit(task, config);
      assert.equal(r.step, 20);
      assert.equal(tf.memory().numTensors, before, "no tensor leaked over 20 steps");
      assert.ok(r.records.every((s) => Number.isFinite(s.loss)));
      tf.dispose([x, y]);
      model.dispose();
    });
  }
});
