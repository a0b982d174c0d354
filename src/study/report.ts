// Tables and an HTML report from the results of a study: Dice and HD95 per (model, init, label fraction) over seeds,
// a per-organ table laid out like nnFormer's Table II, the paired MAE-vs-scratch comparison per fraction with a
// verdict in plain words, and how fast runs converge. Tables are arrays of plain row objects; toMarkdown, toCsv and
// toHtmlTable print any of them. A cell may be a {mean, std, n} summary or a {lo, hi} interval: Markdown prints
// "0.812 ± 0.013" and "[0.790, 0.830]", CSV spreads them over dice_mean, dice_std / diceCi_lo, diceCi_hi columns.
import { barChart, lineChart } from "../plots/charts";
import { Figure, figureToHtml, plotlyLoaderHtml } from "../plots/plotly";
import { writeFileAtomic } from "../runtime/files";
import { seedFrom } from "../runtime/random";
import { RunResult } from "./grid";
import {
  PairedComparison,
  bootstrapCI,
  finiteOnly,
  holmAdjust,
  mean,
  median,
  minAttainableP,
  pairedComparison,
  std,
  stepsToReach,
} from "./stats";

// ---------------------------------------------------------------------------------------------------------------
// Table values and printing

/** Mean and sample std of the finite values of a group; n counts those values. */
export interface MeanStd {
  mean: number;
  std: number;
  n: number;
}

/** A confidence interval. */
export interface Interval {
  lo: number;
  hi: number;
}

function isMeanStd(v: unknown): v is MeanStd {
  return typeof v === "object" && v !== null && "mean" in v && "std" in v;
}

function isInterval(v: unknown): v is Interval {
  return typeof v === "object" && v !== null && "lo" in v && "hi" in v;
}

/** Summary of the finite values (NaN marks a metric that was not measured). */
export function meanStd(values: readonly number[]): MeanStd {
  const xs = finiteOnly(values);
  return { mean: mean(xs), std: std(xs), n: xs.length };
}

/** Markdown headers for the row fields this file produces; other keys print as they are. */
export const DEFAULT_HEADERS: Record<string, string> = {
  model: "model",
  init: "init",
  labelFraction: "labels",
  n: "n",
  level: "Dice level",
  dice: "Dice (mean ± std)",
  diceCi: "Dice 95% CI",
  hd95: "HD95 mm (mean ± std)",
  hd95Ci: "HD95 95% CI",
  meanDice: "mean Dice",
  meanHd95: "mean HD95 (mm)",
  meanA: "A",
  meanB: "B",
  diff: "A − B",
  diffCi: "95% CI of A − B",
  pPermutation: "p (permutation)",
  pWilcoxon: "p (Wilcoxon)",
  pAdjusted: "p (Holm)",
  minP: "smallest possible p",
  unmatched: "unmatched",
  verdict: "verdict",
  reached: "reached",
  medianSteps: "median steps",
  medianStepsA: "median steps A",
  medianStepsB: "median steps B",
  ratio: "ratio B / A",
  params: "parameters",
  msPerStep: "ms / step",
  runs: "runs",
};

export interface FormatOptions {
  /** Decimals for numbers, summaries and intervals: one for all, or per row key. Default 3 (2 for keys with "hd95"). */
  digits?: number | Record<string, number>;
  /** Column headers by row key (Markdown and HTML); merged over DEFAULT_HEADERS. */
  headers?: Record<string, string>;
}

const MISSING = "–";

function digitsFor(key: string, options: FormatOptions): number {
  const d = options.digits;
  if (typeof d === "number") return d;
  if (d !== undefined && d[key] !== undefined) return d[key];
  return /hd95/i.test(key) ? 2 : 3;
}

/** A p-value: three significant digits, "<0.0001" below that. */
export function formatP(p: number): string {
  if (!Number.isFinite(p)) return MISSING;
  if (p < 1e-4) return "<0.0001";
  return String(Number(p.toPrecision(3)));
}

