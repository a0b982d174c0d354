import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { initBackend } from "../../src/runtime/backend";
import { phantomManifestFor, writePhantomDataset } from "../../src/data/dataset";
import { resolveManifest } from "../../src/data/manifest";
import { readNifti } from "../../src/data/nifti";
import { computePreprocessing } from "../../src/data/preprocess";
import { buildModel } from "../../src/registry";
import { readCheckpoint, saveCheckpoint } from "../../src/io/checkpoint";
import { predictSplit, evaluatePredictions, Predictor } from "../../src/infer/predict";

describe("infer/predict: checkpoint -> NIfTI predictions -> scores", function () {
  this.timeout(120000);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "kit-predict-"));
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it("predicts a split into NIfTI on the source grid and scores it; missing predictions are listed", async () => {
    await initBackend();
    const manifest = phantomManifestFor(5, 3, [16, 32, 32], [12, 12, 12], path.join(root, "data"));
    writePhantomDataset(manifest);
    const resolved = resolveManifest(manifest);
    const first = await readNifti(resolved.splits.test[0].images[0]);
    const plan = computePreprocessing([first], "CT");
    const model = buildModel("nnformer-micro", { inChannels: 1, numClasses: 9, cropSize: [16, 32, 32], seed: 0 });
    const ckpt = path.join(root, "best.safetensors");
    await saveCheckpoint(ckpt, model.params, {
      kind: "finetune",
      model: "nnformer-micro",
      config: model.config,
      preprocessing: plan,
    });
    model.dispose();

    const out = path.join(root, "pred");
    const files = await predictSplit(ckpt, resolved, "test", out, { overlap: 0.5 });
    assert.equal(files.length, resolved.splits.test.length);
    const pred = await readNifti(files[0], { as: "label" });
    assert.deepEqual(pred.shape, first.shape);
    assert.deepEqual(pred.affine, first.affine);
    assert.ok(Math.max(...pred.data) < 9);

    const r = await evaluatePredictions(resolved, "test", out);
    assert.equal(r.dice.classNames.length, 8);
    assert.equal(r.dice.caseIds.length, resolved.splits.test.length);
    const official = await evaluatePredictions(resolved, "test", out, "nnformer");
    assert.equal(official.units, "voxel");

    fs.rmSync(files[0]);
    await assert.rejects(
      evaluatePredictions(resolved, "test", out),
      /1 prediction file\(s\) missing.*\n.*phantom_00\d\.nii\.gz/,
    );
  });

  it("refuses mirror test-time augmentation for a checkpoint fine-tuned without mirroring", async () => {
    const manifest = phantomManifestFor(5, 3, [16, 32, 32], [12, 12, 12], path.join(root, "data"));
    const resolved = resolveManifest(manifest);
    const first = await readNifti(resolved.splits.test[0].images[0]);
    const plan = computePreprocessing([first], "CT");
    const model = buildModel("nnformer-micro", { inChannels: 1, numClasses: 9, cropSize: [16, 32, 32], seed: 0 });
    const save = async (name: string, extra: Record<string, unknown>) => {
      const file = path.join(root, name);
      await saveCheckpoint(file, model.params, {
        kind: "finetune",
        model: "nnformer-micro",
        config: model.config,
        preprocessing: plan,
        extra,
      });
      return file;
    };
    const plain = await save("plain.safetensors", { augment: false });
    const study = await save("study.safetensors", { settings: { finetune: { augment: false } } });
    const mirrored = await save("mirrored.safetensors", { augment: true });
    const unknown = await save("unknown.safetensors", {});
    model.dispose();
    const out = path.join(root, "pred-mirror");
    for (const ck of [plain, study])
      await assert.rejects(
        predictSplit(ck, resolved, "test", out, { overlap: 0, mirror: true }),
        new RegExp(`${path.basename(ck)} was fine-tuned without mirroring .*leave out --mirror`),
      );
    for (const [ck, recorded] of [
      [mirrored, true],
      [unknown, null],
    ] as const) {
      const p = Predictor.load(ck);
      assert.equal(p.trainedWithMirroring, recorded);
      p.dispose();
    }
    const files = await predictSplit(mirrored, resolved, "test", out, { overlap: 0, mirror: true });
    assert.equal(files.length, resolved.splits.test.length);
  });

  it("refuses a checkpoint that does not exist or has no preprocessing", async () => {
    assert.throws(() => Predictor.load(path.join(root, "nope.safetensors")), /does not exist/);
    const model = buildModel("nnformer-micro", { inChannels: 1, numClasses: 9, cropSize: [16, 32, 32], seed: 0 });
    const ckpt = path.join(root, "noplan.safetensors");
    await saveCheckpoint(ckpt, model.params, { kind: "finetune", model: "nnformer-micro", config: model.config });
    model.dispose();
    assert.throws(() => Predictor.load(ckpt), /records no preprocessing/);
    assert.equal(readCheckpoint(ckpt).info.kind, "finetune");
  });
});
