// The paired comparison of two initialisations (e.g. MAE vs scratch) per model and label fraction, with a verdict
// in plain words.
import { seedFrom } from "../../runtime/random";
import { RunResult } from "../grid";
import { IntervalMethod, PairedComparison, holmAdjust, holmFloors, mean, pairedComparison } from "../stats";
import { Interval, formatP } from "./format";
import { pairedMde } from "./power";
import { distinct, groupBy } from "./groups";

export interface CompareOptions {
  /** The initialisation under test, e.g. "mae". */
  a: string;
  /** The baseline, e.g. "scratch". */
  b: string;
  /** Which test metric; default "dice" (higher is better); "hd95" is lower-is-better. */
  metric?: "dice" | "hd95";
  /** Significance level of the verdict; default 0.05. */
  alpha?: number;
  /** Correct the p-values of the fractions of one model for testing several at once; default "holm". */
  adjust?: "holm" | "none";
  /** Display names in verdicts, e.g. {mae: "MAE"}; default the init names. */
  names?: Record<string, string>;
  /** Interval of the mean difference; default "t" (stats.ts INTERVAL_METHOD_TEXT). */
  interval?: IntervalMethod;
  /** Bootstrap resamples (bootstrap intervals and Monte Carlo tests); default 2000. */
  iterations?: number;
  /** Seed of the bootstrap and Monte Carlo tests; default 0. */
  seed?: number;
}

/** A vs B at one (model, label fraction), over the seeds both have. */
export interface ComparisonRow {
  model: string;
  labelFraction: number;
  /** Matched pairs (same model, fraction and seed). */
  n: number;
  meanA: number;
  meanB: number;
  /** Mean of A − B over the pairs. */
  diff: number;
  diffCi: Interval;
  /**
   * Minimum detectable difference (alpha 0.05 two-sided, 80 % power) of a paired t design with these n pairs and the
   * observed SD of their differences (power.ts); NaN with fewer than 2 pairs or identical differences.
   */
  mde: number;
  /** Two-sided sign-flip permutation test of the mean difference (exact for n <= 16). */
  pPermutation: number;
  /** Two-sided Wilcoxon signed-rank test (exact). */
  pWilcoxon: number;
  /** pPermutation after Holm's correction over this model's fractions (equal to it with adjust "none"). */
  pAdjusted: number;
  /** The smallest p the permutation test could give with these pairs. */
  minP: number;
  /** The smallest adjusted p: minP after Holm's correction over this model's fractions (= minP with adjust "none"). */
  pFloor: number;
  /** Runs of A or B at this (model, fraction) left out: no partner with the same seed, or the metric is NaN. */
  unmatched: number;
  verdict: string;
  /** The full test output. */
  details?: PairedComparison;
}

/** Markdown/HTML headers naming A and B, for toMarkdown(rows, {headers: comparisonHeaders("mae", "scratch")}). */
export function comparisonHeaders(a: string, b: string, names: Record<string, string> = {}): Record<string, string> {
  const na = names[a] ?? a,
    nb = names[b] ?? b;
  return {
    meanA: na,
    meanB: nb,
    diff: `${na} − ${nb}`,
    diffCi: `95% CI of ${na} − ${nb}`,
    medianStepsA: `median steps ${na}`,
    medianStepsB: `median steps ${nb}`,
    ratio: `ratio ${nb} / ${na}`,
  };
}

/**
 * The verdict, honest both ways: significant in favour of either side, or "no significant difference" with the n —
 * and when n is too small for any test to reach alpha, it says so instead of implying the methods are equal.
 */
function verdictFor(
  row: Omit<ComparisonRow, "verdict">,
  o: Required<Pick<CompareOptions, "a" | "b" | "alpha" | "metric">>,
  names: Record<string, string>,
): string {
  const na = names[o.a] ?? o.a,
    nb = names[o.b] ?? o.b;
  if (row.n === 0) return "no matched pairs";
  const higherBetter = o.metric === "dice";
  const aAhead = higherBetter ? row.diff > 0 : row.diff < 0;
  const leader = row.diff === 0 ? undefined : aAhead ? na : nb;
  const digits = o.metric === "dice" ? 3 : 2;
  const gap = `${Math.abs(row.diff).toFixed(digits)} ${o.metric === "dice" ? "Dice" : "mm HD95"}`;
  if (row.pAdjusted < o.alpha && leader !== undefined) {
    return `${leader} better by ${gap} (p = ${formatP(row.pAdjusted)}, n = ${row.n})`;
  }
  const lean = leader === undefined ? "identical means" : `${leader} ahead by ${gap} on average`;
  if (row.pFloor >= o.alpha) {
    const pairs = `${row.n} ${row.n === 1 ? "pair" : "pairs"}`;
    const why =
      row.pFloor > row.minP
        ? `with ${pairs} and Holm's correction over the fractions, p (Holm) cannot go below ${formatP(row.pFloor)}`
        : `with ${pairs} p cannot go below ${formatP(row.pFloor)}`;
    return `no significant difference at n=${row.n} (${why}; ${lean})`;
  }
  return `no significant difference at n=${row.n} (p = ${formatP(row.pAdjusted)}; ${lean})`;
}

