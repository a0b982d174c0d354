// The researcher's report (issue 13): detectable difference, median validation curves with a band, convergence at
// levels both arms reach, Dice vs labelled cases, the methods paragraph and the example segmentations of a study.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { RunResult, cellKey } from "../../src/study/grid";
import {
  compareInits,
  convergenceRatios,
  diceVsLabelledCasesFigure,
  medianBand,
  methodsSentences,
  minimumDetectableDifference,
  pairedMde,
  powerNote,
  sharedLevelConvergence,
  validationCurvesFigure,
} from "../../src/study/report";
import { tCI } from "../../src/study/stats";
import { fileFingerprint } from "../../src/study/freshness";

/** A run with a hand-made validation curve (steps 100, 200, ...) and test mean Dice. */
function run(init: string, labelFraction: number, seed: number, curve: number[], dice = 0.5, cases = 1): RunResult {
  const c = { init, model: "nnformer", labelFraction, seed };
  return {
    key: cellKey(c),
    ...c,
    backend: "test",
    wallTimeS: 1,
    steps: curve.length * 100,
    curve: curve.map((valDice, i) => ({ step: (i + 1) * 100, valDice, trainLoss: 1 })),
    test: { perClassDice: { liver: dice }, perClassHd95: { liver: 5 }, meanDice: dice, meanHd95: 5 },
    labelledCases: Array.from({ length: cases }, (_, i) => `case_${i}`),
  };
}

