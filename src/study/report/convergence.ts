// How fast runs converge: steps until the validation Dice reaches a level, per group and as a ratio of two inits.
import { RunResult } from "../grid";
import { median } from "../../runtime/math";
import { mean, stepsToReach } from "../stats";
import { GroupField, groupBy } from "./groups";

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
