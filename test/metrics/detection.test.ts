import { strict as assert } from "assert";
import type { Vec3 } from "../../src/runtime/math";
import {
  Detection,
  countDetections,
  detectionOf,
  detections,
  formatDetections,
  formatMeanDefined,
  hd95MissPenalty,
  meanDefined,
  penaliseMisses,
} from "../../src/metrics/detection";
import { KIT_HD95, hd95Scores } from "../../src/metrics/hd95";

describe("metrics/detection", () => {
  it("one outcome per class from the voxel counts", () => {
    assert.equal(detectionOf({ pred: 3, ref: 5, intersection: 0 }), "predicted"); // no overlap is still "found"
    assert.equal(detectionOf({ pred: 0, ref: 5, intersection: 0 }), "missed");
    assert.equal(detectionOf({ pred: 2, ref: 0, intersection: 0 }), "falsePositive");
    assert.equal(detectionOf({ pred: 0, ref: 0, intersection: 0 }), "absent");
    // 2x2x2: reference has 1 and 2, prediction has 1 and 3; class 4 is in neither
    const ref = [1, 1, 2, 2, 0, 0, 0, 0];
    const pred = [1, 0, 0, 0, 3, 0, 0, 0];
    assert.deepEqual(detections(pred, ref, [1, 2, 3, 4]), ["predicted", "missed", "falsePositive", "absent"]);
    // a region counts as present when any of its labels is
    assert.deepEqual(detections(pred, ref, [[2, 3]]), ["predicted"]);
  });

  it("counts per class, per case and in total, by hand", () => {
    const table: Detection[][] = [
      ["predicted", "missed", "absent"],
      ["predicted", "predicted", "falsePositive"],
      ["missed", "missed", "absent"],
    ];
    const c = countDetections(table, ["spleen", "liver", "aorta"]);
    assert.deepEqual(c.perClass[0], {
      name: "spleen",
      total: 3,
      present: 3,
      predicted: 2,
      missed: 1,
      falsePositive: 0,
      absent: 0,
    });
    assert.equal(c.perClass[1].missed, 2);
    assert.equal(c.perClass[2].present, 0);
    assert.equal(c.perClass[2].falsePositive, 1);
    assert.equal(c.perClass[2].absent, 2);
    assert.deepEqual(
      c.perCase.map((x) => [x.predicted, x.missed, x.falsePositive, x.absent]),
      [
        [1, 1, 0, 1],
        [2, 0, 1, 0],
        [0, 2, 0, 1],
      ],
    );
    assert.deepEqual(c.total, { total: 9, present: 6, predicted: 3, missed: 3, falsePositive: 1, absent: 2 });
    assert.equal(formatDetections(c.total), "found 3 of 6, missed 3, 1 false positive");
    assert.equal(formatDetections(c.perClass[0]), "found 2 of 3, missed 1, 0 false positives");
    assert.throws(() => countDetections([["predicted"]], ["a", "b"]), /case 0 has 1 outcomes but there are 2 classes/);
    assert.throws(() => countDetections([["hit" as Detection]], ["a"]), /got "hit"/);
  });

  it("means over defined values say how many were undefined", () => {
    const m = meanDefined([10, NaN, 20, NaN]);
    assert.deepEqual(m, { mean: 15, defined: 2, undefined: 2 });
    assert.equal(formatMeanDefined(m), "15.00 (2 of 4 undefined)");
    assert.equal(formatMeanDefined(meanDefined([1, 2]), 1), "1.5");
    assert.equal(formatMeanDefined(meanDefined([NaN, NaN])), "n/a (all 2 undefined)");
    assert.ok(Number.isNaN(meanDefined([]).mean));
  });

  it("the kit's HD95 penalty: a missed organ costs the diagonal, so missing cannot improve the mean", () => {
    const shape: Vec3 = [4, 6, 6];
    const spacing: Vec3 = [3, 1, 1];
    assert.equal(hd95MissPenalty(shape, spacing), Math.hypot(12, 6, 6));
    assert.throws(() => hd95MissPenalty([4, 6, 0], spacing), /shape must be three positive integers/);
    // ref: organ 1 in the first slab, organ 2 a block elsewhere; pred: organ 1 shifted by one slice, organ 2 missing,
    // organ 3 hallucinated
    const n = 4 * 6 * 6;
    const ref = new Uint8Array(n),
      pred = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const d = Math.floor(i / 36),
        h = Math.floor(i / 6) % 6;
      if (d === 0) ref[i] = 1;
      if (d === 1) pred[i] = 1;
      if (d === 3 && h < 2) ref[i] = 2;
      if (d === 3 && h >= 4) pred[i] = 3;
    }
    const classes = [1, 2, 3, 4];
    const raw = hd95Scores(pred, ref, classes, shape, { definition: "medpy", spacing });
    assert.equal(raw[0], 3); // one slice of 3 mm
    assert.ok(raw.slice(1).every(Number.isNaN));
    const outcomes = detections(pred, ref, classes);
    assert.deepEqual(outcomes, ["predicted", "missed", "falsePositive", "absent"]);
    const penalised = penaliseMisses(raw, outcomes, hd95MissPenalty(shape, spacing));
    const diag = Math.hypot(12, 6, 6);
    assert.deepEqual(penalised.slice(0, 3), [3, diag, diag]);
    assert.ok(Number.isNaN(penalised[3]));
    // the same numbers straight from the kit convention
    const kit = hd95Scores(pred, ref, classes, shape, { ...KIT_HD95, spacing });
    assert.deepEqual(kit.slice(0, 3), penalised.slice(0, 3));
    assert.ok(Number.isNaN(kit[3]));
    // mean over found organs alone would be 3 (and look better than a model that finds organ 2 badly); penalised is not
    assert.equal(meanDefined(raw).mean, 3);
    assert.ok(meanDefined(penalised).mean > 3 + diag / 2);
    assert.throws(() => penaliseMisses([1], ["predicted", "missed"], 1), /1 values but 2 outcomes/);
    assert.throws(() => penaliseMisses([1], ["missed"], NaN), /penalty must be a positive number/);
  });
});