describe("study/report for a researcher", () => {
  it("minimum detectable difference: (t(0.975, n-1) + t(0.8, n-1)) * sd / sqrt(n), checked by hand", () => {
    // n = 5, sd = 0.1: t(0.975, 4) = 2.776445, t(0.8, 4) = 0.940965 (tables); (3.717410 * 0.1) / sqrt(5) = 0.166248
    assert.ok(
      Math.abs(minimumDetectableDifference(0.1, 5) - 0.166248) < 1e-5,
      String(minimumDetectableDifference(0.1, 5)),
    );
    // n = 10, sd = 0.05: t(0.975, 9) = 2.262157, t(0.8, 9) = 0.883408; 3.145565 * 0.05 / sqrt(10) = 0.049736
    assert.ok(Math.abs(minimumDetectableDifference(0.05, 10) - 0.049736) < 1e-5);
    assert.ok(Number.isNaN(minimumDetectableDifference(0.1, 1)));
    assert.ok(Number.isNaN(minimumDetectableDifference(0, 5)));
    // from differences: sd of [0.1, 0.2, 0.3] is 0.1; n = 3: t(0.975, 2) = 4.302653, t(0.8, 2) = 1.060660
    assert.ok(Math.abs(pairedMde([0.1, 0.2, 0.3]) - ((4.302653 + 1.06066) * 0.1) / Math.sqrt(3)) < 1e-5);
    assert.throws(() => minimumDetectableDifference(0.1, 5, { power: 1.2 }), /power must be in \(0, 1\)/);

    // in the comparison rows and the power sentence
    const dice = { mae: [0.6, 0.62, 0.65, 0.61, 0.7], scratch: [0.55, 0.6, 0.58, 0.6, 0.61] };
    const results = (["mae", "scratch"] as const).flatMap((init) =>
      dice[init].map((d, seed) => run(init, 0.25, seed, [0.1, 0.2], d)),
    );
    const row = compareInits(results, { a: "mae", b: "scratch" })[0];
    assert.ok(Math.abs(row.mde - pairedMde(dice.mae.map((v, i) => v - dice.scratch[i]))) < 1e-12);
    assert.ok(row.mde > 0);
    const note = powerNote([row], { a: "mae", b: "scratch", names: { mae: "MAE" } })!;
    assert.match(note, /unit of each paired test of MAE vs scratch is the seed/);
    assert.ok(note.includes(`detects ${row.mde.toFixed(3)} Dice`), note);
    assert.match(note, /smallest exact p 0\.0625 \(cannot go below 0\.05\)/); // 2 / 2^5
    assert.match(note, /at least 6 pairs are needed/);
    const six = powerNote([{ ...row, n: 6, minP: 2 / 2 ** 6 }], { a: "mae", b: "scratch" })!;
    assert.ok(!six.includes("cannot go below") && six.includes("smallest exact p 0.0313"), six);
  });

  it("validation curves: median over seeds with a min-max band below 4 seeds and the IQR from 4", () => {
    const three = [0.1, 0.3, 0.2].map((v, seed) => run("mae", 0.5, seed, [v, 2 * v]));
    const b3 = medianBand(three);
    assert.deepEqual(b3.step, [100, 200]);
    assert.equal(b3.band, "min-max");
    assert.deepEqual(b3.median, [0.2, 0.4]);
    assert.deepEqual(b3.lo, [0.1, 0.2]);
    assert.deepEqual(b3.hi, [0.3, 0.6]);
    assert.deepEqual(b3.n, [3, 3]);
    const four = [0.4, 0.1, 0.3, 0.2].map((v, seed) => run("scratch", 0.5, seed, [v]));
    const b4 = medianBand(four);
    assert.equal(b4.band, "IQR");
    // sorted 0.1 0.2 0.3 0.4: median 0.25, quartiles at positions 0.75 and 2.25 -> 0.175 and 0.325
    assert.ok(Math.abs(b4.median[0] - 0.25) < 1e-12);
    assert.ok(Math.abs(b4.lo[0] - 0.175) < 1e-12 && Math.abs(b4.hi[0] - 0.325) < 1e-12);

    const fig = validationCurvesFigure([...three, ...four], 0.5);
    assert.match(fig.layout.title.text, /median over seeds, band: min-max or IQR over seeds/);
    const mid = fig.data.filter((t) => t.showlegend !== false);
    assert.deepEqual(
      mid.map((t) => t.name),
      ["mae (n=3)", "scratch (n=4)"],
    );
    assert.deepEqual(mid[0].y, [0.2, 0.4]);
    const filled = fig.data.filter((t) => t.fill === "tonexty");
    assert.deepEqual(filled[0].y, [0.3, 0.6]);
    assert.equal(fig.data.length, 6); // low edge, filled high edge and median line per arm
  });

  it("convergence at levels both arms reach, where one arm never reaches the fixed level", () => {
    // MAE tops out at a median of 0.4; scratch reaches 0.9
    const results = [
      ...[0, 1, 2].map((s) => run("mae", 0.1, s, [0.1, 0.3, 0.4 + 0.01 * (s - 1)])),
      ...[0, 1, 2].map((s) => run("scratch", 0.1, s, [0.2, 0.5, 0.9])),
    ];
    const fixed = convergenceRatios(results, { a: "mae", b: "scratch", levels: [0.5] })[0];
    assert.equal(fixed.medianStepsA, null); // the fixed level only scratch reaches
    assert.equal(fixed.medianStepsB, 200);
    const shared = sharedLevelConvergence(results, { a: "mae", b: "scratch" });
    assert.deepEqual(
      shared.map((r) => [r.share, r.level, r.medianStepsA, r.medianStepsB]),
      [
        [0.5, 0.2, 200, 100], // 50 % of the lower arm's best median (0.4)
        [0.8, 0.32, 300, 200],
      ],
    );
    assert.ok(shared.every((r) => r.medianStepsA !== null && r.medianStepsB !== null));
    assert.equal(shared[0].ratio, 0.5);
    // an arm with no positive validation Dice gives no shared level
    const flat = [run("mae", 0.1, 0, [0, 0]), run("scratch", 0.1, 0, [0.2, 0.4])];
    assert.deepEqual(sharedLevelConvergence(flat, { a: "mae", b: "scratch" }), []);
  });

  it("Dice vs labelled cases: x from labelledCases, mean with a t 95 % interval, fraction in the hover text", () => {
    const results = [
      ...[0.5, 0.6, 0.7].map((d, s) => run("mae", 0.125, s, [0.1], d, 1)),
      ...[0.7, 0.8, 0.9].map((d, s) => run("mae", 0.5, s, [0.1], d, 4)),
      ...[0.4, 0.5, 0.9].map((d, s) => run("scratch", 0.125, s, [0.1], d, 1)),
      run("scratch", 0.5, 0, [0.1], 0.8, 4),
    ];
    const fig = diceVsLabelledCasesFigure(results);
    assert.match(fig.layout.title.text, /Student t 95 % interval/);
    const [mae, scratch] = fig.data;
    assert.deepEqual(mae.x, [1, 4]);
    assert.deepEqual(mae.y, [0.6, 0.8]);
    const ci = tCI([0.5, 0.6, 0.7]);
    assert.ok(Math.abs(mae.error_y.array[0] - (ci.hi - 0.6)) < 1e-5);
    assert.ok(Math.abs(mae.error_y.arrayminus[0] - (0.6 - ci.lo)) < 1e-5);
    assert.match(mae.text[0], /^12\.5% labels, 1 labelled case, n=3 seeds/);
    assert.deepEqual(scratch.error_y.array.slice(1), [0]); // one seed: no bar
    const mm = diceVsLabelledCasesFigure(results, "min-max");
    assert.match(mm.layout.title.text, /min-max over seeds/);
    assert.ok(Math.abs(mm.data[1].error_y.array[0] - (0.9 - 0.6)) < 1e-5);
    assert.ok(Math.abs(mm.data[1].error_y.arrayminus[0] - (0.6 - 0.4)) < 1e-5);
  });

  it("methods: cites the encoder's card when one sits beside the checkpoint, and says when there is none", () => {
    const results = [0, 1].flatMap((s) => [
      {
        ...run("mae", 0.25, s, [0.1], 0.5, 2),
        meta: { pretraining: "given checkpoint", params: 1234, testCases: ["a", "b", "c"] },
      },
      { ...run("scratch", 0.25, s, [0.1], 0.5, 2), meta: { params: 1234, testCases: ["a", "b", "c"] } },
    ]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "methods-"));
    const enc = path.join(dir, "pretrained", "quick-mae");
    fs.mkdirSync(enc, { recursive: true });
    const ckpt = path.join(enc, "mae.safetensors");
    fs.writeFileSync(ckpt, "");
    const without = methodsSentences(results, { maeCheckpoint: ckpt }).join(" ");
    assert.match(without, /shipped encoder "quick-mae".*no model card \(card\.json\) beside it/);
    assert.match(without, /1,234 parameters/);
    assert.match(without, /25% labels \(2 labelled cases\): 100 steps, 2 seeds \(0, 1\) per arm/);
    assert.match(without, /Test: 3 cases/);
    fs.writeFileSync(
      path.join(enc, "card.json"),
      JSON.stringify({
        steps: 3000,
        wallTimeS: 7200,
        data: { unlabeled: 240 },
        heldOut: { loss: 0.78, meanBaseline: 2.58 },
        commit: "abcdef0123456789",
      }),
    );
    const withCard = methodsSentences(results, { maeCheckpoint: ckpt }).join(" ");
    assert.match(
      withCard,
      /3,000 steps, on 240 unlabeled volumes, 2\.00 h of wall time, held-out masked-reconstruction loss 0\.7800 vs 2\.5800 for predicting the mean, kit commit abcdef012345/,
    );
    // a rebuilt report (no checkpoint passed): the profile's shipped encoder is cited only when its fingerprint is the
    // one the runs recorded
    const recorded = (fp: string) =>
      results.map((r) => (r.init === "mae" ? { ...r, meta: { ...r.meta, settings: { pretrained: fp } } } : r));
    const shipped = { steps: 5, shipped: ckpt };
    assert.match(
      methodsSentences(recorded(`file ${fileFingerprint(ckpt)}`), { pretrain: shipped }).join(" "),
      /shipped encoder "quick-mae".*3,000 steps/,
    );
    const other = methodsSentences(recorded("file 0000000000000000"), { pretrain: shipped }).join(" ");
    assert.ok(!other.includes("quick-mae") && !other.includes("3,000"), other);
    assert.match(other, /a checkpoint these results do not name/);
    fs.writeFileSync(path.join(enc, "card.json"), "{not json");
    assert.match(
      methodsSentences(results, { maeCheckpoint: ckpt }).join(" "),
      /model card could not be read: .*not valid JSON/,
    );
  });
});
