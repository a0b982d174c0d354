// Statistics for comparing training runs: summaries over seeds, confidence intervals of a mean (Student t, percentile
// bootstrap, BCa bootstrap; each named wherever it is printed), and two paired tests for "does MAE initialisation beat
// scratch on matched cells" — an exact sign-flip permutation test on the mean difference and the Wilcoxon signed-rank
// test. Studies have few seeds, so both tests are exact for small n; their smallest attainable p-value is reported
// too, because with 3 pairs no test can reach p < 0.05, and after Holm's correction over m questions the floor is m
// times higher (holmFloors).
//
// Intervals are undefined (lo = hi = NaN, with the reason) for fewer than 2 values and when every value is the same:
// a zero-width "95 % interval" would claim a certainty that one run, or runs without spread, cannot give.
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

/** How an interval was computed. */
export type IntervalMethod = "t" | "bootstrap-percentile" | "bca";

/** The methods, in the order they are documented. */
export const INTERVAL_METHODS: readonly IntervalMethod[] = ["t", "bootstrap-percentile", "bca"];

/**
 * Name and small-n behaviour of each interval method, as printed under tables. Coverage figures: 2000 normal samples
 * per n, nominal 95 %; test/study/stats.test.ts measures the n = 3 ones again.
 */
export const INTERVAL_METHOD_TEXT: Record<IntervalMethod, { name: string; note: string }> = {
  t: {
    name: "Student t interval (mean ± t(n−1) · s / √n)",
    note:
      "95 % coverage for normally distributed values at any n ≥ 2 (measured 94 % at n = 3), and wide at small n as " +
      "it should be (t quantile 4.30 at n = 3); skewed or bounded values (Dice near 0 or 1) make it approximate",
  },
  "bootstrap-percentile": {
    name: "percentile bootstrap of the mean",
    note:
      "too narrow at small n, as it cannot see beyond the values observed: for normal data it covers the true mean " +
      "about 75 % of the time at n = 3, 84 % at n = 5 and 90 % at n = 10 instead of 95 %",
  },
  bca: {
    name: "bias-corrected and accelerated (BCa) bootstrap of the mean",
    note:
      "corrects the percentile bootstrap for bias and skew but is as narrow at small n (for normal data about 72 % " +
      "coverage at n = 3, 83 % at n = 5, 90 % at n = 10); use it from a few dozen values up",
  },
};

/** A confidence interval for a mean. */
export interface ConfidenceInterval {
  mean: number;
  /** NaN when the interval is undefined (see `undefinedReason`). */
  lo: number;
  hi: number;
  /** The level, e.g. 0.95. */
  level: number;
  /** Values it was computed from. */
  n: number;
  method: IntervalMethod;
  /** Why lo and hi are NaN: "n = 0", "n = 1" or "all 3 values equal". Absent when the interval is defined. */
  undefinedReason?: string;
}

export interface IntervalOptions extends BootstrapOptions {
  /** Default "t". */
  method?: IntervalMethod;
}

/** The reason an interval of these values is undefined, or undefined when it is defined. */
function undefinedReason(values: readonly number[]): string | undefined {
  const n = values.length;
  if (n < 2) return `n = ${n}`;
  if (values.every((v) => v === values[0])) return `all ${n} values equal`;
  return undefined;
}

function checkAlpha(fn: string, alpha: number): void {
  if (!(alpha > 0 && alpha < 1)) throw new Error(`${fn}: alpha ${alpha} must be in (0, 1), e.g. 0.05 for 95 %`);
}

function checkFinite(fn: string, values: readonly number[]): void {
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    throw new Error(
      `${fn}: values[${bad}] is ${values[bad]}; intervals need finite values (drop unmeasured runs with finiteOnly first)`,
    );
  }
}

/** A confidence interval of the mean by the named method (default the t interval). */
export function meanCI(values: readonly number[], options: IntervalOptions = {}): ConfidenceInterval {
  const method = options.method ?? "t";
  if (method === "t") return tCI(values, options);
  if (method === "bootstrap-percentile") return bootstrapCI(values, options);
  if (method === "bca") return bcaCI(values, options);
  throw new Error(`meanCI: method must be one of ${INTERVAL_METHODS.join(", ")}, got ${JSON.stringify(method)}`);
}

