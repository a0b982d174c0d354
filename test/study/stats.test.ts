import { strict as assert } from "assert";
import {
  INTERVAL_METHODS,
  INTERVAL_METHOD_TEXT,
  bcaCI,
  bootstrapCI,
  formatInterval,
  holmAdjust,
  holmFloors,
  meanCI,
  mean,
  median,
  minAttainableP,
  normalCdf,
  normalQuantile,
  pairedComparison,
  signFlipTest,
  std,
  stepsToReach,
  studentTCdf,
  studentTQuantile,
  tCI,
  wilcoxonSignedRank,
} from "../../src/study/stats";
import { makeRng } from "../../src/runtime/random";

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
    assert.equal(a.method, "bootstrap-percentile");
    assert.equal(a.n, 7);
    assert.equal(a.undefinedReason, undefined);
  });

  it("no interval from one value or from values without spread: n/a with the reason, never zero width", () => {
    for (const method of INTERVAL_METHODS) {
      const one = meanCI([0.21], { method });
      assert.equal(one.mean, 0.21);
      assert.ok(Number.isNaN(one.lo) && Number.isNaN(one.hi), method);
      assert.equal(one.undefinedReason, "n = 1");
      assert.equal(one.method, method);
      assert.equal(formatInterval(one), "n/a (n = 1)");
      const same = meanCI([0, 0, 0], { method });
      assert.equal(formatInterval(same), "n/a (all 3 values equal)");
      assert.equal(formatInterval(meanCI([], { method })), "n/a (n = 0)");
      const two = meanCI([0.2, 0.3], { method });
      assert.ok(two.hi > two.lo, `${method} ${JSON.stringify(two)}`);
      assert.match(formatInterval(two), /^\[-?\d\.\d{3}, \d\.\d{3}\]$/);
    }
    assert.throws(() => meanCI([1, NaN]), /values\[1\] is NaN/);
    assert.throws(
      () => meanCI([1, 2], { method: "wald" as never }),
      /method must be one of t, bootstrap-percentile, bca/,
    );
  });

  it("Student t quantiles and the t interval by hand", () => {
    // table values of t(0.975, df)
    const table: [number, number][] = [
      [1, 12.7062047362],
      [2, 4.3026527297],
      [4, 2.7764451052],
      [9, 2.2621571628],
      [30, 2.0422724563],
    ];
    for (const [df, t] of table) close(studentTQuantile(0.975, df), t, 1e-8);
    close(studentTQuantile(0.025, 4), -2.7764451052, 1e-8);
    close(studentTCdf(0, 3), 0.5, 1e-12);
    // df = 1 is the Cauchy distribution: F(t) = 1/2 + atan(t) / pi
    close(studentTCdf(2.5, 1), 0.5 + Math.atan(2.5) / Math.PI, 1e-10);
    close(normalQuantile(0.975), 1.959963985, 1e-6);
    // [1, 2, 3]: mean 2, s = 1, half-width 4.3027 / sqrt(3)
    const ci = tCI([1, 2, 3]);
    close(ci.lo, 2 - 4.3026527297 / Math.sqrt(3), 1e-8);
    close(ci.hi, 2 + 4.3026527297 / Math.sqrt(3), 1e-8);
    assert.equal(ci.method, "t");
    assert.equal(ci.level, 0.95);
    assert.deepEqual(tCI([1, 2, 3]), meanCI([1, 2, 3])); // the default method
  });

  it("BCa equals the percentile interval for symmetric data and shifts it for skewed data", () => {
    const sym = [-3, -1, 0, 1, 3, -2, 2];
    const p = bootstrapCI(sym, { seed: 5 }),
      b = bcaCI(sym, { seed: 5 });
    assert.ok(
      Math.abs(p.lo - b.lo) < 0.15 && Math.abs(p.hi - b.hi) < 0.15,
      `${JSON.stringify(p)} ${JSON.stringify(b)}`,
    );
    // a long right tail: BCa moves both ends to the right of the percentile interval
    const skew = [0, 0, 0, 0, 0, 0, 0, 0, 1, 10];
    const ps = bootstrapCI(skew, { seed: 5 }),
      bs = bcaCI(skew, { seed: 5 });
    assert.ok(bs.lo >= ps.lo && bs.hi > ps.hi + 1, `${JSON.stringify(ps)} ${JSON.stringify(bs)}`);
    assert.equal(bs.method, "bca");
    assert.deepEqual(bcaCI(skew, { seed: 5 }), bs);
    // scipy.stats.bootstrap(method="BCa", n_resamples=50000) gives [2.0, 16.4] for these, percentile [1.8, 13.2]
    const x = [1, 2, 3, 4, 20];
    const big = bcaCI(x, { iterations: 50000, seed: 1 }),
      pct = bootstrapCI(x, { iterations: 50000, seed: 1 });
    close(big.lo, 2.0, 0.11);
    close(big.hi, 16.4, 0.3);
    close(pct.lo, 1.8, 0.11);
    close(pct.hi, 13.2, 0.3);
  });

  it("coverage at n = 3 (normal data): the t interval about 95 %, the bootstrap intervals far less", () => {
    // The figures INTERVAL_METHOD_TEXT prints, measured again on fewer samples.
    const rng = makeRng(2024);
    const gauss = () => Math.sqrt(-2 * Math.log(Math.max(rng(), 1e-12))) * Math.cos(2 * Math.PI * rng());
    const reps = 600;
    const hits = { t: 0, "bootstrap-percentile": 0, bca: 0 };
    for (let r = 0; r < reps; r++) {
      const xs = [gauss(), gauss(), gauss()];
      for (const method of INTERVAL_METHODS) {
        const ci = meanCI(xs, { method, iterations: 400, seed: r });
        if (ci.lo <= 0 && ci.hi >= 0) hits[method]++;
      }
    }
    const cov = (m: keyof typeof hits) => hits[m] / reps;
    assert.ok(cov("t") > 0.92 && cov("t") < 0.98, `t ${cov("t")}`);
    assert.ok(
      cov("bootstrap-percentile") > 0.65 && cov("bootstrap-percentile") < 0.83,
      `pb ${cov("bootstrap-percentile")}`,
    );
    assert.ok(cov("bca") > 0.62 && cov("bca") < 0.82, `bca ${cov("bca")}`);
    for (const m of INTERVAL_METHODS) assert.ok(INTERVAL_METHOD_TEXT[m].name && INTERVAL_METHOD_TEXT[m].note);
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
    assert.equal(c.ci.method, "t");
    assert.equal(
      pairedComparison(a, b, { seed: 1, interval: "bootstrap-percentile" }).ci.method,
      "bootstrap-percentile",
    );
    // one pair: the difference is measured, its interval is not
    const one = pairedComparison([0.5], [0.4]);
    assert.equal(formatInterval(one.ci), "n/a (n = 1)");
    assert.equal(one.minP, 1);
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

  it("Holm floors: 6 pairs at each of 3 fractions cannot give an adjusted p below 0.094", () => {
    const floors = holmFloors([minAttainableP(6), minAttainableP(6), minAttainableP(6)]);
    floors.forEach((f) => close(f, 3 / 32));
    // unequal pairs: floors 1/4 (3 pairs) and 1/32 (6 pairs) -> 2/32 for the second, max(2/32, 1/4) for the first
    const mixed = holmFloors([minAttainableP(3), minAttainableP(6)]);
    close(mixed[1], 2 / 32);
    close(mixed[0], 0.25);
    // every adjusted p of raw p's at or above their floors is at or above the adjusted floor
    const ps = [0.04, 0.2, 0.5];
    holmAdjust(ps).forEach((p, i) => assert.ok(p >= holmFloors([1 / 32, 1 / 32, 1 / 32])[i]));
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
