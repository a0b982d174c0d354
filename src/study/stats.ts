// Statistics for comparing training runs: summaries over seeds, a percentile bootstrap of the mean, and two paired
// tests for "does MAE initialisation beat scratch on matched cells" — an exact sign-flip permutation test on the mean
// difference and the Wilcoxon signed-rank test. Studies have few seeds, so both tests are exact for small n; their
// smallest attainable p-value is reported too, because with 3 pairs no test can reach p < 0.05.
import { Rng, makeRng, randInt } from "../runtime/random";
import { quantileSorted } from "../runtime/math";

// median and the quantile rule live with the shared math helpers
export { median } from "../runtime/math";

/** Arithmetic mean; NaN for an empty list. */
export function mean(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/** Sample standard deviation (divides by n - 1); NaN for fewer than 2 values. */
export function std(values: readonly number[]): number {
  const n = values.length;
  if (n < 2) return NaN;
  const m = mean(values);
  let ss = 0;
  for (const v of values) ss += (v - m) ** 2;
  return Math.sqrt(ss / (n - 1));
}

/** The finite values only (NaN marks "not measured" in results). */
export function finiteOnly(values: readonly number[]): number[] {
  return values.filter((v) => Number.isFinite(v));
}

export interface BootstrapOptions {
  /** Resamples; default 2000. */
  iterations?: number;
  /** 1 - confidence level; default 0.05 for a 95% interval. */
  alpha?: number;
  /** Seed of the resampling; default 0. */
  seed?: number;
}

/** A confidence interval for a mean. */
export interface ConfidenceInterval {
  mean: number;
  lo: number;
  hi: number;
  /** The level, e.g. 0.95. */
  level: number;
}

/**
 * Percentile bootstrap CI of the mean: resample the values with replacement `iterations` times, take the alpha/2 and
 * 1 - alpha/2 quantiles of the resampled means. Deterministic for a seed. With very few values (say under 5 seeds)
 * the interval is too narrow — it cannot see beyond the values observed — so read it with the n beside it.
 * One value gives lo = hi = that value; no values give NaN.
 */
export function bootstrapCI(values: readonly number[], options: BootstrapOptions = {}): ConfidenceInterval {
  const iterations = Math.max(1, Math.floor(options.iterations ?? 2000));
  const alpha = options.alpha ?? 0.05;
  if (!(alpha > 0 && alpha < 1)) throw new Error(`bootstrapCI: alpha ${alpha} must be in (0, 1)`);
  const n = values.length;
  const m = mean(values);
  const level = 1 - alpha;
  if (n === 0) return { mean: NaN, lo: NaN, hi: NaN, level };
  if (n === 1) return { mean: m, lo: m, hi: m, level };
  const rng = makeRng(options.seed ?? 0);
  const means = new Float64Array(iterations);
  for (let b = 0; b < iterations; b++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += values[randInt(rng, 0, n - 1)];
    means[b] = s / n;
  }
  means.sort();
  const sorted = Array.from(means);
  return { mean: m, lo: quantileSorted(sorted, alpha / 2), hi: quantileSorted(sorted, 1 - alpha / 2), level };
}

/** A p-value and how it was obtained. */
export interface TestResult {
  /** Two-sided p-value. */
  p: number;
  method: "exact" | "monte-carlo" | "normal";
  /** Random sign vectors drawn (monte-carlo only). */
  samples?: number;
}

export interface PermutationOptions {
  /** Largest n enumerated exactly (2^n sign vectors); default 16. */
  exactMaxN?: number;
  /** Random sign vectors beyond that; default 20000. */
  samples?: number;
  /** Seed for the Monte Carlo version; default 0. */
  seed?: number;
}

/**
 * Paired sign-flip permutation test of "the mean difference is 0": under the null each difference is as likely
 * positive as negative, so p = share of the 2^n sign vectors s with |sum s_i |d_i|| >= |sum d_i|. Exact enumeration
 * for n <= exactMaxN, else Monte Carlo with p = (1 + hits) / (1 + samples), which is never 0.
 */
export function signFlipTest(differences: readonly number[], options: PermutationOptions = {}): TestResult {
  const d = differences.map(Math.abs);
  const n = d.length;
  if (n === 0) return { p: 1, method: "exact" };
  const observed = Math.abs(differences.reduce((a, b) => a + b, 0));
  // Sums that equal the observed one up to rounding count as "as extreme".
  const tol = 1e-9 * d.reduce((a, b) => a + b, 0);
  const exactMaxN = options.exactMaxN ?? 16;
  if (n <= exactMaxN) {
    let hits = 0;
    const total = 2 ** n;
    for (let mask = 0; mask < total; mask++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += (mask >>> i) & 1 ? -d[i] : d[i];
      if (Math.abs(s) >= observed - tol) hits++;
    }
    return { p: hits / total, method: "exact" };
  }
  const samples = Math.max(1, Math.floor(options.samples ?? 20000));
  const rng: Rng = makeRng(options.seed ?? 0);
  let hits = 0;
  for (let b = 0; b < samples; b++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += rng() < 0.5 ? -d[i] : d[i];
    if (Math.abs(s) >= observed - tol) hits++;
  }
  return { p: (1 + hits) / (1 + samples), method: "monte-carlo", samples };
}

/** Complementary error function, |relative error| < 1.2e-7 (Chebyshev fit, Numerical Recipes' erfcc). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Standard normal CDF. */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

/** Wilcoxon signed-rank test details. */
export interface WilcoxonResult extends TestResult {
  /** Sum of the ranks of the positive differences (midranks for ties). */
  wPlus: number;
  /** Differences used: zeros are dropped (Wilcoxon's convention). */
  n: number;
}

export interface WilcoxonOptions {
  /** Largest n (non-zero differences) with the exact null distribution; default 200. Beyond: normal approximation. */
  exactMaxN?: number;
}

/**
 * Two-sided Wilcoxon signed-rank test. Zero differences are dropped; tied |d| get their average rank. The exact null
 * distribution of W+ is counted over the 2^n sign assignments of those (mid)ranks by dynamic programming on doubled
 * ranks (integers even with ties), so it is exact also with ties. p = min(1, 2 min(P(W+ <= w), P(W+ >= w))).
 * Beyond exactMaxN: normal approximation with tie correction and continuity correction.
 */
export function wilcoxonSignedRank(differences: readonly number[], options: WilcoxonOptions = {}): WilcoxonResult {
  const nz = differences.filter((v) => v !== 0 && Number.isFinite(v));
  const n = nz.length;
  if (n === 0) return { p: 1, method: "exact", wPlus: 0, n: 0 };
  const order = nz.map((v, i) => ({ a: Math.abs(v), pos: v > 0, i })).sort((x, y) => x.a - y.a);
  // Doubled midranks: a tie group covering 1-based ranks lo..hi gets (lo + hi) each, i.e. twice the average rank.
  const rank2 = new Array<number>(n);
  const tieSizes: number[] = [];
  for (let lo = 0; lo < n; ) {
    let hi = lo;
    const scale = Math.max(order[lo].a, 1e-300);
    while (hi + 1 < n && Math.abs(order[hi + 1].a - order[lo].a) <= 1e-12 * scale) hi++;
    for (let k = lo; k <= hi; k++) rank2[k] = lo + 1 + hi + 1;
    tieSizes.push(hi - lo + 1);
    lo = hi + 1;
  }
  let w2 = 0;
  for (let k = 0; k < n; k++) if (order[k].pos) w2 += rank2[k];
  const wPlus = w2 / 2;

  if (n <= (options.exactMaxN ?? 200)) {
    const maxSum = n * (n + 1); // sum of all doubled ranks
    let dist = new Float64Array(maxSum + 1);
    dist[0] = 1;
    let reach = 0;
    for (let k = 0; k < n; k++) {
      const r = rank2[k];
      const next = new Float64Array(maxSum + 1);
      for (let s = 0; s <= reach; s++) {
        if (dist[s] === 0) continue;
        next[s] += 0.5 * dist[s];
        next[s + r] += 0.5 * dist[s];
      }
      reach += r;
      dist = next;
    }
    let lower = 0,
      upper = 0;
    for (let s = 0; s <= maxSum; s++) {
      if (s <= w2) lower += dist[s];
      if (s >= w2) upper += dist[s];
    }
    return { p: Math.min(1, 2 * Math.min(lower, upper)), method: "exact", wPlus, n };
  }
  const mu = (n * (n + 1)) / 4;
  const tieTerm = tieSizes.reduce((acc, t) => acc + (t ** 3 - t), 0) / 48;
  const sigma = Math.sqrt((n * (n + 1) * (2 * n + 1)) / 24 - tieTerm);
  const z = Math.max(0, Math.abs(wPlus - mu) - 0.5) / sigma;
  return { p: Math.min(1, 2 * (1 - normalCdf(z))), method: "normal", wPlus, n };
}

/** The smallest two-sided p the sign-flip test can give for n pairs with `zeros` zero differences. */
export function minAttainableP(n: number, zeros = 0): number {
  const nonzero = n - zeros;
  return nonzero <= 0 ? 1 : Math.min(1, 2 ** (1 - nonzero));
}

export interface PairedOptions extends BootstrapOptions {
  permutation?: PermutationOptions;
  wilcoxon?: WilcoxonOptions;
}

/** Paired comparison of a and b over matched cells (a[i] and b[i] come from the same fraction and seed). */
export interface PairedComparison {
  n: number;
  meanA: number;
  meanB: number;
  /** mean(a - b). */
  meanDiff: number;
  /** Bootstrap CI of mean(a - b). */
  ci: ConfidenceInterval;
  permutation: TestResult;
  wilcoxon: WilcoxonResult;
  /** Smallest p the sign-flip test could give with these n pairs (2^(1 - n) without zero differences). */
  minP: number;
}

/** Mean difference a - b, its bootstrap CI, the sign-flip permutation test and the Wilcoxon signed-rank test. */
export function pairedComparison(
  a: readonly number[],
  b: readonly number[],
  options: PairedOptions = {},
): PairedComparison {
  if (a.length !== b.length)
    throw new Error(`pairedComparison: ${a.length} values in a but ${b.length} in b; pairs must match`);
  const d = a.map((v, i) => v - b[i]);
  if (d.some((v) => !Number.isFinite(v)))
    throw new Error("pairedComparison: every value must be finite (drop unmeasured pairs first)");
  const seed = options.seed ?? 0;
  return {
    n: d.length,
    meanA: mean(a),
    meanB: mean(b),
    meanDiff: mean(d),
    ci: bootstrapCI(d, options),
    permutation: signFlipTest(d, { seed, ...options.permutation }),
    wilcoxon: wilcoxonSignedRank(d, options.wilcoxon),
    minP: minAttainableP(d.length, d.filter((v) => v === 0).length),
  };
}

/**
 * Holm's step-down adjustment of p-values for testing several hypotheses at once (e.g. one per label fraction):
 * controls the chance of any false "significant" at alpha. Returns adjusted p-values in the input order.
 */
export function holmAdjust(ps: readonly number[]): number[] {
  const m = ps.length;
  const idx = ps.map((p, i) => ({ p, i })).sort((x, y) => x.p - y.p);
  const out = new Array<number>(m);
  let running = 0;
  idx.forEach(({ p, i }, k) => {
    running = Math.max(running, Math.min(1, (m - k) * p));
    out[i] = running;
  });
  return out;
}

/** First step at which the validation Dice reaches `level` (>=), or null if it never does. Points are sorted by step. */
export function stepsToReach(curve: ReadonlyArray<{ step: number; valDice: number }>, level: number): number | null {
  const sorted = [...curve].sort((x, y) => x.step - y.step);
  for (const p of sorted) if (p.valDice >= level) return p.step; // NaN never passes
  return null;
}
