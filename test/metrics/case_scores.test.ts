import { strict as assert } from "assert";
import type { Vec3 } from "../../src/runtime/math";
import { scoreCase, summarizeScoredCases } from "../../src/metrics/case_scores";

// Two 4x6x6 cases at 3 x 1 x 1 mm (diagonal sqrt(12^2 + 6^2 + 6^2) = sqrt(216)). Classes 1, 2, 3.
//   case a: organ 1 in slice 0, predicted in slice 1 (found, HD95 3 mm, Dice 0); organ 2 in slice 3, missed;
//           organ 3 absent from both.
//   case b: organ 1 exact (found, HD95 0, Dice 1); organ 2 absent from the reference but predicted (false positive);
//           organ 3 absent from both.
const shape: Vec3 = [4, 6, 6];
const spacing: Vec3 = [3, 1, 1];
const diag = Math.hypot(12, 6, 6);
function labels(f: (d: number) => number): Uint8Array {
  return Uint8Array.from({ length: 144 }, (_, i) => f(Math.floor(i / 36)));
}
const refA = labels((d) => (d === 0 ? 1 : d === 3 ? 2 : 0));
const predA = labels((d) => (d === 1 ? 1 : 0));
const refB = labels((d) => (d === 0 ? 1 : 0));
const predB = labels((d) => (d === 0 ? 1 : d === 2 ? 2 : 0));

describe("metrics/case_scores", () => {
  it("scores one case: Dice, penalised and found-only HD95, outcomes", () => {
    const a = scoreCase("a", predA, refA, [1, 2, 3], shape, spacing, "medpy");
    assert.deepEqual(a.outcomes, ["predicted", "missed", "absent"]);
    assert.deepEqual(a.dice.slice(0, 2), [0, 0]);
    assert.ok(Number.isNaN(a.dice[2]));
    assert.equal(a.hd95[0], 3);
    assert.equal(a.hd95[1], diag);
    assert.ok(Number.isNaN(a.hd95[2]));
    assert.equal(a.hd95Found[0], 3);
    assert.ok(Number.isNaN(a.hd95Found[1]));
    assert.equal(a.penalty, diag);
  });

  it("summarises cases: means over cases then classes, undefined values counted, outcomes per case", () => {
    const cases = [
      scoreCase("a", predA, refA, [1, 2, 3], shape, spacing, "medpy"),
      scoreCase("b", predB, refB, [1, 2, 3], shape, spacing, "medpy"),
    ];
    const s = summarizeScoredCases(cases, ["one", "two", "three"], "medpy");
    assert.deepEqual(s.perClassDice.one, 0.5);
    assert.deepEqual(s.perClassDice.two, 0); // missed and false positive both score 0
    assert.ok(Number.isNaN(s.perClassDice.three));
    assert.equal(s.meanDice, 0.25);
    assert.equal(s.perClassHd95.one, 1.5);
    assert.equal(s.perClassHd95.two, diag);
    assert.equal(s.meanHd95, (1.5 + diag) / 2);
    // found only: organ one in both cases, organ two never found (2 undefined), organ three has nothing to measure
    assert.equal(s.perClassHd95Found.one, 1.5);
    assert.ok(Number.isNaN(s.perClassHd95Found.two));
    assert.deepEqual(s.perClassHd95Undefined, { one: 0, two: 2, three: 0 });
    assert.equal(s.meanHd95Found, 1.5); // looks far better than meanHd95: that is why verdicts use the penalised one
    assert.equal(s.hd95Undefined, 2);
    assert.equal(s.hd95Pairs, 4);
    assert.deepEqual(s.perClassDetection.two, {
      total: 2,
      present: 1,
      predicted: 0,
      missed: 1,
      falsePositive: 1,
      absent: 0,
    });
    assert.deepEqual(s.detection, { total: 6, present: 3, predicted: 2, missed: 1, falsePositive: 1, absent: 2 });
    assert.deepEqual(s.hd95, { definition: "medpy", units: "mm", missPenalty: "volume diagonal" });
    assert.deepEqual(
      s.perCase.map((c) => c.outcomes),
      ["PMA", "PFA"],
    );
    assert.throws(() => summarizeScoredCases(cases, ["one", "two"], "medpy"), /case a has 3 scores but there are 2/);
  });
});