/** "[0.612, 0.700]", or "n/a (n = 1)" / "n/a (all 3 values equal)" when the interval is undefined. */
export function formatInterval(ci: Pick<ConfidenceInterval, "lo" | "hi" | "undefinedReason">, digits = 3): string {
  if (ci.undefinedReason !== undefined) return `n/a (${ci.undefinedReason})`;
  if (!Number.isFinite(ci.lo) || !Number.isFinite(ci.hi)) return "n/a";
  return `[${ci.lo.toFixed(digits)}, ${ci.hi.toFixed(digits)}]`;
}

/**
 * Student t interval of the mean: mean ± t_{1 − alpha/2, n − 1} · s / √n with the sample std s. Exact coverage for
 * normal values; undefined for n < 2 and when all values are equal.
 */
export function tCI(values: readonly number[], options: { alpha?: number } = {}): ConfidenceInterval {
  const alpha = options.alpha ?? 0.05;
  checkAlpha("tCI", alpha);
  checkFinite("tCI", values);
  const n = values.length;
  const m = mean(values);
  const base = { mean: m, level: 1 - alpha, n, method: "t" as const };
  const reason = undefinedReason(values);
  if (reason) return { ...base, lo: NaN, hi: NaN, undefinedReason: reason };
  const half = (studentTQuantile(1 - alpha / 2, n - 1) * std(values)) / Math.sqrt(n);
  return { ...base, lo: m - half, hi: m + half };
}

/** Resampled means of `values` (sorted ascending), deterministic for a seed. */
function bootstrapMeans(values: readonly number[], iterations: number, seed: number): number[] {
  const n = values.length;
  const rng = makeRng(seed);
  const means = new Float64Array(iterations);
  for (let b = 0; b < iterations; b++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += values[randInt(rng, 0, n - 1)];
    means[b] = s / n;
  }
  means.sort();
  return Array.from(means);
}

/**
 * Percentile bootstrap CI of the mean: resample the values with replacement `iterations` times, take the alpha/2 and
 * 1 - alpha/2 quantiles of the resampled means. Deterministic for a seed. With very few values (say under 10) the
 * interval is too narrow — it cannot see beyond the values observed — so read it with the n beside it (see
 * INTERVAL_METHOD_TEXT). Undefined (NaN, with the reason) for n < 2 and when all values are equal.
 */
export function bootstrapCI(values: readonly number[], options: BootstrapOptions = {}): ConfidenceInterval {
  const iterations = Math.max(1, Math.floor(options.iterations ?? 2000));
  const alpha = options.alpha ?? 0.05;
  checkAlpha("bootstrapCI", alpha);
  checkFinite("bootstrapCI", values);
  const n = values.length;
  const m = mean(values);
  const base = { mean: m, level: 1 - alpha, n, method: "bootstrap-percentile" as const };
  const reason = undefinedReason(values);
  if (reason) return { ...base, lo: NaN, hi: NaN, undefinedReason: reason };
  const sorted = bootstrapMeans(values, iterations, options.seed ?? 0);
  return { ...base, lo: quantileSorted(sorted, alpha / 2), hi: quantileSorted(sorted, 1 - alpha / 2) };
}

/**
 * BCa bootstrap CI of the mean (Efron 1987): the percentile interval with its quantile levels moved by the bias
 * correction z0 = Φ⁻¹(share of resampled means below the mean, ties counted half) and the jackknife acceleration
 * a = Σ(θ̄ − θ₍ᵢ₎)³ / (6 (Σ(θ̄ − θ₍ᵢ₎)²)^1.5). Same resamples as bootstrapCI for a seed. Undefined like bootstrapCI.
 */
