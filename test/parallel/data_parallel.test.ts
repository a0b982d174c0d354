import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { NNFORMER_E12_16X32X32 } from "../../src/models/nnformer";
import { diceCeLoss } from "../../src/losses/dice_ce";
import { generatePhantom } from "../../src/data/phantom";
import { computePreprocessing } from "../../src/data/preprocess";
import { prepareCases } from "../../src/train/segmentation";
import { finetune } from "../../src/train/recipe";
import { buildModel } from "../../src/registry";
import { fastOps } from "../../src/layers/fast_ops";
import { DataParallelGroup, buildReplica, ReplicaSpec } from "../../src/train/data_parallel";

// One step split over 2 shards (this thread and a worker thread, each its own wasm instance) must give the loss and
// the gradients of the same step on the whole batch in one process, up to float summation order.
describe("train/data_parallel: gradients summed over worker threads", function () {
  this.timeout(300000);
  before(async () => {
    await initBackend();
  });

  const batch = 2;
  const [D, H, W] = NNFORMER_E12_16X32X32.cropSize;
  const inputs = () => {
    const x = tf.randomNormal([batch, D, H, W, 1], 0, 1, "float32", 11) as tf.Tensor5D;
    // different label statistics per sample, so pooled and per-sample Dice differ
    const y = tf.tidy(() => {
      const u = tf.randomUniform([batch, D, H, W], 0, 1, "float32", 12);
      const scale = tf.tensor([1, 0.4]).reshape([batch, 1, 1, 1]);
      return tf.floor(tf.mul(u, tf.mul(scale, NNFORMER_E12_16X32X32.numClasses))).toInt();
    });
    return { x, y };
  };

  for (const batchDice of [true, false]) {
    it(`equals the single-process step (batch ${batch}, 2 shards, batchDice ${batchDice}); no tensors leak`, async () => {
      const spec: ReplicaSpec = {
        kind: "nnformer",
        config: { ...NNFORMER_E12_16X32X32, dropPathRate: 0 },
        seed: 5,
        ops: "fast",
        batchDice,
      };
      const { x, y } = inputs();
      const group = await DataParallelGroup.create({ world: 2, replica: spec, xShape: x.shape, yShape: y.shape });
      // the reference: another replica with the same weights, the plain loss on the whole batch
      const ref = buildReplica(spec);
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
    const spec: ReplicaSpec = {
      kind: "nnformer",
      config: NNFORMER_E12_16X32X32,
      seed: 1,
      ops: "fast",
      batchDice: true,
    };
    await assert.rejects(
      DataParallelGroup.create({ world: 2, replica: spec, xShape: [3, D, H, W, 1], yShape: [3, D, H, W] }),
      /batch 3 does not split over 2 shards/,
    );
  });
});

describe("train/data_parallel: a worker that cannot follow fails loudly", function () {
  this.timeout(120000);
  it("a worker whose model differs from shard 0's stops the group with its reason (no hang)", async () => {
    await initBackend();
    const [D, H, W] = NNFORMER_E12_16X32X32.cropSize;
    const main = buildModel("nnformer-e12-16x32x32", { inChannels: 1, numClasses: 3, cropSize: [D, H, W], seed: 1 });
    try {
      await assert.rejects(
        DataParallelGroup.create({
          world: 2,
          main,
          // the worker builds a 5-class model: other head shapes than shard 0's 3-class one
          replica: {
            kind: "nnformer",
            config: { ...NNFORMER_E12_16X32X32, numClasses: 5 },
            seed: 1,
            ops: "fast",
            batchDice: true,
          },
          xShape: [2, D, H, W, 1],
          yShape: [2, D, H, W],
        }),
        /data-parallel worker failed to start: Error: worker 1 built \d+ parameters, shard 0 has \d+: the specs differ/,
      );
    } finally {
      main.dispose();
    }
  });
});

describe("train/recipe: fine-tuning with dataParallel 2 follows the single-process run", function () {
  this.timeout(300000);
  it("same weights after 3 AdamW steps (no drop path, no augmentation), up to float summation order", async () => {
    await initBackend();
    const cases = [0, 1, 2].map((i) => {
      const p = generatePhantom(1, i, { shape: [16, 32, 32] });
      return { id: `c${i}`, image: p.image, label: p.label };
    });
    const plan = computePreprocessing(
      cases.map((c) => c.image),
      "CT",
    );
    const prepared = prepareCases(cases, plan);
    const run = async (dataParallel: number) => {
      const model = buildModel(
        "nnformer-e12-16x32x32",
        { inChannels: 1, numClasses: 9, cropSize: [16, 32, 32], seed: 4 },
        {
          dropPathRate: 0,
        },
      );
      const r = await finetune({
        model,
        modelName: "nnformer-e12-16x32x32",
        ops: fastOps,
        train: prepared,
        val: [],
        numClasses: 9,
        cropSize: [16, 32, 32],
        evalClasses: [1, 2, 3],
        preprocessing: plan,
        settings: {
          steps: 3,
          batchSize: 2,
          optimizer: "adamw",
          lr: 3e-3,
          warmupFraction: 0,
          evalEvery: 0,
          augment: false,
          foregroundFraction: 0.5,
        },
        seed: 7,
        pretrained: false,
        dataParallel,
      });
      const weights = model.trainableVariables().map((v) => v.dataSync().slice());
      model.dispose();
      return { weights, losses: r.fit.records.map((x) => x.loss) };
    };
    await run(2); // makes the sharded loss's kept constants for these shapes
    const one = await run(1);
    const before = tf.memory().numTensors;
    const two = await run(2);
    assert.equal(tf.memory().numTensors, before, "tensors left behind by the data-parallel run");
    one.losses.forEach((l, i) =>
      assert.ok(Math.abs(two.losses[i] - l) <= 1e-4 * Math.abs(l), `step ${i}: ${two.losses[i]} vs ${l}`),
    );
    let worst = 0;
    one.weights.forEach((w, i) => {
      let maxRef = 0,
        maxDiff = 0;
      for (let j = 0; j < w.length; j++) {
        maxRef = Math.max(maxRef, Math.abs(w[j]));
        maxDiff = Math.max(maxDiff, Math.abs(two.weights[i][j] - w[j]));
      }
      worst = Math.max(worst, maxDiff / Math.max(maxRef, 1e-12));
    });
    // AdamW normalises each step by its second moment, so float-order differences grow a little over the steps
    assert.ok(worst < 1e-3, `weights differ by ${worst} (relative to each tensor's largest entry)`);
  });
});
