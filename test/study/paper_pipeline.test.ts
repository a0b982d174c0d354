// The paper profile's preprocessing and evaluation path end to end, at unit-test size: phantoms written at an
// anisotropic spacing (one training case and the test case at other slice thicknesses), the nnU-Net plan, a tiny
// study, and checks that (1) the plan's spacing is the training cases' median and every training case is resampled to
// it, (2) CT statistics come from the labelled foreground of the training cases, (3) test scores are made on each test
// case's own grid with the final weights, and (4) nothing is selected on the test split.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { phantomManifestFor, writePhantomDataset } from "../../src/data/dataset";
import { readNifti, writeNifti } from "../../src/data/nifti";
import { diagonalAffine } from "../../src/data/volume";
import { selectOps } from "../../src/layers/fast_ops";
import { initBackend } from "../../src/runtime/backend";
import { loadTrainedModel } from "../../src/registry";
import { scoreTestCases } from "../../src/infer/evaluate";
import { Predictor } from "../../src/infer/predict";
import { prepareCases } from "../../src/train/segmentation";
import { PROFILES, StudyProfile } from "../../src/study/profiles";
import { checkNoTestInSelection, loadStudyData, runLowLabelStudy, studyPreprocessing } from "../../src/study/lowlabel";
import { runFolder } from "../../src/train/recipe";
import type { Vec3 } from "../../src/runtime/math";
import * as tf from "@tensorflow/tfjs";

/** Rewrites a case's image and label with another D spacing (same voxels): a thicker- or thinner-slice scan. */
async function respace(root: string, id: string, spacing: Vec3): Promise<void> {
  for (const kind of ["images", "labels"] as const) {
    const file = path.join(root, kind, `${id}.nii.gz`);
    const v = await readNifti(file, { as: kind === "images" ? "image" : "label" });
    writeNifti(file, { ...v, spacing, affine: diagonalAffine(spacing) });
  }
}

