import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { finetuneAt, getProfile, PROFILES, TABLE2_MODELS } from "../../src/study/profiles";
import { runLowLabelStudy } from "../../src/study/lowlabel";
import { modelCostRows, table2Rows } from "../../src/study/report";
import { MODELS, buildModel } from "../../src/registry";

// The Table II comparison at smoke size: nnformer-micro (scratch and MAE) and the four baselines at their registry
// `tiny` overrides, 2 fine-tuning steps each on 32³ in-memory phantoms.
describe("study/table2 (table2-smoke profile)", function () {
  this.timeout(300000);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "kit-table2-"));
  after(() => fs.rmSync(root, { recursive: true, force: true }));
  before(async () => {
    await initBackend();
  });

  it("the table2 profile lists nnFormer and the four baselines on one crop every preset accepts", () => {
    const p = getProfile("table2");
    assert.deepEqual(p.models, TABLE2_MODELS);
    assert.deepEqual(p.cropSize, [32, 64, 64]);
    assert.deepEqual(p.labelFractions, [1]);
    assert.deepEqual(p.finetune, PROFILES.quick.finetune, "the quick profile's fine-tuning budget");
    for (const m of p.models) {
      const model = buildModel(m, { inChannels: 1, numClasses: 9, cropSize: p.cropSize!, seed: 0 }); // throws on a bad crop
      assert.ok(model.numParams() > 0);
      model.dispose();
    }
    assert.ok(Object.keys(getProfile("table2-smoke").modelOverrides!).every((m) => m in MODELS));
  });

  it("table2-quick is the demo's data, plan and full-label budget with the baselines on one 32³ crop", () => {
    const p = getProfile("table2-quick"),
      quick = getProfile("quick");
    assert.deepEqual(p.models, ["nnformer-quick", ...TABLE2_MODELS.slice(1)]);
    assert.deepEqual(p.cropSize, [32, 32, 32]);
    assert.deepEqual(p.labelFractions, [1]);
    assert.deepEqual(p.seeds, [0]);
    assert.deepEqual([p.data, p.spacing, p.preprocessing], [quick.data, quick.spacing, quick.preprocessing]);
    assert.deepEqual(finetuneAt(p, 1), finetuneAt(quick, 1), "the demo's budget at full labels");
    assert.equal(p.pretrain.shipped, quick.pretrain.shipped, "nnFormer's MAE arm starts from the shipped encoder");
    for (const m of p.models) {
      const model = buildModel(m, { inChannels: 1, numClasses: 9, cropSize: p.cropSize!, seed: 0 });
      model.dispose();
    }
  });

  it("runs end to end: every model trains, one Table II row per model and init, parameters and step times recorded", async () => {
    const out = path.join(root, "smoke");
    const r = await runLowLabelStudy(getProfile("table2-smoke"), { out, log: () => {} });
    const profile = getProfile("table2-smoke");
    assert.equal(r.results.length, profile.models.length + 1, "scratch for every model, MAE for nnFormer only");
    for (const res of r.results) {
      assert.equal(res.steps, 2, `${res.key} trained 2 steps`);
      assert.ok(Number.isFinite(res.test.meanDice), `${res.key}: test Dice`);
      assert.ok((res.meta!.params as number) > 0, `${res.key}: params recorded`);
      assert.ok((res.meta!.msPerStep as number) > 0, `${res.key}: step time recorded`);
    }
    // the overrides reached the builder: the smoke baselines are the registry's tiny networks
    const unet = r.results.find((x) => x.model === "unet3d-cpu")!;
    const tinyUnet = buildModel(
      "unet3d-cpu",
      { inChannels: 1, numClasses: 9, cropSize: [32, 32, 32], seed: 0 },
      MODELS["unet3d-cpu"].tiny.overrides,
    );
    assert.equal(unet.meta!.params, tinyUnet.numParams());
    tinyUnet.dispose();

    const rows = table2Rows(r.results);
    assert.deepEqual(
      rows.map((x) => `${x.model}/${x.init}`),
      [
        "nnformer-micro/scratch",
        "nnformer-micro/mae",
        "unet3d-cpu/scratch",
        "unetr-cpu/scratch",
        "swin-unetr-f12/scratch",
        "transunet3d-cpu/scratch",
      ],
    );
    assert.equal(
      Object.keys(rows[0]).filter((k) => !["model", "init", "n", "meanDice", "diceCi"].includes(k)).length,
      8,
      "8 organ columns",
    );
    assert.equal(modelCostRows(r.results).length, profile.models.length);

    const md = fs.readFileSync(r.tableFile, "utf8");
    assert.match(md, /Table II analogue/);
    assert.match(md, /ms \/ step/);
    const csv = fs.readFileSync(path.join(out, "table2.csv"), "utf8").trim().split("\n");
    assert.equal(csv.length, 1 + rows.length);
    assert.match(csv[0], /^model,init,params,msPerStep,n,meanDice,diceCi_lo,diceCi_hi,/);
    const html = fs.readFileSync(r.reportFile, "utf8");
    assert.ok(html.indexOf("Table II analogue") < html.indexOf("<h2>Test Dice and HD95"), "Table II leads the report");
    // a second study in the same process (constant caches are warm now) must not add tensors
    const before = tf.memory().numTensors;
    await runLowLabelStudy(getProfile("table2-smoke"), { out: path.join(root, "again"), log: () => {} });
    assert.equal(tf.memory().numTensors, before, "the study leaks no tensors");
  });
});
