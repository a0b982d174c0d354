import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { getProfile } from "../../src/study/profiles";
import { runLowLabelStudy } from "../../src/study/lowlabel";
import { readResults } from "../../src/study/grid";

// The smoke profile: micro nnFormer, in-memory 16x32x32 phantoms, 2 fine-tuning steps per cell, 2 pretraining steps.
describe("study/lowlabel (smoke profile)", function () {
  this.timeout(300000);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "kit-study-"));
  after(() => fs.rmSync(root, { recursive: true, force: true }));
  before(async () => {
    await initBackend();
  });

  it("runs end to end: pretraining, both arms at every fraction, tables and report", async () => {
    const out = path.join(root, "full");
    const r = await runLowLabelStudy(getProfile("smoke"), { out, log: () => {} });
    // a second study in the same process (caches of constant tensors are warm now) must not add tensors
    const before = tf.memory().numTensors;
    await runLowLabelStudy(getProfile("smoke"), { out: path.join(root, "again"), log: () => {} });
    assert.equal(tf.memory().numTensors, before, "the study leaks no tensors");
    assert.equal(r.results.length, 4); // 2 fractions x 2 inits x 1 seed
    for (const res of r.results) {
      assert.equal(res.steps, 2);
      assert.equal(Object.keys(res.test.perClassDice).length, 8, "all 8 organs scored");
      if (res.init === "mae")
        assert.ok((res.meta!.transferredTensors as number) > 0, "the mae arm starts from transferred weights");
    }
    assert.ok(fs.existsSync(path.join(out, "pretrain", "nnformer-micro", "mae_latest.safetensors")));
    assert.match(fs.readFileSync(r.tableFile, "utf8"), /MAE vs scratch/);
    assert.ok(fs.statSync(r.reportFile).size > 100000, "the HTML report inlines plotly");
  });

  it("an interrupted study resumes without repeating finished runs and ends with the same results", async () => {
    const full = readResults(path.join(root, "full", "results.jsonl"));
    const out = path.join(root, "interrupted");
    let cellsStarted = 0;
    // interrupt the third cell at step 2, after its step-1 checkpoint
    await assert.rejects(
      runLowLabelStudy(getProfile("smoke"), {
        out,
        log: () => {},
        onStep: (_cell, rec) => {
          if (rec.step === 1) cellsStarted++;
          if (cellsStarted === 3 && rec.step === 2) throw new Error("simulated interruption");
        },
      }),
      /simulated interruption/,
    );
    assert.equal(
      readResults(path.join(out, "results.jsonl")).length,
      2,
      "two cells were finished before the interruption",
    );
    const ran: string[] = [];
    const r = await runLowLabelStudy(getProfile("smoke"), { out, log: (s) => ran.push(s) });
    assert.equal(ran.filter((l) => /already in/.test(l)).length, 2, "finished cells are skipped");
    assert.ok(
      ran.some((l) => /resuming .* from step 1/.test(l)),
      "the interrupted cell continues from its checkpoint",
    );
    assert.equal(ran.filter((l) => /^pretraining MAE/.test(l)).length, 0, "the finished pretraining is reused");
    const byKey = new Map(full.map((x) => [x.key, x]));
    for (const res of r.results) {
      const ref = byKey.get(res.key)!;
      assert.deepEqual(
        res.test.perClassDice,
        ref.test.perClassDice,
        `${res.key}: same test Dice as the uninterrupted run`,
      );
      assert.deepEqual(
        res.curve.map((c) => c.valDice),
        ref.curve.map((c) => c.valDice),
        `${res.key}: same validation curve`,
      );
    }
  });

  it("refuses an unwritable output folder before any training", async () => {
    const file = path.join(root, "not-a-dir");
    fs.writeFileSync(file, "x");
    await assert.rejects(
      runLowLabelStudy(getProfile("smoke"), { out: path.join(file, "sub"), log: () => {} }),
      /not writable/,
    );
  });
});