/** A label fraction as a percentage: 0.25 -> "25%". */
export function formatFraction(f: number): string {
  return Number.isFinite(f) ? `${Number((f * 100).toPrecision(6))}%` : MISSING;
}

function fixed(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : MISSING;
}

const P_KEY = /^(p[A-Z]|minP$)/;
/** Keys holding counts or steps, printed as they are; every other number gets fixed decimals (a Dice of 1 is "1.000"). */
const COUNT_KEY = /^(n|runs|params|reached|unmatched|seed|steps|medianSteps.*)$/;

/** One table value as text, the way Markdown and HTML tables show it. */
export function formatValue(key: string, v: unknown, options: FormatOptions = {}): string {
  const digits = digitsFor(key, options);
  if (v === null || v === undefined) return key.startsWith("medianSteps") ? "not reached" : MISSING;
  if (typeof v === "string") return v;
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "number") {
    if (Number.isNaN(v)) return MISSING;
    if (key === "labelFraction") return formatFraction(v);
    if (key === "level") return String(v);
    if (P_KEY.test(key)) return formatP(v);
    if (COUNT_KEY.test(key)) return String(v);
    if (key === "ratio") return fixed(v, 2);
    return fixed(v, digits);
  }
  if (isMeanStd(v))
    return Number.isFinite(v.std) ? `${fixed(v.mean, digits)} ± ${fixed(v.std, digits)}` : fixed(v.mean, digits);
  if (isInterval(v)) return Number.isFinite(v.lo) ? `[${fixed(v.lo, digits)}, ${fixed(v.hi, digits)}]` : MISSING;
  return JSON.stringify(v);
}

/** Row keys in order of first appearance. */
function columnsOf(rows: readonly object[]): string[] {
  const seen = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) seen.add(k);
  return [...seen];
}

function headerOf(key: string, options: FormatOptions): string {
  return options.headers?.[key] ?? DEFAULT_HEADERS[key] ?? key;
}

