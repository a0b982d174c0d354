// Summary tables of a study: Dice and HD95 per group over seeds with bootstrap CIs, the per-organ table laid out
// like nnFormer's Table II, and the cost per model.
import { seedFrom } from "../../runtime/random";
import { RunResult } from "../grid";
import { bootstrapCI, finiteOnly, mean } from "../stats";
import { Interval, MeanStd, meanStd } from "./format";
import { GroupField, groupBy } from "./groups";

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
