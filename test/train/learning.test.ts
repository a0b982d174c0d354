import { strict as assert } from "assert";
import { initBackend } from "../../src/runtime/backend";
import { generatePhantom, PHANTOM_LABELS } from "../../src/data/phantom";
import { computePreprocessing } from "../../src/data/preprocess";
import { AUGMENT_OFF } from "../../src/data/augment";
import { prepareCases, SegmentationTask } from "../../src/train/segmentation";
import { evaluateDice } from "../../src/infer/evaluate";
import { fit } from "../../src/train/fit";
import { NnFormer, NNFORMER_E12_16X32X32 } from "../../src/models/nnformer";
import { NnFormerSegmentation } from "../../src/models/nnformer_segmentation";
import { fastOps } from "../../src/layers/fast_ops";

// Learning really happens: a micro nnFormer (embed 12, crop 16x32x32) trained for 300 steps on 6 phantoms of
// 32x64x64 must segment held-out phantoms clearly better than chance. Chance is measured, not assumed: the expected
// Dice of a guess that draws each voxel's class from the training label frequencies is the class frequency itself.
describe("train/learning (micro nnFormer on phantoms)", function () {
  this.timeout(600000);

  it("reaches a held-out foreground Dice far above chance after 300 steps", async () => {
    await initBackend();
    const cases = Array.from({ length: 8 }, (_, i) => {
      const p = generatePhantom(7, i, { shape: [32, 64, 64] });
      return { id: `case${i}`, image: p.image, label: p.label };
    });
    const plan = computePreprocessing(
      cases.map((c) => c.image),
      "CT",
    );
    const prepared = prepareCases(cases, plan);
    const train = prepared.slice(0, 6),
      val = prepared.slice(6);
    const config = { ...NNFORMER_E12_16X32X32, numClasses: 9 };
    const model = new NnFormerSegmentation("nnformer-micro", new NnFormer(config, { seed: 1 }));
    try {
      const task = new SegmentationTask({
        model,
        ops: fastOps,
        train,
        val,
        numClasses: 9,
        cropSize: config.cropSize,
        batchSize: 2,
        foregroundFraction: 0.5,
        augment: AUGMENT_OFF,
        batchDice: true,
        modelName: "nnformer-micro",
        preprocessing: plan,
      });
      const r = await fit(task, {
        maxSteps: 300,
        optimizer: { kind: "adamw", beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 },
        schedule: { kind: "poly", lr: 3e-3, exponent: 0.9, warmupSteps: 10 },
        clipNorm: 12,
        evalEvery: 0,
        seed: 0,
      });
      assert.ok(r.records[r.records.length - 1].loss < r.records[0].loss * 0.8, "training loss falls");
      const ev = await evaluateDice(model, fastOps, val, { cropSize: config.cropSize, numClasses: 9, overlap: 0.5 });

      const counts = new Array(9).fill(0);
      let total = 0;
      for (const c of train)
        for (const v of c.label.data) {
          counts[v]++;
          total++;
        }
      const chance = counts.slice(1).reduce((s, n) => s + n / total, 0) / 8;
      const liver = ev.perClass[PHANTOM_LABELS.findIndex((l) => l.name === "liver") - 1];
      console.log(
        `      held-out mean Dice ${ev.mean.toFixed(3)} (chance ${chance.toFixed(4)}), liver ${liver.toFixed(3)}`,
      );
      assert.ok(ev.mean > 0.06 && ev.mean > 5 * chance, `mean Dice ${ev.mean} vs chance ${chance}`);
      assert.ok(liver > 0.3, `liver Dice ${liver}`);
    } finally {
      model.dispose();
    }
  });
});
