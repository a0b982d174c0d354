import { strict as assert } from "assert";
import { className, diceScores, nanMean, overlapCounts } from "../../src/metrics/dice";
import { formatSummary, summarize, evaluateCase, summarizeCases, NNFORMER_EVAL } from "../../src/metrics/summarize";

/** A [4, 4, 4] label map from a function of (d, h, w). */
function labels(f: (d: number, h: number, w: number) => number, shape = [4, 4, 4]): Uint8Array {
  const out = new Uint8Array(shape[0] * shape[1] * shape[2]);
  let i = 0;
  for (let d = 0; d < shape[0]; d++)
    for (let h = 0; h < shape[1]; h++) for (let w = 0; w < shape[2]; w++) out[i++] = f(d, h, w);
  return out;
}

describe("metrics/dice", () => {
  it("identical maps give 1 for every present class", () => {
    const a = labels((d, h, w) => (d + h + w) % 3);
    assert.deepEqual(diceScores(a, a.slice(), [0, 1, 2]), [1, 1, 1]);
  });

  it("disjoint structures give 0", () => {
    const p = labels((d) => (d < 2 ? 1 : 0));
    const r = labels((d) => (d >= 2 ? 1 : 0));
    assert.deepEqual(diceScores(p, r, [1]), [0]);
  });

  it("half overlap gives exact fractions", () => {
    // pred: d < 2 (32 voxels); ref: d in 1..2 (32 voxels); overlap d = 1 (16 voxels) -> 2*16/64 = 1/2
    const p = labels((d) => (d < 2 ? 1 : 0));
    const r = labels((d) => (d === 1 || d === 2 ? 1 : 0));
    assert.equal(diceScores(p, r, [1])[0], 0.5);
    // pred: all 64; ref: d == 0 (16) -> 2*16/80 = 0.4; background: pred 0, ref 48 -> 0
    const all = labels(() => 1);
    const q = labels((d) => (d === 0 ? 1 : 0));
    assert.deepEqual(diceScores(all, q, [1, 0]), [0.4, 0]);
    // a single voxel against three voxels that contain it: 2*1/4
    const one = labels((d, h, w) => (d === 1 && h === 1 && w === 1 ? 2 : 0));
    const three = labels((d, h, w) => (d === 1 && h === 1 && w <= 2 ? 2 : 0));
    assert.equal(diceScores(one, three, [2])[0], 0.5);
  });

  it("empty structures: both empty -> NaN (default) or 1; one empty -> 0", () => {
    const a = labels((d) => (d === 0 ? 1 : 0));
    const zero = new Uint8Array(64);
    assert.ok(Number.isNaN(diceScores(zero, zero, [1])[0]));
    assert.deepEqual(diceScores(zero, zero, [1], { bothEmpty: 1 }), [1]);
    assert.deepEqual(diceScores(a, zero, [1]), [0]);
    assert.deepEqual(diceScores(zero, a, [1], { bothEmpty: 1 }), [0]);
    // class 5 absent in both, class 1 perfect: the mean skips the NaN
    const s = diceScores(a, a, [1, 5]);
    assert.ok(Number.isNaN(s[1]));
    assert.equal(nanMean(s), 1);
    assert.ok(Number.isNaN(nanMean([NaN, NaN])));
  });

  it("regions are unions of labels (BraTS TC = {2, 3}, WT = {1, 2, 3})", () => {
    const p = labels((d) => [1, 2, 3, 0][d]);
    const r = labels((d) => [2, 2, 3, 3][d]);
    // TC: pred d in {1,2} (32), ref all 64, both 32 -> 64/96
    const [et, tc, wt] = diceScores(p, r, [3, [2, 3], [1, 2, 3]]);
    assert.equal(et, (2 * 16) / (16 + 32));
    assert.equal(tc, (2 * 32) / (32 + 64));
    assert.equal(wt, (2 * 48) / (48 + 64));
    assert.equal(className([2, 3]), "2+3");
    assert.deepEqual(overlapCounts(p, r, [[2, 3]]), [{ pred: 32, ref: 64, intersection: 32 }]);
  });

  it("works on wide label ranges and other array types", () => {
    const p = new Int32Array([1000, 1000, -5, 7]);
    const r = new Int32Array([1000, 7, -5, 7]);
    assert.deepEqual(diceScores(p, r, [1000, -5, 7]), [2 / 3, 1, 2 / 3]);
    const f = new Float32Array([0, 1, 1, 0]);
    assert.deepEqual(diceScores(f, [0, 1, 0, 0], [1]), [2 / 3]);
  });

  it("rejects mismatched grids and non-integer labels", () => {
    assert.throws(() => diceScores(new Uint8Array(3), new Uint8Array(4), [1]), /same grid/);
    assert.throws(() => diceScores(new Float32Array([0.5]), new Float32Array([1]), [1]), /not an integer label/);
    assert.throws(
      () => diceScores(new Uint8Array(1), new Uint8Array(1), [1], { bothEmpty: 0 as unknown as 1 }),
      /bothEmpty/,
    );
    assert.throws(() => diceScores(new Uint8Array(1), new Uint8Array(1), [1.5]), /integer label/);
  });

  it("is fast on a 128^3 volume", () => {
    const n = 128 ** 3;
    const p = new Uint8Array(n),
      r = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      p[i] = i % 9;
      r[i] = (i >> 3) % 9;
    }
    const t0 = Date.now();
    const s = diceScores(p, r, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
    assert.equal(s.length, 8);
  });
});