/** A GitHub-flavoured Markdown table of the rows (columns: every key, in order of first appearance). */
export function toMarkdown(rows: readonly object[], options: FormatOptions = {}): string {
  if (rows.length === 0) return "_(no rows)_\n";
  const cols = columnsOf(rows);
  const esc = (s: string) => s.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
  const numeric = cols.map((k) =>
    rows.every((r) => {
      const v = (r as Record<string, unknown>)[k];
      return typeof v === "number" || isMeanStd(v) || isInterval(v) || v == null;
    }),
  );
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const out = [
    line(cols.map((k) => esc(headerOf(k, options)))),
    line(cols.map((_, j) => (numeric[j] ? "---:" : "---"))),
    ...rows.map((r) => line(cols.map((k) => esc(formatValue(k, (r as Record<string, unknown>)[k], options))))),
  ];
  return `${out.join("\n")}\n`;
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csvNumber(v: number): string {
  return Number.isFinite(v) ? String(v) : "";
}

/**
 * CSV of the rows, for spreadsheets and other tools: full-precision numbers, empty for NaN or null; a {mean, std, n}
 * value becomes KEY_mean, KEY_std, KEY_n columns and a {lo, hi} value KEY_lo, KEY_hi.
 */
export function toCsv(rows: readonly object[]): string {
  const cols = columnsOf(rows);
  const kind = cols.map((k) => {
    for (const r of rows) {
      const v = (r as Record<string, unknown>)[k];
      if (isMeanStd(v)) return "meanStd";
      if (isInterval(v)) return "interval";
      if (v != null) return "plain";
    }
    return "plain";
  });
  const header: string[] = [];
  cols.forEach((k, j) => {
    if (kind[j] === "meanStd") header.push(`${k}_mean`, `${k}_std`, `${k}_n`);
    else if (kind[j] === "interval") header.push(`${k}_lo`, `${k}_hi`);
    else header.push(k);
  });
  const lines = [header.map(csvField).join(",")];
  for (const r of rows) {
    const fields: string[] = [];
    cols.forEach((k, j) => {
      const v = (r as Record<string, unknown>)[k];
      if (kind[j] === "meanStd") {
        const m = isMeanStd(v) ? v : undefined;
        fields.push(m ? csvNumber(m.mean) : "", m ? csvNumber(m.std) : "", m ? String(m.n) : "");
      } else if (kind[j] === "interval") {
        const iv = isInterval(v) ? v : undefined;
        fields.push(iv ? csvNumber(iv.lo) : "", iv ? csvNumber(iv.hi) : "");
      } else if (typeof v === "number") fields.push(csvNumber(v));
      else if (v == null) fields.push("");
      else fields.push(csvField(typeof v === "string" ? v : JSON.stringify(v)));
    });
    lines.push(fields.join(","));
  }
  return `${lines.join("\n")}\n`;
}

function escHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** An HTML <table> of the rows, formatted as toMarkdown formats them. */
export function toHtmlTable(rows: readonly object[], options: FormatOptions = {}): string {
  if (rows.length === 0) return "<p><em>(no rows)</em></p>";
  const cols = columnsOf(rows);
  const head = cols.map((k) => `<th>${escHtml(headerOf(k, options))}</th>`).join("");
  const body = rows.map((r) => {
    const tds = cols.map((k) => {
      const v = (r as Record<string, unknown>)[k];
      const cls = typeof v === "string" ? "" : ' class="num"';
      return `<td${cls}>${escHtml(formatValue(k, v, options))}</td>`;
    });
    return `<tr>${tds.join("")}</tr>`;
  });
  return `<table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body.join("\n")}\n</tbody>\n</table>`;
}

// ---------------------------------------------------------------------------------------------------------------
// Grouping

/** Cell fields results can be grouped by. */
export type GroupField = "model" | "init" | "labelFraction";

interface Group {
  values: Partial<Record<GroupField, string | number>>;
  runs: RunResult[];
}

/** Groups results by the given fields: strings in order of first appearance, label fractions ascending. */
function groupBy(results: readonly RunResult[], by: readonly GroupField[]): Group[] {
  const firstSeen = new Map<string, number>();
  for (const r of results) {
    for (const f of by) {
      const id = `${f}=${r[f]}`;
      if (!firstSeen.has(id)) firstSeen.set(id, firstSeen.size);
    }
  }
  const groups = new Map<string, Group>();
  for (const r of results) {
    const id = by.map((f) => `${f}=${r[f]}`).join("|");
    let g = groups.get(id);
    if (g === undefined) {
      g = { values: {}, runs: [] };
      for (const f of by) g.values[f] = r[f];
      groups.set(id, g);
    }
    g.runs.push(r);
  }
  const rank = (g: Group, f: GroupField): number =>
    f === "labelFraction" ? (g.values[f] as number) : firstSeen.get(`${f}=${g.values[f]}`)!;
  return [...groups.values()].sort((x, y) => {
    for (const f of by) {
      const d = rank(x, f) - rank(y, f);
      if (d !== 0) return d;
    }
    return 0;
  });
}

function distinct<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

/** A readable name for a group: only the fields that vary across the results, e.g. "mae" or "nnformer mae". */
function groupName(values: Partial<Record<GroupField, string | number>>, varying: readonly GroupField[]): string {
  const parts = varying
    .filter((f) => values[f] !== undefined)
    .map((f) => (f === "labelFraction" ? formatFraction(values[f] as number) : String(values[f])));
  return parts.length > 0 ? parts.join(" ") : "all";
}

function varyingFields(results: readonly RunResult[], among: readonly GroupField[]): GroupField[] {
  return among.filter((f) => distinct(results.map((r) => r[f])).length > 1);
}

// ---------------------------------------------------------------------------------------------------------------
// Study table

export interface StudyTableOptions {
  /** Grouping fields, in column order; default ["model", "init", "labelFraction"]. */
  by?: GroupField[];
  /** Bootstrap resamples for the CI; default 2000. */
  iterations?: number;
  /** 1 - confidence level; default 0.05. */
  alpha?: number;
  /** Base seed of the bootstrap (each row derives its own from it and the group); default 0. */
  seed?: number;
}

/** One row of the study table: a group (e.g. init x fraction) summarised over its seeds. */
export interface StudyRow {
  model?: string;
  init?: string;
  labelFraction?: number;
  /** Runs in the group. */
  n: number;
  /** Test mean Dice over the runs. */
  dice: MeanStd;
  /** Percentile-bootstrap CI of the mean Dice over the runs. */
  diceCi: Interval;
  /** Test mean HD95 (mm) over the runs. */
  hd95: MeanStd;
  hd95Ci: Interval;
}

/** Mean ± std over seeds of the test mean Dice and HD95, n and a bootstrap CI, per group. */
export function studyTable(results: readonly RunResult[], options: StudyTableOptions = {}): StudyRow[] {
  const by = options.by ?? ["model", "init", "labelFraction"];
  const seed = options.seed ?? 0;
  const boot = (xs: number[], what: string, id: string): Interval => {
    const ci = bootstrapCI(finiteOnly(xs), {
      iterations: options.iterations,
      alpha: options.alpha,
      seed: seedFrom(seed, what, id),
    });
    return { lo: ci.lo, hi: ci.hi };
  };
  return groupBy(results, by).map((g) => {
    const id = JSON.stringify(g.values);
    const dice = g.runs.map((r) => r.test.meanDice);
    const hd = g.runs.map((r) => r.test.meanHd95);
    const row = { ...g.values } as StudyRow;
    row.n = g.runs.length;
    row.dice = meanStd(dice);
    row.diceCi = boot(dice, "dice", id);
    row.hd95 = meanStd(hd);
    row.hd95Ci = boot(hd, "hd95", id);
    return row;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Per-organ table (nnFormer Table II layout: model, mean, one column per organ)

export interface OrganTableOptions {
  /** Grouping fields; default ["model", "init", "labelFraction"]. */
  by?: GroupField[];
  /** Which per-class metric; default "dice". */
  metric?: "dice" | "hd95";
}

/** Organ names in order of first appearance across the results. */
export function organNames(results: readonly RunResult[], metric: "dice" | "hd95" = "dice"): string[] {
  const names: string[] = [];
  for (const r of results) {
    for (const k of Object.keys(metric === "dice" ? r.test.perClassDice : r.test.perClassHd95)) {
      if (!names.includes(k)) names.push(k);
    }
  }
  return names;
}

/**
 * One row per group: the grouping fields, n, the mean over runs of the test mean metric, then one column per organ
 * (mean over runs, NaN values skipped). Values are means only, as in the paper's table; the HTML report's bars add
 * the spread.
 */
export function organTable(
  results: readonly RunResult[],
  options: OrganTableOptions = {},
): Record<string, string | number>[] {
  const metric = options.metric ?? "dice";
  const organs = organNames(results, metric);
  const meanKey = metric === "dice" ? "meanDice" : "meanHd95";
  return groupBy(results, options.by ?? ["model", "init", "labelFraction"]).map((g) => {
    const row: Record<string, string | number> = { ...g.values } as Record<string, string | number>;
    row.n = g.runs.length;
    row[meanKey] = mean(finiteOnly(g.runs.map((r) => (metric === "dice" ? r.test.meanDice : r.test.meanHd95))));
    for (const o of organs) {
      const per = g.runs.map((r) => (metric === "dice" ? r.test.perClassDice : r.test.perClassHd95)[o] ?? NaN);
      row[o] = mean(finiteOnly(per));
    }
    return row;
  });
}

/**
 * The analogue of nnFormer's Table II: one row per (model, init) with n, the mean over runs of the test mean Dice,
 * its percentile-bootstrap CI over runs, and the mean Dice per organ.
 */
export function table2Rows(
  results: readonly RunResult[],
  options: { seed?: number; iterations?: number } = {},
): Record<string, unknown>[] {
  const by: GroupField[] = ["model", "init"];
  const ci = studyTable(results, { by, seed: options.seed, iterations: options.iterations });
  return organTable(results, { by }).map((row, i) => {
    const { model, init, n, meanDice, ...organs } = row;
    return { model, init, n, meanDice, diceCi: ci[i].diceCi, ...organs };
  });
}

/** Cost per model: parameters and mean training-step time (from each run's meta.params / meta.msPerStep). */
export function modelCostRows(
  results: readonly RunResult[],
): Array<{ model: string; params: number; msPerStep: number; runs: number }> {
  return groupBy(results, ["model"]).map((g) => {
    const meta = (r: RunResult, k: string) => {
      const v = (r.meta as Record<string, unknown> | undefined)?.[k];
      return typeof v === "number" ? v : NaN; // NaN was written to results.jsonl as null
    };
    const params = finiteOnly(g.runs.map((r) => meta(r, "params")));
    return {
      model: String(g.values.model),
      params: params.length ? params[0] : NaN,
      msPerStep: mean(finiteOnly(g.runs.map((r) => meta(r, "msPerStep")))),
      runs: g.runs.length,
    };
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Paired comparison of two initialisations

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
  /** Bootstrap resamples; default 2000. */
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
  /** Two-sided sign-flip permutation test of the mean difference (exact for n <= 16). */
  pPermutation: number;
  /** Two-sided Wilcoxon signed-rank test (exact). */
  pWilcoxon: number;
  /** pPermutation after Holm's correction over this model's fractions (equal to it with adjust "none"). */
  pAdjusted: number;
  /** The smallest p the permutation test could give with these pairs. */
  minP: number;
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
  if (row.minP >= o.alpha) {
    return `no significant difference at n=${row.n} (with ${row.n} pairs p cannot go below ${formatP(row.minP)}; ${lean})`;
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
  const rows: Omit<ComparisonRow, "verdict" | "pAdjusted">[] = [];
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
        diffCi: { lo: NaN, hi: NaN },
        pPermutation: NaN,
        pWilcoxon: NaN,
        minP: 1,
        unmatched,
      });
      continue;
    }
    const seed = seedFrom(options.seed ?? 0, base.model, base.labelFraction);
    const c = pairedComparison(a, b, { iterations: options.iterations, alpha, seed });
    rows.push({
      ...base,
      meanA: c.meanA,
      meanB: c.meanB,
      diff: c.meanDiff,
      diffCi: { lo: c.ci.lo, hi: c.ci.hi },
      pPermutation: c.permutation.p,
      pWilcoxon: c.wilcoxon.p,
      minP: c.minP,
      unmatched,
      details: c,
    });
  }
  // Holm within each model, over its fractions with pairs.
  const adjusted = new Map<number, number>();
  for (const model of distinct(rows.map((r) => r.model))) {
    const idx = rows.map((r, i) => i).filter((i) => rows[i].model === model && rows[i].n > 0);
    const ps = idx.map((i) => rows[i].pPermutation);
    const adj = options.adjust === "none" ? ps : holmAdjust(ps);
    idx.forEach((i, k) => adjusted.set(i, adj[k]));
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
      pPermutation: r.pPermutation,
      pWilcoxon: r.pWilcoxon,
      pAdjusted: adjusted.get(i) ?? NaN,
      minP: r.minP,
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

// ---------------------------------------------------------------------------------------------------------------
// Convergence

export interface ConvergenceOptions {
  /** Validation Dice levels; default [0.5, 0.7]. */
  levels?: number[];
  /** Grouping fields; default ["model", "init", "labelFraction"]. */
  by?: GroupField[];
}

/** How fast one group's runs reach one validation Dice level. */
export interface ConvergenceRow {
  model?: string;
  init?: string;
  labelFraction?: number;
  level: number;
  n: number;
  /** Runs whose validation Dice ever reached the level. */
  reached: number;
  /** Median over runs of the first step at the level, counting runs that never reach it as infinitely slow; null
   * when that median is infinite (half or more never reached it). */
  medianSteps: number | null;
}

function medianSteps(runs: readonly RunResult[], level: number): number | null {
  const steps = runs.map((r) => stepsToReach(r.curve, level) ?? Infinity);
  const m = median(steps);
  return Number.isFinite(m) ? m : null;
}

/** Median steps to reach each validation Dice level, per group. */
export function convergenceTable(results: readonly RunResult[], options: ConvergenceOptions = {}): ConvergenceRow[] {
  const levels = options.levels ?? [0.5, 0.7];
  const rows: ConvergenceRow[] = [];
  for (const g of groupBy(results, options.by ?? ["model", "init", "labelFraction"])) {
    for (const level of levels) {
      const row = { ...g.values } as ConvergenceRow;
      row.level = level;
      row.n = g.runs.length;
      row.reached = g.runs.filter((r) => stepsToReach(r.curve, level) !== null).length;
      row.medianSteps = medianSteps(g.runs, level);
      rows.push(row);
    }
  }
  return rows;
}

/** Median steps of A and B to a level at one (model, fraction), and how many times longer B takes. */
export interface ConvergenceRatioRow {
  model: string;
  labelFraction: number;
  level: number;
  medianStepsA: number | null;
  medianStepsB: number | null;
  /** medianStepsB / medianStepsA (> 1: A converges faster); null when either median is not reached. */
  ratio: number | null;
}

/** Convergence speed of A against B per (model, fraction, level). */
export function convergenceRatios(
  results: readonly RunResult[],
  options: { a: string; b: string; levels?: number[] },
): ConvergenceRatioRow[] {
  const levels = options.levels ?? [0.5, 0.7];
  const rows: ConvergenceRatioRow[] = [];
  for (const g of groupBy(results, ["model", "labelFraction"])) {
    for (const level of levels) {
      const sa = medianSteps(
        g.runs.filter((r) => r.init === options.a),
        level,
      );
      const sb = medianSteps(
        g.runs.filter((r) => r.init === options.b),
        level,
      );
      rows.push({
        model: g.values.model as string,
        labelFraction: g.values.labelFraction as number,
        level,
        medianStepsA: sa,
        medianStepsB: sb,
        ratio: sa !== null && sb !== null && sa > 0 ? sb / sa : null,
      });
    }
  }
  return rows;
}

/** The validation curve averaged over runs: every step any run evaluated, mean of the finite values there. */
export function meanCurve(runs: readonly RunResult[]): { step: number[]; valDice: number[]; n: number[] } {
  const acc = new Map<number, number[]>();
  for (const r of runs) {
    for (const p of r.curve) {
      if (!Number.isFinite(p.valDice)) continue;
      const list = acc.get(p.step) ?? [];
      list.push(p.valDice);
      acc.set(p.step, list);
    }
  }
  const steps = [...acc.keys()].sort((x, y) => x - y);
  return { step: steps, valDice: steps.map((s) => mean(acc.get(s)!)), n: steps.map((s) => acc.get(s)!.length) };
}

// ---------------------------------------------------------------------------------------------------------------
// Figures

/** Test mean Dice against label fraction, one line per (model, init), error bars one std over seeds. */
export function diceVsFractionFigure(results: readonly RunResult[], metric: "dice" | "hd95" = "dice"): Figure {
  const varying = varyingFields(results, ["model", "init"]);
  const rows = studyTable(results, { by: ["model", "init", "labelFraction"], iterations: 1 });
  const lines = groupBy(results, ["model", "init"]).map((g) => {
    const mine = rows.filter((r) => r.model === g.values.model && r.init === g.values.init);
    const s = mine.map((r) => (metric === "dice" ? r.dice : r.hd95));
    return {
      name: groupName(g.values, varying),
      x: mine.map((r) => r.labelFraction as number),
      y: s.map((v) => v.mean),
      err: s.map((v) => (Number.isFinite(v.std) ? v.std : 0)),
    };
  });
  const fig = lineChart(lines, {
    title: `Test ${metric === "dice" ? "mean Dice" : "mean HD95"} vs label fraction (mean ± std over seeds)`,
    xTitle: "label fraction",
    yTitle: metric === "dice" ? "Dice" : "HD95 (mm)",
  });
  fig.data.forEach((t, i) => {
    t.error_y = { type: "data", array: lines[i].err.map((e) => Number(e.toPrecision(6))), visible: true };
  });
  fig.layout.showlegend = true;
  fig.layout.xaxis = { ...fig.layout.xaxis, tickformat: ".0%" };
  return fig;
}

/** Validation Dice (mean over seeds) against step for one label fraction, one line per (model, init). */
export function validationCurvesFigure(results: readonly RunResult[], labelFraction: number): Figure {
  const mine = results.filter((r) => r.labelFraction === labelFraction);
  const varying = varyingFields(results, ["model", "init"]);
  const series = groupBy(mine, ["model", "init"]).map((g) => {
    const c = meanCurve(g.runs);
    return { name: `${groupName(g.values, varying)} (n=${g.runs.length})`, x: c.step, y: c.valDice };
  });
  const fig = lineChart(series, {
    title: `Validation Dice, ${formatFraction(labelFraction)} labels (mean over seeds)`,
    xTitle: "step",
    yTitle: "validation Dice",
  });
  fig.layout.showlegend = true;
  return fig;
}

/** Per-organ test Dice for one label fraction: grouped bars, one group per (model, init), error bars one std. */
export function organBarsFigure(results: readonly RunResult[], labelFraction: number): Figure {
  const mine = results.filter((r) => r.labelFraction === labelFraction);
  const organs = organNames(mine);
  const varying = varyingFields(results, ["model", "init"]);
  const groups = groupBy(mine, ["model", "init"]).map((g) => {
    const s = organs.map((o) => meanStd(g.runs.map((r) => r.test.perClassDice[o] ?? NaN)));
    return {
      name: groupName(g.values, varying),
      categories: organs,
      values: s.map((v) => v.mean),
      errors: s.map((v) => (Number.isFinite(v.std) ? v.std : 0)),
    };
  });
  const fig = barChart(groups, {
    title: `Test Dice per organ, ${formatFraction(labelFraction)} labels (mean ± std over seeds)`,
    yTitle: "Dice",
    width: 900,
  });
  fig.layout.showlegend = true;
  return fig;
}

// ---------------------------------------------------------------------------------------------------------------
// HTML report

export interface HtmlReportOptions {
  title?: string;
  /** The initialisation under test and its baseline; default "mae" and "scratch" when present, else the first two inits. */
  a?: string;
  b?: string;
  /** Display names of inits in verdicts, e.g. {mae: "MAE"}. */
  names?: Record<string, string>;
  /** Validation Dice levels of the convergence table; default [0.5, 0.7]. */
  levels?: number[];
  alpha?: number;
  /** Seed of every bootstrap and Monte Carlo test in the report; default 0. */
  seed?: number;
}

function pickPair(results: readonly RunResult[], options: HtmlReportOptions): { a: string; b: string } | undefined {
  const inits = distinct(results.map((r) => r.init));
  if (options.a !== undefined && options.b !== undefined) return { a: options.a, b: options.b };
  if (inits.includes("mae") && inits.includes("scratch")) return { a: "mae", b: "scratch" };
  return inits.length >= 2 ? { a: inits[0], b: inits[1] } : undefined;
}

/** The whole report as one self-contained HTML page (plotly inlined once). */
export function htmlReport(results: readonly RunResult[], options: HtmlReportOptions = {}): string {
  const title = options.title ?? "Study report";
  const fractions = distinct(results.map((r) => r.labelFraction)).sort((x, y) => x - y);
  const seeds = distinct(results.map((r) => r.seed)).sort((x, y) => x - y);
  const hours = results.reduce((s, r) => s + r.wallTimeS, 0) / 3600;
  const parts: string[] = [];
  const h2 = (t: string) => parts.push(`<h2>${escHtml(t)}</h2>`);
  const fig = (f: Figure) => parts.push(`<div class="fig">${figureToHtml(f)}</div>`);
  const para = (t: string) => parts.push(`<p>${escHtml(t)}</p>`);

  para(
    `${results.length} runs: models ${distinct(results.map((r) => r.model)).join(", ")}; inits ` +
      `${distinct(results.map((r) => r.init)).join(", ")}; label fractions ${fractions.map(formatFraction).join(", ")}; ` +
      `seeds ${seeds.join(", ")}; backends ${distinct(results.map((r) => r.backend)).join(", ")}; ` +
      `${hours.toFixed(2)} h of training in total.`,
  );
  if (results.length === 0) {
    para("No results yet.");
  } else {
    h2("Test Dice and HD95 by label fraction");
    fig(diceVsFractionFigure(results));
    parts.push(toHtmlTable(studyTable(results, { seed: options.seed, alpha: options.alpha })));
    para(
      "Mean ± sample std over seeds of each run's test mean Dice / HD95; CI: percentile bootstrap of the mean over " +
        "seeds (2000 resamples), which is too narrow with only a few seeds.",
    );

    const pair = pickPair(results, options);
    if (pair !== undefined) {
      h2(`Paired comparison: ${options.names?.[pair.a] ?? pair.a} vs ${options.names?.[pair.b] ?? pair.b}`);
      const rows = compareInits(results, { ...pair, names: options.names, alpha: options.alpha, seed: options.seed });
      parts.push(toHtmlTable(comparisonTableRows(rows), { headers: comparisonHeaders(pair.a, pair.b, options.names) }));
      para(
        "Pairs: runs with the same model, label fraction and seed. p (permutation): exact two-sided sign-flip test of " +
          "the mean difference; p (Wilcoxon): exact two-sided signed-rank test; p (Holm): the permutation p corrected " +
          "for testing every fraction of a model. The verdict uses p (Holm) at alpha = " +
          `${options.alpha ?? 0.05}.`,
      );

      h2("Convergence");
      const ratios = convergenceRatios(results, { ...pair, levels: options.levels });
      parts.push(toHtmlTable(ratios, { headers: comparisonHeaders(pair.a, pair.b, options.names) }));
    } else {
      h2("Convergence");
    }
    parts.push(toHtmlTable(convergenceTable(results, { levels: options.levels })));
    para(
      "Steps until the validation Dice first reaches the level; the median counts runs that never reach it as " +
        "infinitely slow, so it reads 'not reached' when half or more never got there.",
    );

    h2("Validation curves");
    for (const f of fractions) fig(validationCurvesFigure(results, f));

    h2("Per organ");
    for (const f of fractions) fig(organBarsFigure(results, f));
    parts.push(toHtmlTable(organTable(results)));
    parts.push(toHtmlTable(organTable(results, { metric: "hd95" }), { digits: 2 }));
  }

  const css =
    "body{font-family:sans-serif;margin:24px;max-width:1100px}table{border-collapse:collapse;margin:12px 0}" +
    "th,td{border:1px solid #ccc;padding:3px 8px;font-size:13px}td.num{text-align:right;font-variant-numeric:tabular-nums}" +
    "th{background:#f3f3f3}.fig{margin:12px 0}";
  return (
    `<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>${escHtml(title)}</title>\n` +
    `<style>${css}</style>\n</head>\n<body>\n<h1>${escHtml(title)}</h1>\n${plotlyLoaderHtml()}\n${parts.join("\n")}\n` +
    `</body>\n</html>\n`
  );
}

/** Writes htmlReport(results, options) to `file` atomically (about 5 MB: plotly is inlined). Returns the path. */
export function writeHtmlReport(file: string, results: readonly RunResult[], options: HtmlReportOptions = {}): string {
  writeFileAtomic(file, htmlReport(results, options));
  return file;
}
