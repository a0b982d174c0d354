// The example segmentations a study draws (examples.ts), on a real smoke study in a temporary folder.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { getProfile } from "../../src/study/profiles";
import { loadStudyData, runLowLabelStudy, writeReports } from "../../src/study/lowlabel";
import {
  EXAMPLES_FILE,
  ExamplesRecord,
  exampleSegmentations,
  mostLabelledSlice,
  readExamples,
  writeExampleSegmentations,
} from "../../src/study/examples";
import { extractSlice } from "../../src/plots/volume_views";
import { RunResult } from "../../src/study/grid";
import { runFolder } from "../../src/train/recipe";

describe("study/examples (smoke study)", function () {
  this.timeout(300_000);
  let out = "";
  let results: RunResult[] = [];
  before(async () => {
    out = fs.mkdtempSync(path.join(os.tmpdir(), "study-examples-"));
    results = (await runLowLabelStudy(getProfile("smoke"), { out, log: () => {} })).results;
  });
  after(() => fs.rmSync(out, { recursive: true, force: true }));

  it("draws image | ground truth | scratch | MAE of the first test case, largest fraction, first seed", async () => {
    const rec: ExamplesRecord = JSON.parse(fs.readFileSync(path.join(out, EXAMPLES_FILE), "utf8"));
    assert.equal(rec.skipped, undefined);
    assert.equal(rec.labelFraction, 1);
    assert.equal(rec.seed, 0);
    assert.deepEqual(rec.cells, [
      "model=nnformer-micro|init=scratch|frac=1|seed=0",
      "model=nnformer-micro|init=mae|frac=1|seed=0",
    ]);
    const data = await loadStudyData(getProfile("smoke"));
    const testCase = data.test[0];
    assert.equal(rec.caseId, testCase.id);
    const label = testCase.label!;
    assert.equal(rec.slice, mostLabelledSlice(label));
    // the chosen slice holds at least as many labelled voxels as any other
    const count = (d: number) => extractSlice(label, 0, d).values.filter((v) => v > 0).length;
    for (let d = 0; d < label.shape[0]; d++) assert.ok(count(rec.slice!) >= count(d));

    const fig = rec.figure!;
    const heat = fig.data.filter((t) => t.type === "heatmap");
    // four image panels, three label overlays (ground truth, scratch, MAE)
    assert.deepEqual(
      heat.map((t) => t.name),
      ["image", "ground truth", "ground truth label", "scratch", "scratch label", "MAE", "MAE label"],
    );
    // the ground truth overlay is the slice of the real label map (background transparent)
    const gt = extractSlice(label, 0, rec.slice!);
    const want = Array.from({ length: gt.rows }, (_, r) =>
      Array.from({ length: gt.cols }, (_, c) => (gt.values[r * gt.cols + c] > 0 ? gt.values[r * gt.cols + c] : null)),
    );
    assert.deepEqual(heat[2].z, want);
    assert.ok(want.flat().some((v) => v !== null));
    // predictions are label maps with organ ids only
    for (const t of [heat[4], heat[6]])
      for (const v of (t.z as (number | null)[][]).flat())
        assert.ok(v === null || (Number.isInteger(v) && v >= 1 && v <= 8));
    // organ names in the legend with their fixed colours
    const legend = fig.data.filter((t) => t.type === "scatter").map((t) => t.name);
    assert.ok(legend.includes("liver") && legend.includes("spleen"), legend.join());

    // drawn again: the same figure, and no tensor left behind
    const before = tf.memory().numTensors;
    const again = await exampleSegmentations(results, out, testCase, { names: { mae: "MAE" } });
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(again.figure, fig);

    // in the report, with the methods paragraph in table.md
    const html = fs.readFileSync(path.join(out, "report.html"), "utf8");
    assert.ok(html.includes("<h2>Example segmentations</h2>") && html.includes("ground truth label"));
    assert.ok(html.includes("<h2>Methods</h2>"));
    const md = fs.readFileSync(path.join(out, "table.md"), "utf8");
    assert.match(md, /## Methods \(smoke profile\)\n\nData: phantom \(in memory, 16x32x32\); cases: 3 unlabeled/);
    assert.match(md, /detectable difference \(80% power\)/);
    assert.match(md, /- Power: the unit of each paired test of MAE vs scratch is the seed/);
    assert.match(md, /- Axial slice \d+ .* The figure is in report.html./);
  });

  it("skips with the reason when a checkpoint is missing, and the report says so", async () => {
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), "study-examples-merged-"));
    try {
      // results merged from elsewhere: the scratch run's folder is there, the MAE one is not
      const scratch = results.find((r) => r.init === "scratch" && r.labelFraction === 1 && r.seed === 0)!;
      fs.mkdirSync(runFolder(copy, scratch.key), { recursive: true });
      fs.copyFileSync(
        path.join(runFolder(out, scratch.key), "latest.safetensors"),
        path.join(runFolder(copy, scratch.key), "latest.safetensors"),
      );
      let loaded = false;
      const rec = await writeExampleSegmentations(results, copy, async () => {
        loaded = true;
        return (await loadStudyData(getProfile("smoke"))).test[0];
      });
      assert.equal(rec.figure, undefined);
      assert.match(
        rec.skipped!,
        /no final weights for runs\/model_nnformer-micro_init_mae_frac_1_seed_0\/latest\.safetensors/,
      );
      assert.ok(loaded);
      const note = readExamples(copy, results).note;
      assert.match(note, /^Example segmentations skipped: no final weights/);
      writeReports(results, copy, getProfile("smoke"));
      const html = fs.readFileSync(path.join(copy, "report.html"), "utf8");
      assert.ok(html.includes("Example segmentations skipped: no final weights"));
      // a checkpoint that does not load: recorded, not thrown (the finished study still gets its report)
      const mae = results.find((r) => r.init === "mae" && r.labelFraction === 1 && r.seed === 0)!;
      fs.mkdirSync(runFolder(copy, mae.key), { recursive: true });
      fs.writeFileSync(path.join(runFolder(copy, mae.key), "latest.safetensors"), "not a checkpoint");
      const broken = await writeExampleSegmentations(results, copy, async () => {
        return (await loadStudyData(getProfile("smoke"))).test[0];
      });
      assert.match(broken.skipped!, /^drawing failed: .*latest\.safetensors/);
      // a stale file drawn from other runs is not shown
      fs.copyFileSync(path.join(out, EXAMPLES_FILE), path.join(copy, EXAMPLES_FILE));
      assert.match(readExamples(copy, results.slice(0, 1)).note, /drawn from runs that are not in these results/);
    } finally {
      fs.rmSync(copy, { recursive: true, force: true });
    }
  });
});
