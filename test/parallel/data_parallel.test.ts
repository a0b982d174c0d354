import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { NNFORMER_MICRO } from "../../src/models/nnformer";
import { diceCeLoss } from "../../src/losses/dice_ce";
import { DataParallelGroup, nnFormerReplica, NnFormerReplicaSpec } from "../../src/train/data_parallel";

// One step split over 2 shards (this thread and a worker thread, each its own wasm instance) must give the loss and
// the gradients of the same step on the whole batch in one process, up to float summation order.
describe("train/data_parallel: gradients summed over worker threads", function () {
  this.timeout(300000);
  before(async () => {
    await initBackend();
  });

  const batch = 2;
  const [D, H, W] = NNFORMER_MICRO.cropSize;
  const inputs = () => {
    const x = tf.randomNormal([batch, D, H, W, 1], 0, 1, "float32", 11) as tf.Tensor5D;
    // different label statistics per sample, so pooled and per-sample Dice differ
    const y = tf.tidy(() => {
      const u = tf.randomUniform([batch, D, H, W], 0, 1, "float32", 12);
      const scale = tf.tensor([1, 0.4]).reshape([batch, 1, 1, 1]);
      return tf.floor(tf.mul(u, tf.mul(scale, NNFORMER_MICRO.numClasses))).toInt();
    });
    return { x, y };
  };

  for (const batchDice of [true, false]) {
    it(`equals the single-process step (batch ${batch}, 2 shards, batchDice ${batchDice}); no tensors leak`, async () => {
      const spec: NnFormerReplicaSpec = {
        config: { ...NNFORMER_MICRO, dropPathRate: 0 },
        seed: 5,
        ops: "fast",
        batchDice,
      };
      const { x, y } = inputs();
      const group = await DataParallelGroup.create({ world: 2, replica: spec, xShape: x.shape, yShape: y.shape });
      // the reference: another replica with the same weights, the plain loss on the whole batch
      const ref = nnFormerReplica(spec);
      try {
        ref.variables.forEach((v, i) => v.assign(group.replica.variables[i]));
        const want = tf.variableGrads(() => ref.loss(x, y, diceCeLoss, 0, 0), ref.variables);
        const counts: number[] = [];
        for (let rep = 0; rep < 3; rep++) {
          const got = group.gradients(x, y);
          const lossWant = want.value.dataSync()[0];
          assert.ok(Math.abs(got.loss - lossWant) <= 1e-5 * Math.abs(lossWant), `loss ${got.loss} vs ${lossWant}`);
          let worst = 0,
            worstName = "";
          group.replica.variables.forEach((v, i) => {
            const g = got.grads[v.name].dataSync();
            const r = want.grads[ref.variables[i].name].dataSync();
            let maxRef = 0,
              maxDiff = 0;
            for (let j = 0; j < r.length; j++) {
              maxRef = Math.max(maxRef, Math.abs(r[j]));
              maxDiff = Math.max(maxDiff, Math.abs(g[j] - r[j]));
            }
            const rel = maxDiff / Math.max(maxRef, 1e-12);
            if (rel > worst) [worst, worstName] = [rel, v.name];
          });
          assert.ok(worst < 1e-4, `gradient of ${worstName}: relative difference ${worst}`);
          tf.dispose(Object.values(got.grads));
          counts.push(tf.memory().numTensors);
        }
        // the first step makes the loss's kept constants; after it the count stays flat
        assert.deepEqual(counts, [counts[0], counts[0], counts[0]]);
        tf.dispose([want.value, ...Object.values(want.grads)]);
      } finally {
        ref.dispose();
        await group.close();
        tf.dispose([x, y]);
      }
    });
  }

  it("refuses a batch that does not split over the shards", async () => {
    const spec: NnFormerReplicaSpec = { config: NNFORMER_MICRO, seed: 1, ops: "fast", batchDice: true };
    await assert.rejects(
      DataParallelGroup.create({ world: 2, replica: spec, xShape: [3, D, H, W, 1], yShape: [3, D, H, W] }),
      /batch 3 does not split over 2 shards/,
    );
  });
});