export function bcaCI(values: readonly number[], options: BootstrapOptions = {}): ConfidenceInterval {
  const iterations = Math.max(1, Math.floor(options.iterations ?? 2000));
  const alpha = options.alpha ?? 0.05;
  checkAlpha("bcaCI", alpha);
  checkFinite("bcaCI", values);
  const n = values.length;
  const m = mean(values);
  const base = { mean: m, level: 1 - alpha, n, method: "bca" as const };
  const reason = undefinedReason(values);
  if (reason) return { ...base, lo: NaN, hi: NaN, undefinedReason: reason };
  const sorted = bootstrapMeans(values, iterations, options.seed ?? 0);
  let below = 0;
  for (const v of sorted) below += v < m ? 1 : v === m ? 0.5 : 0;
  // keep z0 finite when every resample falls on one side
  const share = Math.min(1 - 0.5 / iterations, Math.max(0.5 / iterations, below / iterations));
  const z0 = normalQuantile(share);
  const total = values.reduce((a, b) => a + b, 0);
  const jack = values.map((v) => (total - v) / (n - 1));
  const jm = mean(jack);
  let num = 0,
    den = 0;
  for (const t of jack) {
    num += (jm - t) ** 3;
    den += (jm - t) ** 2;
  }
  const a = den > 0 ? num / (6 * den ** 1.5) : 0;
  const level = (z: number) => normalCdf(z0 + (z0 + z) / (1 - a * (z0 + z)));
  return {
    ...base,
    lo: quantileSorted(sorted, level(normalQuantile(alpha / 2))),
    hi: quantileSorted(sorted, level(normalQuantile(1 - alpha / 2))),
  };
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

/** Inverse of normalCdf for p in (0, 1), by bisection to 1e-12 (enough for interval levels). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`normalQuantile: p must be in (0, 1), got ${p}`);
  let lo = -40,
    hi = 40;
  for (let i = 0; i < 200 && hi - lo > 1e-12; i++) {
    const mid = (lo + hi) / 2;
    if (normalCdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** log Γ(x) for x > 0 (Lanczos approximation, g = 7, 9 terms; relative error ~1e-15). */
function logGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Regularised incomplete beta I_x(a, b), by its continued fraction (modified Lentz), for 0 <= x <= 1. */
function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  // the continued fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry I_x(a,b) = 1 − I_{1−x}(b,a)
  if (x > (a + 1) / (a + b + 2)) return 1 - incompleteBeta(1 - x, b, a);
  const front = Math.exp(a * Math.log(x) + b * Math.log(1 - x) - (logGamma(a) + logGamma(b) - logGamma(a + b))) / a;
  const tiny = 1e-300;
  let f = 1,
    c = 1,
    d = 0;
  for (let i = 0; i <= 400; i++) {
    const m = Math.floor(i / 2);
    let num: number;
    if (i === 0) num = 1;
    else if (i % 2 === 0) num = (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m));
    else num = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    d = 1 / d;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    const cd = c * d;
    f *= cd;
    if (Math.abs(1 - cd) < 1e-15) break;
  }
  return front * (f - 1);
}

/** CDF of Student's t distribution with `df` degrees of freedom (df > 0). */
export function studentTCdf(t: number, df: number): number {
  if (!(df > 0)) throw new Error(`studentTCdf: df must be positive, got ${df}`);
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** The p-quantile of Student's t distribution with `df` degrees of freedom, by bisection on studentTCdf. */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`studentTQuantile: p must be in (0, 1), got ${p}`);
  if (!(df > 0)) throw new Error(`studentTQuantile: df must be positive, got ${df}`);
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0,
    hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2; // df = 1 at p = 0.9995 needs about 637
  for (let i = 0; i < 200 && hi - lo > 1e-12 * Math.max(1, hi); i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
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
  /** Interval of the mean difference; default "t". */
  interval?: IntervalMethod;
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
  /** CI of mean(a - b) by options.interval (default the t interval); undefined for n < 2 or identical differences. */
  ci: ConfidenceInterval;
  permutation: TestResult;
  wilcoxon: WilcoxonResult;
  /** Smallest p the sign-flip test could give with these n pairs (2^(1 - n) without zero differences). */
  minP: number;
}

/** Mean difference a - b, its CI, the sign-flip permutation test and the Wilcoxon signed-rank test. */
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
    ci: meanCI(d, { ...options, method: options.interval ?? "t" }),
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

/**
 * The smallest Holm-adjusted p each hypothesis could get, given the smallest raw p each test can give (e.g.
 * minAttainableP per fraction). Holm's adjusted p never decreases when a raw p increases, so the floor is the
 * adjustment of the floors: with 6 pairs (raw floor 2^-5 = 0.03125) at each of 3 fractions it is 3 · 0.03125 = 0.094,
 * and no result of that study can be called significant at 0.05.
 */
export function holmFloors(minPs: readonly number[]): number[] {
  return holmAdjust(minPs);
}

/** First step at which the validation Dice reaches `level` (>=), or null if it never does. Points are sorted by step. */
export function stepsToReach(curve: ReadonlyArray<{ step: number; valDice: number }>, level: number): number | null {
  const sorted = [...curve].sort((x, y) => x.step - y.step);
  for (const p of sorted) if (p.valDice >= level) return p.step; // NaN never passes
  return null;
}
