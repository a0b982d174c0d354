import { strict as assert } from "assert";
import { initBackend } from "../../src/runtime/backend";
import { generatePhantom } from "../../src/data/phantom";
import { computePreprocessing } from "../../src/data/preprocess";
import { AUGMENT_OFF } from "../../src/data/augment";
import { prepareCases, SegmentationTask, SegmentationTaskOptions } from "../../src/train/segmentation";
import { NnFormer, NNFORMER_E12_16X32X32 } from "../../src/models/nnformer";
import { NnFormerSegmentation } from "../../src/models/nnformer_segmentation";
import { fastOps } from "../../src/layers/fast_ops";
import { makeRng } from "../../src/runtime/random";
import * as tf from "@tensorflow/tfjs";

describe("train/segmentation: inputs are checked before training", () => {
  let base: SegmentationTaskOptions;
  let model: NnFormerSegmentation;
  before(async () => {
    await initBackend();
    const cases = [0, 1].map((i) => {
      const p = generatePhantom(1, i, { shape: [16, 32, 32] });
      return { id: `c${i}`, image: p.image, label: p.label };
    });
    const plan = computePreprocessing(
      cases.map((c) => c.image),
      "CT",
    );
    const prepared = prepareCases(cases, plan);
    model = new NnFormerSegmentation(
      "nnformer-micro",
      new NnFormer({ ...NNFORMER_E12_16X32X32, numClasses: 9 }, { seed: 0 }),
    );
    base = {
      model,
      ops: fastOps,
      train: prepared,
      val: [],
      numClasses: 9,
      cropSize: [16, 32, 32],
      batchSize: 2,
      foregroundFraction: 0.5,
      augment: AUGMENT_OFF,
      batchDice: true,
      modelName: "nnformer-micro",
      preprocessing: plan,
    };
  });
  after(() => model.dispose());

  it("samples batches with the forced-foreground share", () => {
    const task = new SegmentationTask(base);
    const { x, y } = task.sampleBatch(makeRng(0));
    assert.deepEqual(x.shape, [2, 16, 32, 32, 1]);
    const last = tf.tidy(() => tf.sum(tf.greater(y.slice([1], [1]), 0)).dataSync()[0]);
    assert.ok(last > 0, "the last item of the batch contains foreground");
    tf.dispose([x, y]);
  });

  it("refuses label values outside the model's classes, naming the case and the fix", () => {
    assert.throws(
      () => new SegmentationTask({ ...base, numClasses: 4 }),
      /case c\d .*label value \d+ but the model has 4 classes/,
    );
  });

  it("refuses an empty training split", () => {
    assert.throws(() => new SegmentationTask({ ...base, train: [] }), /at least one labelled training case/);
  });

  it("refuses volumes smaller than the crop when padding is disabled", () => {
    assert.throws(
      () => new SegmentationTask({ ...base, cropSize: [16, 64, 32], padCrops: false }),
      /smaller than the crop 16x64x32 on axis H.*padding is disabled/,
    );
    assert.doesNotThrow(() => new SegmentationTask({ ...base, cropSize: [16, 64, 32] }));
  });

  it("refuses cases without labels", () => {
    const p = generatePhantom(1, 5, { shape: [16, 32, 32] });
    assert.throws(
      () => prepareCases([{ id: "u", image: p.image, label: null }], base.preprocessing),
      /case u has no label map/,
    );
  });
});
