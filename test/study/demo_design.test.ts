// The demo's study design: budgets per label fraction, the plan taken from a given encoder, the shipped encoder's
// lookup, and the profiles that use them.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { finetuneAt, getProfile, seedsAt, shippedEncoder, type StudyProfile } from "../../src/study/profiles";
import { resolveProfile } from "../../src/study/profile_schema";
import { studyPlan, type StudyData } from "../../src/study/lowlabel";
import { generatePhantom, PHANTOM_LABELS } from "../../src/data/phantom";
import { computePreprocessing } from "../../src/data/preprocess";
import { MaeNnFormer } from "../../src/mae/mae3d";
import { saveMaeCheckpoint } from "../../src/mae/checkpoint";
import { NNFORMER_E12_16X32X32 } from "../../src/models/nnformer_presets";
import { initBackend } from "../../src/runtime/backend";

describe("demo design", () => {
  before(async () => {
    await initBackend();
  });

  it("perFraction sets the seeds and steps of one fraction, the same for every init", () => {
    const p = getProfile("quick");
    assert.deepEqual(seedsAt(p, 1 / 32), p.seeds, "every seed at the lowest fraction");
    assert.ok(p.seeds.length >= 5, "at least 5 paired seeds at the lowest fraction");
    assert.deepEqual(seedsAt(p, 1), p.seeds.slice(0, p.perFraction!["1"].seeds));
    assert.equal(finetuneAt(p, 1).steps, p.perFraction!["1"].steps);
    assert.equal(finetuneAt(p, 1 / 32).steps, p.finetune.steps);
    assert.deepEqual({ ...finetuneAt(p, 1), steps: 0 }, { ...p.finetune, steps: 0 }, "only the steps differ");
    const plain: StudyProfile = { ...p, perFraction: undefined };
    assert.equal(finetuneAt(plain, 1), plain.finetune);
    assert.equal(seedsAt(plain, 1), plain.seeds);
  });

  it("perFraction is checked like every profile field", () => {
    assert.throws(
      () => resolveProfile(getProfile("quick"), [{ source: "c.json", values: { perFraction: { "1": { seeds: 0 } } } }]),
      /c\.json: perFraction\.1\.seeds/,
    );
    assert.throws(
      () => resolveProfile(getProfile("quick"), [{ source: "c.json", values: { perFraction: { "1": { step: 5 } } } }]),
      /c\.json: perFraction\.1/,
    );
  });

  it("the long profile runs more fractions and seeds than the demo with the same recipe", () => {
    const q = getProfile("quick"),
      l = getProfile("long");
    assert.ok(l.labelFractions.length > q.labelFractions.length);
    assert.ok(l.seeds.length > q.seeds.length);
    assert.deepEqual({ ...l.finetune }, { ...q.finetune });
    for (const f of l.labelFractions) assert.ok(seedsAt(l, f).length >= 3, `seeds at ${f}`);
  });

  it("a missing shipped encoder is named with the ways out", () => {
    const p = getProfile("quick");
    p.pretrain.shipped = "pretrained/nowhere/mae.safetensors";
    assert.throws(() => shippedEncoder(p), /pretrained\/nowhere\/mae\.safetensors is missing[\s\S]*--pretrain-afresh/);
    assert.equal(shippedEncoder(getProfile("smoke")), undefined);
  });

  it("with an encoder checkpoint, the study's plan is the checkpoint's; a spacing that disagrees is refused", async () => {
    const cases = [0, 1].map((i) => generatePhantom(0, i, { shape: [16, 32, 32] }));
    const data: StudyData = {
      name: "tiny",
      modality: "CT",
      labelNames: PHANTOM_LABELS.map((l) => l.name),
      evalClasses: [1],
      unlabeled: [],
      train: cases.map((c, i) => ({ id: `t${i}`, image: c.image, label: c.label })),
      val: [],
      test: [],
    };
    // a plan that the data would not give (other statistics, other spacing), stored in an MAE checkpoint
    const own = computePreprocessing([cases[0].image], "CT", { spacing: [6, 8, 8] });
    const stored = { ...own, intensity: { ...own.intensity, mean: 12.5 } } as typeof own;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "plan-"));
    const file = path.join(dir, "mae.safetensors");
    const mae = new MaeNnFormer({ ...NNFORMER_E12_16X32X32, numClasses: 9 }, {}, { seed: 0 });
    await saveMaeCheckpoint(file, mae, { preprocessing: stored });
    mae.dispose();
    const profile = { ...getProfile("smoke"), spacing: [6, 8, 8] as [number, number, number] };
    assert.deepEqual(studyPlan(profile, data, file), stored);
    assert.notDeepEqual(studyPlan(profile, data), stored, "without a checkpoint the plan comes from the data");
    assert.throws(
      () => studyPlan({ ...profile, spacing: [3, 6, 6] }, data, file),
      /pretrained at spacing 6 x 8 x 8 mm, but profile smoke asks for 3 x 6 x 6 mm/,
    );
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