describe("study: the paper profile's preprocessing and evaluation path on anisotropic phantoms", function () {
  this.timeout(240000);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "paper-pipeline-"));
  const out = path.join(root, "study");
  // 10 phantoms of 16x32x32 at 4 x 1.5 x 1.5 mm: unlabeled 000-005, train 006-007, val 008, test 009
  const manifest = phantomManifestFor(10, 3, [16, 32, 32], [4, 1.5, 1.5], root);
  const profile: StudyProfile = {
    ...JSON.parse(JSON.stringify(PROFILES.paper)),
    name: "paper-tiny",
    data: { kind: "manifest", manifest: path.join(root, "manifest.json"), dataRoot: root },
    models: ["nnformer-micro"],
    inits: ["scratch", "mae"],
    labelFractions: [1],
    seeds: [0, 1],
    pretrain: { ...PROFILES.paper.pretrain, steps: 2, batchSize: 1, evalEvery: 0 },
    finetune: { ...PROFILES.paper.finetune, steps: 2, batchSize: 1, evalEvery: 1, augment: false, warmupFraction: 0 },
    eval: { ...PROFILES.paper.eval, overlap: 0, mirror: false },
  };

  before(async () => {
    await initBackend();
    fs.writeFileSync(path.join(root, "manifest.json"), JSON.stringify(manifest));
    writePhantomDataset(manifest, root);
    await respace(root, "phantom_007", [6, 1.5, 1.5]); // training case with thicker slices
    await respace(root, "phantom_009", [3, 1.5, 1.5]); // the test case with thinner ones
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it("the paper profile asks for the nnU-Net plan, medpy HD95 and one pretraining per seed", () => {
    assert.equal(PROFILES.paper.preprocessing, "nnunet");
    assert.equal(PROFILES.paper.eval.hd95, "medpy");
    assert.equal(PROFILES.paper.pretrain.perSeed, true);
    assert.equal(PROFILES.quick.preprocessing, "kit");
  });

  it("plans the median training spacing, resamples the training cases, normalises from labelled foreground", async () => {
    const data = await loadStudyData(profile);
    assert.deepEqual(
      data.train.map((c) => c.image.spacing[0]),
      [4, 6],
    );
    const plan = studyPreprocessing(data, "nnunet");
    assert.deepEqual(plan.spacing, [5, 1.5, 1.5]); // median of 4 and 6; in-plane unchanged
    assert.match(plan.spacingFrom!, /median spacing \[5, 1\.5, 1\.5\] mm of 2 training cases/);
    assert.match(plan.statsFrom!, /labelled foreground of the 2 training cases/);
    // every training case lands on the target spacing, image and label on one grid (16 x 4 / 5 -> 13, 16 x 6 / 5 -> 19)
    const prepared = prepareCases(data.train, plan);
    assert.deepEqual(
      prepared.map((c) => [c.image.shape[0], c.label.shape[0], c.image.spacing[0]]),
      [
        [13, 13, 5],
        [19, 19, 5],
      ],
    );
    // statistics: those of the training cases' labelled voxels (all of them, written out here), not the body's
    const fg: number[] = [];
    for (const c of data.train)
      for (let i = 0; i < c.label!.data.length; i++) if (c.label!.data[i] > 0) fg.push(c.image.data[i]);
    const mean = fg.reduce((a, b) => a + b, 0) / fg.length;
    if (plan.intensity.kind !== "ct") throw new Error("expected a CT plan");
    assert.ok(Math.abs(plan.intensity.mean - mean) < 0.02 * Math.abs(mean) + 1, `${plan.intensity.mean} vs ${mean}`);
    const body = studyPreprocessing(data, "kit");
    if (body.intensity.kind !== "ct") throw new Error("expected a CT plan");
    assert.ok(Math.abs(body.intensity.mean - mean) > Math.abs(plan.intensity.mean - mean) + 5, "body stats differ");
  });

  it("runs the study: test scores on each case's own grid from the final weights; nothing chosen on test", async () => {
    const r = await runLowLabelStudy(profile, { out, log: () => {}, progress: false });
    assert.equal(r.results.length, 4);
    const data = await loadStudyData(profile);
    const plan = studyPreprocessing(data, "nnunet");
    for (const res of r.results) {
      const meta = res.meta as { valCases: string[]; testCases: string[]; preprocessing: string; pretraining?: string };
      assert.deepEqual(meta.testCases, ["phantom_009"]);
      assert.deepEqual(meta.valCases, ["phantom_008"]);
      assert.equal(meta.preprocessing, "nnunet");
      if (res.init === "mae") assert.equal(meta.pretraining, `per seed (seed ${res.seed})`);
      assert.ok(res.curve.length > 0, "validation curve from the val split");
      assert.equal(res.test.hd95!.definition, "medpy");
      assert.equal(res.test.perCase!.length, 1);
      // the checkpoint carries the nnU-Net plan
      const latest = path.join(runFolder(out, res.key), "latest.safetensors");
      const { model, preprocessing } = loadTrainedModel(latest);
      try {
        assert.deepEqual(preprocessing, plan);
        // the recorded test scores are the final weights' scores on the raw test case
        const again = await scoreTestCases(model, selectOps(tf.getBackend()), data.test, plan, {
          cropSize: [16, 32, 32],
          numClasses: data.labelNames.length,
          classes: data.evalClasses,
          classNames: data.evalClasses.map((v) => data.labelNames[v]),
          overlap: 0,
          mirror: false,
          hd95: "medpy",
        });
        assert.deepEqual(again.perCase, res.test.perCase);
        assert.equal(again.meanDice, res.test.meanDice);
      } finally {
        model.dispose();
      }
    }
    // one pretraining per seed
    for (const s of [0, 1]) {
      assert.ok(fs.existsSync(path.join(out, "pretrain", "nnformer-micro", `seed${s}`, "mae_latest.safetensors")));
    }
    // predictions come back on the test image's own grid (16 slices of 3 mm), not the planned one (10 slices of 5 mm)
    const p = Predictor.load(path.join(runFolder(out, r.results[0].key), "latest.safetensors"));
    try {
      const img = data.test[0].image;
      const labels = await p.predict(img);
      assert.equal(labels.length, 16 * 32 * 32);
    } finally {
      p.dispose();
    }
    assert.match(r.markdown, /MAE pretraining: one per seed/);
    assert.match(r.markdown, /HD95: medpy: 95th percentile of the surface distances of both directions pooled/);
  });

  it("refuses a val split that shares cases with test", async () => {
    const data = await loadStudyData(profile);
    assert.throws(
      () => checkNoTestInSelection({ ...data, val: data.test }),
      /the val split shares 1 case\(s\) with the test split \(phantom_009\); validation curves and best\.safetensors would be chosen on test cases/,
    );
  });
});
