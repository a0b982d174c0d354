// Reports from runs that carry the kit's test scores: misses are counted and penalised beside every mean, intervals
// are never zero-width, and the notes name the HD95 definition, the interval method, the test unit and pretraining.
import { strict as assert } from "assert";
import { scoreCase, summarizeScoredCases } from "../../src/metrics/case_scores";
import { RunResult, cellKey } from "../../src/study/grid";
import { compareInits, detectionTable, studyNotes, studyTable, toMarkdown } from "../../src/study/report";
import type { Vec3 } from "../../src/runtime/math";

const shape: Vec3 = [4, 6, 6];
const spacing: Vec3 = [3, 1, 1];
const diag = Math.hypot(12, 6, 6);
/** Reference: organ 1 in slice 0, organ 2 in slice 3. */
const ref = Uint8Array.from({ length: 144 }, (_, i) => (i < 36 ? 1 : i >= 108 ? 2 : 0));

/** A run whose prediction has organ 1 shifted by `shift` slices and organ 2 found or missed. */
function run(init: string, seed: number, shift: number, findsTwo: boolean, pretraining?: string): RunResult {
  const pred = Uint8Array.from({ length: 144 }, (_, i) => {
    const d = Math.floor(i / 36);
    if (d === shift) return 1;
    return findsTwo && d === 3 ? 2 : 0;
  });
  const scored = scoreCase("case0", pred, ref, [1, 2], shape, spacing, "medpy");
  const test = summarizeScoredCases([scored], ["one", "two"], "medpy");
  const c = { init, model: "nnformer", labelFraction: 1, seed };
  return {
    key: cellKey(c),
    ...c,
    backend: "test",
    wallTimeS: 1,
    steps: 10,
    curve: [{ step: 10, valDice: 0.5, trainLoss: 1 }],
    test,
    meta: { testCases: ["case0"], valCases: ["case1"], ...(pretraining ? { pretraining } : {}) },
  };
}

describe("study/report notes", () => {
  // scratch finds both organs (organ one 1 slice off: HD95 3 mm); MAE finds organ one exactly but misses organ two
  const results = [run("scratch", 0, 1, true), run("mae", 0, 0, false, "shared (seed 0)")];

  it("a missed organ is counted and penalised beside the mean, never dropped", () => {
    const rows = studyTable(results, { by: ["init"] });
    const mae = rows.find((r) => r.init === "mae")!;
    const scratch = rows.find((r) => r.init === "scratch")!;
    // mean over organs of the penalised HD95: MAE (0 + diagonal) / 2 is worse than scratch (3 + 0) / 2
    assert.equal(mae.hd95.mean, diag / 2);
    assert.equal(scratch.hd95.mean, 1.5);
    assert.equal(mae.organs, "1/2 found, 1 missed, 0 FP");
    assert.equal(scratch.organs, "2/2 found, 0 missed, 0 FP");
    // the found-only figure would favour MAE (0 vs 1.5), so it is printed with its undefined count
    assert.equal(mae.hd95Found, "0.00 (1 of 2 undefined)");
    assert.equal(scratch.hd95Found, "1.50");
    const md = toMarkdown(rows);
    assert.match(md, /n\/a \(n = 1\)/);
    assert.doesNotMatch(md, /\[(-?[\d.]+), \1\]/, "no zero-width interval");
    // HD95 verdicts penalise the miss: lower is better, scratch ahead
    const v = compareInits([...results, run("scratch", 1, 1, true), run("mae", 1, 0, false)], {
      a: "mae",
      b: "scratch",
      metric: "hd95",
      names: { mae: "MAE" },
    })[0];
    assert.match(v.verdict, /scratch ahead by [\d.]+ mm HD95/);
    const det = detectionTable(results, { by: ["init"] });
    assert.deepEqual(
      det.map((r) => [r.init, r.one, r.two]),
      [
        ["scratch", "1/1", "1/1"],
        ["mae", "1/1", "0/1"],
      ],
    );
  });

  it("the notes name the HD95 definition, the interval method, the paired unit, pretraining and the test split", () => {
    const notes = studyNotes(results).join("\n");
    assert.match(notes, /HD95: medpy: 95th percentile of the surface distances of both directions pooled/);
    assert.match(notes, /scores the volume's diagonal/);
    assert.match(notes, /95 % CI: Student t interval/);
    assert.match(notes, /n\/a \(n = 1\)/);
    assert.match(notes, /Paired tests: the unit is the seed\. .* mean over 1 test case;/);
    assert.match(notes, /one pretraining \(seed 0\) shared by every seed, so the seed-level tests leave out/);
    assert.match(notes, /Test split: 1 case, .* validation curves use 1 other case, never a test case/);
    assert.match(studyNotes(results, { interval: "bootstrap-percentile" }).join(" "), /percentile bootstrap.*75 %/);
    // runs from before HD95 definitions were named are flagged, not mixed in silently
    const legacy: RunResult = {
      ...results[0],
      test: { perClassDice: { one: 0.5 }, perClassHd95: { one: 3 }, meanDice: 0.5, meanHd95: 3 },
    };
    assert.match(studyNotes([legacy]).join(" "), /1 run\(s\) were recorded before HD95 definitions were named/);
  });
});