/**
 * Paired comparison of initialisation A against B per (model, label fraction): pairs are the seeds both ran. The
 * verdict uses the permutation test's p after Holm's correction over the fractions of a model (one question per
 * fraction is asked, so some would come out "significant" by chance otherwise).
 */
export function compareInits(results: readonly RunResult[], options: CompareOptions): ComparisonRow[] {
  const metric = options.metric ?? "dice";
  const alpha = options.alpha ?? 0.05;
  const names = options.names ?? {};
  const value = (r: RunResult) => (metric === "dice" ? r.test.meanDice : r.test.meanHd95);
  const relevant = results.filter((r) => r.init === options.a || r.init === options.b);
  const rows: Omit<ComparisonRow, "verdict" | "pAdjusted" | "pFloor">[] = [];
  for (const g of groupBy(relevant, ["model", "labelFraction"])) {
    const bySeed = (init: string) =>
      new Map(g.runs.filter((r) => r.init === init && Number.isFinite(value(r))).map((r) => [r.seed, r]));
    const ra = bySeed(options.a),
      rb = bySeed(options.b);
    const seeds = [...ra.keys()].filter((s) => rb.has(s)).sort((x, y) => x - y);
    const a = seeds.map((s) => value(ra.get(s)!)),
      b = seeds.map((s) => value(rb.get(s)!));
    const unmatched = g.runs.length - 2 * seeds.length;
    const base = { model: g.values.model as string, labelFraction: g.values.labelFraction as number, n: seeds.length };
    if (seeds.length === 0) {
      rows.push({
        ...base,
        meanA: mean(a),
        meanB: mean(b),
        diff: NaN,
        diffCi: { lo: NaN, hi: NaN, undefinedReason: "n = 0" },
        mde: NaN,
        pPermutation: NaN,
        pWilcoxon: NaN,
        minP: 1,
        unmatched,
      });
      continue;
    }
    const seed = seedFrom(options.seed ?? 0, base.model, base.labelFraction);
    const c = pairedComparison(a, b, { iterations: options.iterations, alpha, seed, interval: options.interval });
    rows.push({
      ...base,
      meanA: c.meanA,
      meanB: c.meanB,
      diff: c.meanDiff,
      diffCi:
        c.ci.undefinedReason === undefined
          ? { lo: c.ci.lo, hi: c.ci.hi }
          : { lo: c.ci.lo, hi: c.ci.hi, undefinedReason: c.ci.undefinedReason },
      mde: pairedMde(a.map((v, i) => v - b[i])),
      pPermutation: c.permutation.p,
      pWilcoxon: c.wilcoxon.p,
      minP: c.minP,
      unmatched,
      details: c,
    });
  }
  // Holm within each model, over its fractions with pairs.
  const adjusted = new Map<number, number>();
  const floors = new Map<number, number>();
  for (const model of distinct(rows.map((r) => r.model))) {
    const idx = rows.map((r, i) => i).filter((i) => rows[i].model === model && rows[i].n > 0);
    const ps = idx.map((i) => rows[i].pPermutation);
    const adj = options.adjust === "none" ? ps : holmAdjust(ps);
    idx.forEach((i, k) => adjusted.set(i, adj[k]));
    const mins = idx.map((i) => rows[i].minP);
    const fl = options.adjust === "none" ? mins : holmFloors(mins);
    idx.forEach((i, k) => floors.set(i, fl[k]));
  }
  return rows.map((r, i) => {
    // Rebuilt field by field so printed tables keep this column order.
    const withP = {
      model: r.model,
      labelFraction: r.labelFraction,
      n: r.n,
      meanA: r.meanA,
      meanB: r.meanB,
      diff: r.diff,
      diffCi: r.diffCi,
      mde: r.mde,
      pPermutation: r.pPermutation,
      pWilcoxon: r.pWilcoxon,
      pAdjusted: adjusted.get(i) ?? NaN,
      minP: r.minP,
      pFloor: floors.get(i) ?? r.minP,
      unmatched: r.unmatched,
    };
    const verdict = verdictFor(withP, { a: options.a, b: options.b, alpha, metric }, names);
    return r.details === undefined ? { ...withP, verdict } : { ...withP, verdict, details: r.details };
  });
}

/** Comparison rows without the `details` field, for printing. */
export function comparisonTableRows(rows: readonly ComparisonRow[]): Omit<ComparisonRow, "details">[] {
  return rows.map(({ details, ...rest }) => rest);
}
