// Aggregating per-case, per-class scores the way nnFormer reports them (docs/nnformer.md §5): the mean over cases
// for each class, then the mean of those class means. NaN entries (a class absent from both prediction and reference
// under the default conventions) are skipped, and each class reports how many cases it was averaged over.
import { Vec3 } from "../runtime/math";
import { ClassSpec, DiceOptions, LabelMap, className, diceScores, nanMean } from "./dice";
import { Hd95Definition, Hd95Options, KIT_HD95, NNFORMER_HD95, hd95Scores } from "./hd95";

/** One case's scores, one value per class (NaN = not defined for this case). */
export interface CaseScores {
  caseId: string;
  values: ArrayLike<number>;
}

export interface ClassSummary {
  name: string;
  /** Mean over the cases where the value is not NaN; NaN if there are none. */
  mean: number;
  /** Population standard deviation over the same cases. */
  std: number;
  /** Number of non-NaN cases. */
  count: number;
}

export interface MetricSummary {
  metric: string;
  classNames: string[];
  caseIds: string[];
  /** [case][class]. */
  values: number[][];
  perClass: ClassSummary[];
  /** Mean over classes within each case (NaN skipped), for spotting bad cases. */
  perCase: { caseId: string; mean: number; count: number }[];
  /** Mean over classes of the per-class means (NaN classes skipped): the headline number. */
  mean: number;
}

/** Per-class and overall means of a [case][class] table, skipping NaN. */
export function summarize(cases: readonly CaseScores[], classNames: readonly string[], metric = "dice"): MetricSummary {
  const K = classNames.length;
  cases.forEach((c) => {
    if (c.values.length !== K) {
      throw new Error(
        `summarize(${metric}): case ${c.caseId} has ${c.values.length} values but there are ${K} classes ` +
          `(${classNames.join(", ")}); score every class, using NaN for undefined ones`,
      );
    }
  });
  const values = cases.map((c) => Array.from(c.values));
  const perClass = classNames.map((name, k) => {
    const col = values.map((row) => row[k]).filter((v) => !Number.isNaN(v));
    const mean = col.length ? col.reduce((a, b) => a + b, 0) / col.length : NaN;
    const std = col.length ? Math.sqrt(col.reduce((a, b) => a + (b - mean) ** 2, 0) / col.length) : NaN;
    return { name, mean, std, count: col.length };
  });
  const perCase = cases.map((c, i) => ({
    caseId: c.caseId,
    mean: nanMean(values[i]),
    count: values[i].filter((v) => !Number.isNaN(v)).length,
  }));
  return {
    metric,
    classNames: [...classNames],
    caseIds: cases.map((c) => c.caseId),
    values,
    perClass,
    perCase,
    mean: nanMean(perClass.map((c) => c.mean)),
  };
}

/** A plain-text table: one row per case, then mean, std and n rows per class, and the overall mean. */
export function formatSummary(s: MetricSummary, digits = 4): string {
  const f = (v: number) => (Number.isNaN(v) ? "NaN" : v.toFixed(digits));
  const header = ["case", ...s.classNames, "mean"];
  const rows = [
    ...s.caseIds.map((id, i) => [id, ...s.values[i].map(f), f(s.perCase[i].mean)]),
    ["mean", ...s.perClass.map((c) => f(c.mean)), f(s.mean)],
    ["std", ...s.perClass.map((c) => f(c.std)), ""],
    ["n", ...s.perClass.map((c) => String(c.count)), ""],
  ];
  const widths = header.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j].length)));
  const line = (r: string[]) => r.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join("  ");
  return [`${s.metric}`, line(header), ...rows.map(line)].join("\n");
}

export interface EvaluateOptions {
  /** Dice both-empty convention (default "nan"). */
  dice?: DiceOptions;
  /** HD95 units and empty conventions; `spacing` comes from the case unless given here. */
  hd95?: Hd95Options;
}

/** Dice and HD95 per class for one case (prediction and reference on the same [D, H, W] grid). */
export function evaluateCase(
  caseId: string,
  pred: LabelMap,
  ref: LabelMap,
  classes: readonly ClassSpec[],
  shape: Vec3,
  spacing: Vec3,
  options: EvaluateOptions = {},
): { caseId: string; dice: number[]; hd95: number[] } {
  return {
    caseId,
    dice: diceScores(pred, ref, classes, options.dice),
    hd95: hd95Scores(pred, ref, classes, shape, { spacing, ...options.hd95 }),
  };
}

/**
 * The official nnFormer conventions in one object: Dice both-empty = 1; HD95 by medpy's definition in voxels, 0 when
 * the prediction or the reference is empty (NNFORMER_HD95).
 */
export const NNFORMER_EVAL: EvaluateOptions = { dice: { bothEmpty: 1 }, hd95: { ...NNFORMER_HD95 } };

/**
 * The kit's conventions: Dice both-empty undefined (NaN); HD95 in mm by the named definition, a missed or
 * hallucinated organ charged the volume's diagonal, absent from both undefined (KIT_HD95).
 */
export function kitEvaluation(definition: Hd95Definition = "medpy"): EvaluateOptions {
  return { hd95: { ...KIT_HD95, definition } };
}

/** Summaries of a list of evaluateCase results, one per metric. */
export function summarizeCases(
  results: readonly { caseId: string; dice: number[]; hd95: number[] }[],
  classes: readonly (ClassSpec | string)[],
): { dice: MetricSummary; hd95: MetricSummary } {
  const names = classes.map((c) => (typeof c === "string" ? c : className(c)));
  return {
    dice: summarize(
      results.map((r) => ({ caseId: r.caseId, values: r.dice })),
      names,
      "dice",
    ),
    hd95: summarize(
      results.map((r) => ({ caseId: r.caseId, values: r.hd95 })),
      names,
      "hd95",
    ),
  };
}