describe("metrics/summarize", () => {
  it("means over cases then over classes, skipping NaN, with counts", () => {
    const s = summarize(
      [
        { caseId: "a", values: [1, 0.5, NaN] },
        { caseId: "b", values: [0.5, NaN, NaN] },
        { caseId: "c", values: [0, 0.25, NaN] },
      ],
      ["spleen", "liver", "gall"],
    );
    assert.deepEqual(s.perClass.map((c) => c.mean).slice(0, 2), [0.5, 0.375]);
    assert.deepEqual(
      s.perClass.map((c) => c.count),
      [3, 2, 0],
    );
    assert.ok(Number.isNaN(s.perClass[2].mean));
    assert.equal(s.mean, (0.5 + 0.375) / 2);
    assert.deepEqual(
      s.perCase.map((c) => c.mean),
      [0.75, 0.5, 0.125],
    );
    assert.ok(Math.abs(s.perClass[0].std - Math.sqrt(1 / 6)) < 1e-12);
    const text = formatSummary(s, 3);
    assert.match(text, /mean\s+0\.500\s+0\.375\s+NaN\s+0\.438/);
    assert.throws(() => summarize([{ caseId: "x", values: [1] }], ["a", "b"]), /2 classes/);
  });

  it("evaluates cases with both conventions", () => {
    const shape: [number, number, number] = [4, 4, 4];
    const ref = labels((d) => (d < 2 ? 1 : 0));
    const pred = labels((d) => (d < 2 ? 1 : d === 3 ? 2 : 0));
    const ours = evaluateCase("c1", pred, ref, [1, 2, 3], shape, [2, 1, 1]);
    assert.deepEqual(ours.dice.slice(0, 2), [1, 0]);
    assert.ok(Number.isNaN(ours.dice[2]));
    assert.equal(ours.hd95[0], 0);
    assert.ok(Number.isNaN(ours.hd95[1]) && Number.isNaN(ours.hd95[2]));
    const official = evaluateCase("c1", pred, ref, [1, 2, 3], shape, [2, 1, 1], NNFORMER_EVAL);
    assert.deepEqual(official.dice, [1, 0, 1]);
    assert.deepEqual(official.hd95, [0, 0, 0]);
    const sum = summarizeCases([ours, official], [1, 2, 3]);
    assert.deepEqual(sum.dice.classNames, ["1", "2", "3"]);
    assert.equal(sum.dice.perClass[2].count, 1);
    assert.equal(sum.hd95.perClass[1].count, 1);
  });
});
