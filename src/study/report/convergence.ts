// How fast runs converge: steps until the validation Dice reaches a level, per group and as a ratio of two inits.
import { RunResult } from "../grid";
import { median } from "../../runtime/math";
import { mean, stepsToReach } from "../stats";
import { type Group, GroupField, groupBy } from "./groups";

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

/** Median steps of runs A and B of one (model, fraction) group to a level, and their ratio. */
function ratioRow(g: Group, ra: RunResult[], rb: RunResult[], level: number): ConvergenceRatioRow {
  const sa = medianSteps(ra, level),
    sb = medianSteps(rb, level);
  return {
    model: g.values.model as string,
    labelFraction: g.values.labelFraction as number,
    level,
    medianStepsA: sa,
    medianStepsB: sb,
    ratio: sa !== null && sb !== null && sa > 0 ? sb / sa : null,
  };
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
      rows.push(
        ratioRow(
          g,
          g.runs.filter((r) => r.init === options.a),
          g.runs.filter((r) => r.init === options.b),
          level,
        ),
      );
    }
  }
  return rows;
}

/** The finite validation Dice values of a group of runs, by step (every step any run evaluated). */
function finiteValuesByStep(runs: readonly RunResult[]): Map<number, number[]> {
  const acc = new Map<number, number[]>();
  for (const r of runs) {
    for (const p of r.curve) {
      if (!Number.isFinite(p.valDice)) continue;
      const list = acc.get(p.step) ?? [];
      list.push(p.valDice);
      acc.set(p.step, list);
    }
  }
  return acc;
}

/** The validation curve averaged over runs: every step any run evaluated, mean of the finite values there. */
export function meanCurve(runs: readonly RunResult[]): { step: number[]; valDice: number[]; n: number[] } {
  const acc = finiteValuesByStep(runs);
  const steps = [...acc.keys()].sort((x, y) => x - y);
  return { step: steps, valDice: steps.map((s) => mean(acc.get(s)!)), n: steps.map((s) => acc.get(s)!.length) };
}

/** The validation curve of a group of runs as the median over runs with a band: min-max for n < 4, else the IQR. */
export interface MedianBand {
  step: number[];
  median: number[];
  lo: number[];
  hi: number[];
  /** Runs with a finite value at each step. */
  n: number[];
  /** What the band spans: "min-max" (fewer than 4 runs) or "IQR" (25th to 75th percentile, 4 runs or more). */
  band: "min-max" | "IQR";
}

function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const i = Math.floor(pos);
  return i + 1 < sorted.length ? sorted[i] + (pos - i) * (sorted[i + 1] - sorted[i]) : sorted[i];
}

/**
 * Median over runs of the validation Dice at every step any run evaluated (finite values only), with a band: the
 * min and max over runs when the group has fewer than 4 runs, else the interquartile range (linear interpolation).
 */
export function medianBand(runs: readonly RunResult[]): MedianBand {
  const acc = finiteValuesByStep(runs);
  const band = runs.length >= 4 ? "IQR" : "min-max";
  const steps = [...acc.keys()].sort((x, y) => x - y);
  const sorted = steps.map((s) => [...acc.get(s)!].sort((x, y) => x - y));
  return {
    step: steps,
    median: sorted.map((v) => median(v)),
    lo: sorted.map((v) => (band === "IQR" ? quantile(v, 0.25) : v[0])),
    hi: sorted.map((v) => (band === "IQR" ? quantile(v, 0.75) : v[v.length - 1])),
    n: sorted.map((v) => v.length),
    band,
  };
}

/** x rounded down to 3 significant digits. */
function floorTo3(x: number): number {
  const k = 10 ** (Math.floor(Math.log10(x)) - 2);
  return Number((Math.floor(x / k + 1e-9) * k).toPrecision(3));
}

/** A ConvergenceRatioRow at a level both arms reach: `level` = share × min(best median of A, best median of B). */
export interface SharedLevelRow extends ConvergenceRatioRow {
  /** The share of the lower arm's best median validation Dice, e.g. 0.5. */
  share: number;
}

/**
 * Steps to reach validation Dice levels that both arms reach, per (model, fraction): each level is a share (default
 * 50 % and 80 %) of the lower of the two arms' best median validation Dice, so both median curves reach it; the steps
 * are the median over seeds of the first step at the level (a seed that never gets there counts as infinitely slow).
 */
export function sharedLevelConvergence(
  results: readonly RunResult[],
  options: { a: string; b: string; shares?: number[] },
): SharedLevelRow[] {
  const shares = options.shares ?? [0.5, 0.8];
  for (const s of shares)
    if (!(s > 0 && s <= 1)) throw new Error(`sharedLevelConvergence: shares must be in (0, 1], got ${s}`);
  const rows: SharedLevelRow[] = [];
  for (const g of groupBy(results, ["model", "labelFraction"])) {
    const ra = g.runs.filter((r) => r.init === options.a),
      rb = g.runs.filter((r) => r.init === options.b);
    if (ra.length === 0 || rb.length === 0) continue;
    const best = (runs: RunResult[]) => Math.max(-Infinity, ...medianBand(runs).median);
    const lower = Math.min(best(ra), best(rb));
    if (!Number.isFinite(lower) || lower <= 0) continue; // an arm without a positive validation Dice: no shared level
    for (const share of shares) {
      const level = floorTo3(share * lower); // rounded down, so the lower arm's median curve still reaches it
      const { model, labelFraction, ...steps } = ratioRow(g, ra, rb, level);
      rows.push({ model, labelFraction, share, ...steps }); // the table's column order
    }
  }
  return rows;
}
