import { strict as assert } from "assert";
import {
  bootstrapCI,
  holmAdjust,
  mean,
  median,
  minAttainableP,
  normalCdf,
  pairedComparison,
  signFlipTest,
  std,
  stepsToReach,
  wilcoxonSignedRank,
} from "../../src/study/stats";

const close = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

/** The exact two-sided Wilcoxon p by brute force: all 2^n sign assignments of the given (mid)ranks. */
function bruteWilcoxon(d: number[]): number {
  const nz = d.filter((v) => v !== 0);
  const abs = nz.map(Math.abs);
  const ranks = abs.map((a) => {
    const below = abs.filter((b) => b < a).length,
      equal = abs.filter((b) => b === a).length;
    return below + (equal + 1) / 2;
  });
  const w = ranks.reduce((s, r, i) => s + (nz[i] > 0 ? r : 0), 0);
  let lo = 0,
    hi = 0;
  const n = nz.length,
    total = 2 ** n;
  for (let m = 0; m < total; m++) {
    let s = 0;
    for (let i = 0; i < n; i++) if ((m >> i) & 1) s += ranks[i];
    if (s <= w + 1e-9) lo++;
    if (s >= w - 1e-9) hi++;
  }
  return Math.min(1, (2 * Math.min(lo, hi)) / total);
}

