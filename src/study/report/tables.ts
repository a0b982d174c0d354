// Summary tables of a study: Dice and HD95 per group over seeds with confidence intervals (method named by the
// caller; default the t interval), the organs found / missed / falsely predicted beside every mean, the per-organ
// table laid out like nnFormer's Table II, and the cost per model.
import { seedFrom } from "../../runtime/random";
import { RunResult } from "../grid";
import { IntervalMethod, finiteOnly, mean, meanCI } from "../stats";
import type { DetectionCounts } from "../../metrics/detection";
import { Interval, MeanStd, meanStd } from "./format";
import { GroupField, groupBy } from "./groups";

export interface StudyTableOptions {
  /** Grouping fields, in column order; default ["model", "init", "labelFraction"]. */
  by?: GroupField[];
  /** Interval of the mean over runs; default "t" (see stats.ts INTERVAL_METHOD_TEXT). */
  interval?: IntervalMethod;
  /** Bootstrap resamples for bootstrap intervals; default 2000. */
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
  /** CI of the mean Dice over the runs (n/a for one run or runs without spread). */
  diceCi: Interval;
  /** Test mean HD95 (mm) over the runs, a missed organ charged the volume diagonal (older results: misses left out). */
  hd95: MeanStd;
  hd95Ci: Interval;
  /** Organs found / missed / falsely predicted over the runs' test cases ("–" for results without counts). */
  organs: string;
  /** Mean over runs of the HD95 of the found organs, with the number of undefined (case, organ) values. */
  hd95Found: string;
}

/** Detection counts summed over runs (undefined when a run has none, e.g. results from before they were recorded). */
export function sumDetections(runs: readonly RunResult[]): DetectionCounts | undefined {
  if (runs.length === 0 || runs.some((r) => !r.test.detection)) return undefined;
  const out: DetectionCounts = { total: 0, present: 0, predicted: 0, missed: 0, falsePositive: 0, absent: 0 };
  for (const r of runs) for (const k of Object.keys(out) as (keyof DetectionCounts)[]) out[k] += r.test.detection![k];
  return out;
}

/** "30/32 found, 2 missed, 1 FP", or "–" without counts. */
export function formatOrganCounts(c: DetectionCounts | undefined): string {
  return c ? `${c.predicted}/${c.present} found, ${c.missed} missed, ${c.falsePositive} FP` : "–";
}

/** Mean over runs of the found-only HD95, with the undefined (case, organ) count: "12.34 (7 of 64 undefined)". */
function formatHd95Found(runs: readonly RunResult[], digits = 2): string {
  if (runs.length === 0 || runs.some((r) => r.test.meanHd95Found === undefined)) return "–";
  const values = finiteOnly(runs.map((r) => r.test.meanHd95Found!));
  const undef = runs.reduce((s, r) => s + (r.test.hd95Undefined ?? 0), 0);
  const pairs = runs.reduce((s, r) => s + (r.test.hd95Pairs ?? 0), 0);
  const m = values.length ? mean(values).toFixed(digits) : "n/a";
  return undef ? `${m} (${undef} of ${pairs} undefined)` : m;
}

/** Mean ± std over seeds of the test mean Dice and HD95, n and a bootstrap CI, per group. */
export function studyTable(results: readonly RunResult[], options: StudyTableOptions = {}): StudyRow[] {
  const by = options.by ?? ["model", "init", "labelFraction"];
  const seed = options.seed ?? 0;
  const boot = (xs: number[], what: string, id: string): Interval => {
    const ci = meanCI(finiteOnly(xs), {
      method: options.interval ?? "t",
      iterations: options.iterations,
      alpha: options.alpha,
      seed: seedFrom(seed, what, id),
    });
    return ci.undefinedReason === undefined
      ? { lo: ci.lo, hi: ci.hi }
      : { lo: ci.lo, hi: ci.hi, undefinedReason: ci.undefinedReason };
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
    row.organs = formatOrganCounts(sumDetections(g.runs));
    row.hd95Found = formatHd95Found(g.runs);
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
 * Organs found per group, one column per organ: "found/present" over the runs' test cases, with the false positives
 * (predicted where the reference has none) after a "+": "7/8 +1 FP". "–" for results without detection counts.
 */
export function detectionTable(
  results: readonly RunResult[],
  options: { by?: GroupField[] } = {},
): Record<string, string | number>[] {
  const organs = organNames(results, "dice");
  return groupBy(results, options.by ?? ["model", "init", "labelFraction"]).map((g) => {
    const row: Record<string, string | number> = { ...g.values } as Record<string, string | number>;
    row.n = g.runs.length;
    for (const o of organs) {
      const per = g.runs.map((r) => r.test.perClassDetection?.[o]);
      if (per.some((c) => c === undefined)) {
        row[o] = "–";
        continue;
      }
      const found = per.reduce((s, c) => s + c!.predicted, 0),
        present = per.reduce((s, c) => s + c!.present, 0),
        fp = per.reduce((s, c) => s + c!.falsePositive, 0);
      row[o] = `${found}/${present}${fp ? ` +${fp} FP` : ""}`;
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