describe("study/stats", () => {
  it("mean, sample std and median match hand values", () => {
    assert.equal(mean([2, 4, 4, 4, 5, 5, 7, 9]), 5);
    // squared deviations sum to 32, n - 1 = 7
    close(std([2, 4, 4, 4, 5, 5, 7, 9]), Math.sqrt(32 / 7));
    close(std([1, 2, 3]), 1);
    assert.ok(Number.isNaN(std([1])));
    assert.ok(Number.isNaN(mean([])));
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([1, Infinity, Infinity]), Infinity);
  });

  it("bootstrap CI contains the mean, is deterministic for a seed and changes with it", () => {
    const xs = [0.71, 0.74, 0.69, 0.77, 0.73, 0.75, 0.7];
    const a = bootstrapCI(xs, { iterations: 2000, alpha: 0.05, seed: 3 });
    const b = bootstrapCI(xs, { iterations: 2000, alpha: 0.05, seed: 3 });
    const c = bootstrapCI(xs, { iterations: 2000, alpha: 0.05, seed: 4 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    close(a.mean, mean(xs));
    assert.ok(a.lo < a.mean && a.mean < a.hi, JSON.stringify(a));
    assert.ok(a.lo >= Math.min(...xs) && a.hi <= Math.max(...xs));
    assert.equal(a.level, 0.95);
    // roughly mean ± 1.96 s / sqrt(n)
    const half = (1.96 * std(xs)) / Math.sqrt(xs.length);
    assert.ok(Math.abs((a.hi - a.lo) / 2 - half) < 0.4 * half, `${a.hi - a.lo} vs ${2 * half}`);
    const one = bootstrapCI([0.5]);
    assert.deepEqual([one.lo, one.hi], [0.5, 0.5]);
  });

  it("sign-flip permutation test: exact p for a hand-made example", () => {
    // d = [4, 2, -1]: sum 5; the 8 sign flips give sums ±7, ±5, ±3, ±1, so |sum| >= 5 for 4 of 8.
    const r = signFlipTest([4, 2, -1]);
    assert.equal(r.method, "exact");
    assert.equal(r.p, 0.5);
    // all positive n = 5: only all-plus and all-minus are as extreme, p = 2/32
    assert.equal(signFlipTest([0.1, 0.2, 0.3, 0.4, 0.5]).p, 2 / 32);
    // ties with the observed sum count (floating-point sums must not drop them)
    assert.equal(signFlipTest([0.1, 0.2, -0.3]).p, 1);
    assert.equal(signFlipTest([]).p, 1);
    assert.equal(minAttainableP(3), 0.25);
    assert.equal(minAttainableP(5, 1), 0.125);
  });

  it("sign-flip permutation test: Monte Carlo beyond n = 16 agrees with exact enumeration", () => {
    const d = Array.from({ length: 18 }, (_, i) => ((i * 7) % 11) / 10 - 0.3);
    const exact = signFlipTest(d, { exactMaxN: 18 });
    const mc = signFlipTest(d, { seed: 1, samples: 20000 });
    assert.equal(mc.method, "monte-carlo");
    assert.ok(Math.abs(exact.p - mc.p) < 0.015, `${exact.p} vs ${mc.p}`);
    assert.deepEqual(signFlipTest(d, { seed: 1, samples: 20000 }), mc);
  });

  it("Wilcoxon signed-rank: exact p for known small examples", () => {
    // n = 5 all positive: W+ = 15 is the most extreme of 32 equally likely sign patterns -> p = 2/32
    const all = wilcoxonSignedRank([1, 2, 3, 4, 5]);
    assert.equal(all.method, "exact");
    assert.equal(all.wPlus, 15);
    close(all.p, 0.0625);
    // d = [1, 2, 3, 4, -5]: W+ = 10; subset sums of {1..5} >= 10 occur 10 times of 32 -> p = 20/32 (R: 0.625)
    const one = wilcoxonSignedRank([1, 2, 3, 4, -5]);
    assert.equal(one.wPlus, 10);
    close(one.p, 0.625);
    // zeros are dropped; ties get midranks, still exact
    for (const d of [
      [0, 1, 1, 2, -3],
      [0.5, -0.5, 1, 1, 1, 2, -0.25, 3],
      [2, 2, 2, -2],
    ]) {
      close(wilcoxonSignedRank(d).p, bruteWilcoxon(d), 1e-12);
    }
    assert.equal(wilcoxonSignedRank([0, 0]).p, 1);
  });

  it("Wilcoxon normal approximation is close to the exact p for large n", () => {
    const d = Array.from({ length: 40 }, (_, i) => Math.sin(i * 1.3) + 0.25);
    const exact = wilcoxonSignedRank(d);
    const approx = wilcoxonSignedRank(d, { exactMaxN: 10 });
    assert.equal(approx.method, "normal");
    assert.ok(Math.abs(exact.p - approx.p) < 0.01, `${exact.p} vs ${approx.p}`);
    close(normalCdf(0), 0.5, 1e-7);
    close(normalCdf(1.959964), 0.975, 1e-6);
  });

  it("pairedComparison puts it together on matched pairs", () => {
    const a = [0.8, 0.78, 0.82, 0.79, 0.81];
    const b = [0.75, 0.76, 0.78, 0.74, 0.77];
    const c = pairedComparison(a, b, { seed: 1 });
    assert.equal(c.n, 5);
    close(c.meanDiff, 0.04);
    close(c.meanA - c.meanB, c.meanDiff);
    assert.ok(c.ci.lo > 0 && c.ci.hi > c.ci.lo);
    assert.equal(c.permutation.p, 2 / 32);
    close(c.wilcoxon.p, 0.0625);
    assert.equal(c.minP, 2 / 32);
    assert.throws(() => pairedComparison([1], [1, 2]), /pairs must match/);
  });

  it("Holm adjustment by hand", () => {
    // sorted 0.01, 0.02, 0.04 -> 3*0.01 = 0.03, 2*0.02 = 0.04, max(0.04, 0.04) = 0.04
    const adj = holmAdjust([0.04, 0.01, 0.02]);
    [0.04, 0.03, 0.04].forEach((v, i) => close(adj[i], v));
    // 2 * 0.5 = 1, then max(1, 0.9): adjusted p never decrease along the sorted order
    assert.deepEqual(holmAdjust([0.5, 0.9]), [1, 1]);
    assert.deepEqual(holmAdjust([0.2, 0.01]), [0.2, 0.02]);
  });

  it("stepsToReach: first step at or above the level, else null", () => {
    const curve = [
      { step: 300, valDice: 0.72, trainLoss: 0.3 },
      { step: 100, valDice: 0.4, trainLoss: 0.9 },
      { step: 200, valDice: 0.5, trainLoss: 0.5 },
      { step: 400, valDice: NaN, trainLoss: 0.2 },
    ];
    assert.equal(stepsToReach(curve, 0.5), 200);
    assert.equal(stepsToReach(curve, 0.7), 300);
    assert.equal(stepsToReach(curve, 0.9), null);
    assert.equal(stepsToReach([], 0.1), null);
  });
});
