// Which structures a prediction found, per case and class, so that nothing vanishes from a mean silently.
// Each (case, class) gets one outcome from the voxel counts of prediction and reference:
//   predicted      in the reference and in the prediction: Dice and HD95 are measured;
//   missed         in the reference, not in the prediction: Dice 0; HD95 has no surface to measure (medpy raises);
//   falsePositive  not in the reference, in the prediction: Dice 0; HD95 again undefined;
//   absent         in neither: Dice 0/0 and HD95 undefined (the official evaluation scores Dice 1, HD95 0).
// What an undefined HD95 contributes is a convention, stated where the number is printed:
//   kit (KIT_HD95)      missed and falsePositive cost the volume's diagonal in mm (the largest distance the grid
//                       allows), absent is left out of means; rankings and verdicts use this penalised figure;
//   official (nnFormer) 0 for all three, which rewards a model for missing a structure (docs/nnformer.md §8.11).
// Means over the defined values only are reported with the number of undefined values next to them (meanDefined).
import type { Vec3 } from "../runtime/math";
import { ClassSpec, LabelMap, OverlapCounts, overlapCounts } from "./dice";

/** What happened to one class in one case. */
export type Detection = "predicted" | "missed" | "falsePositive" | "absent";

/** The outcome from the voxel counts of a class (any voxel counts as present). */
export function detectionOf(c: OverlapCounts): Detection {
  if (c.ref > 0) return c.pred > 0 ? "predicted" : "missed";
  return c.pred > 0 ? "falsePositive" : "absent";
}

/** One outcome per class for a predicted and a reference label map on the same grid, in the order of `classes`. */
export function detections(pred: LabelMap, ref: LabelMap, classes: readonly ClassSpec[]): Detection[] {
  return overlapCounts(pred, ref, classes).map(detectionOf);
}

/** Outcome counts over cases (one class) or over cases and classes (a total). */
export interface DetectionCounts {
  /** (case, class) pairs counted. */
  total: number;
  /** Present in the reference (predicted + missed). */
  present: number;
  predicted: number;
  missed: number;
  falsePositive: number;
  absent: number;
}

function emptyCounts(): DetectionCounts {
  return { total: 0, present: 0, predicted: 0, missed: 0, falsePositive: 0, absent: 0 };
}

function add(c: DetectionCounts, d: Detection): void {
  if (d !== "predicted" && d !== "missed" && d !== "falsePositive" && d !== "absent") {
    throw new Error(
      `detection outcome must be "predicted", "missed", "falsePositive" or "absent", got ${JSON.stringify(d)}`,
    );
  }
  c.total++;
  c[d]++;
  if (d === "predicted" || d === "missed") c.present++;
}

/**
 * Counts of a [case][class] table of outcomes: one entry per class (over cases), one per case (over classes), and
 * the overall total.
 */
export function countDetections(
  table: readonly (readonly Detection[])[],
  classNames: readonly string[],
): { perClass: (DetectionCounts & { name: string })[]; perCase: DetectionCounts[]; total: DetectionCounts } {
  const K = classNames.length;
  table.forEach((row, i) => {
    if (row.length !== K) {
      throw new Error(
        `countDetections: case ${i} has ${row.length} outcomes but there are ${K} classes (${classNames.join(", ")}); give one outcome per class`,
      );
    }
  });
  const perClass = classNames.map((name) => ({ name, ...emptyCounts() }));
  const perCase = table.map(() => emptyCounts());
  const total = emptyCounts();
  table.forEach((row, i) =>
    row.forEach((d, k) => {
      add(perClass[k], d);
      add(perCase[i], d);
      add(total, d);
    }),
  );
  return { perClass, perCase, total };
}

/** "found 5 of 8, missed 3, 1 false positive" (the short form a table cell or a log line needs). */
export function formatDetections(c: DetectionCounts): string {
  const fp = c.falsePositive === 1 ? "1 false positive" : `${c.falsePositive} false positives`;
  return `found ${c.predicted} of ${c.present}, missed ${c.missed}, ${fp}`;
}

/** A mean over the defined (non-NaN) values, with how many were undefined. */
export interface MeanDefined {
  /** Mean of the non-NaN values; NaN when there are none. */
  mean: number;
  defined: number;
  undefined: number;
}

/** Mean of the non-NaN values and the count of NaN ones (Infinity counts as defined and makes the mean Infinity). */
export function meanDefined(values: ArrayLike<number>): MeanDefined {
  let s = 0,
    n = 0,
    u = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isNaN(v)) u++;
    else {
      s += v;
      n++;
    }
  }
  return { mean: n ? s / n : NaN, defined: n, undefined: u };
}

/** "61.20 (3 of 8 undefined)", or just the number when every value was defined; "n/a (all 8 undefined)" when none. */
export function formatMeanDefined(m: MeanDefined, digits = 2): string {
  const n = m.defined + m.undefined;
  if (m.defined === 0) return `n/a (all ${n} undefined)`;
  const v = m.mean.toFixed(digits);
  return m.undefined === 0 ? v : `${v} (${m.undefined} of ${n} undefined)`;
}

/** The kit's HD95 penalty for a missed or false-positive structure: the diagonal of the volume in mm. */
export function hd95MissPenalty(shape: Vec3, spacing: Vec3): number {
  const ok = (a: unknown, positiveInt: boolean) =>
    Array.isArray(a) &&
    a.length === 3 &&
    a.every((x) => typeof x === "number" && x > 0 && Number.isFinite(x) && (!positiveInt || Number.isInteger(x)));
  if (!ok(shape, true) || !ok(spacing, false)) {
    throw new Error(
      `hd95MissPenalty: shape must be three positive integers and spacing three positive mm sizes, got shape ${JSON.stringify(shape)} and spacing ${JSON.stringify(spacing)}`,
    );
  }
  return Math.hypot(shape[0] * spacing[0], shape[1] * spacing[1], shape[2] * spacing[2]);
}

/**
 * HD95 values with the kit's penalty filled in: where the outcome is "missed" or "falsePositive" the value becomes
 * `penalty` (whatever it was); "absent" becomes NaN; "predicted" keeps its value. One outcome per value.
 */
export function penaliseMisses(values: ArrayLike<number>, outcomes: readonly Detection[], penalty: number): number[] {
  if (values.length !== outcomes.length) {
    throw new Error(`penaliseMisses: ${values.length} values but ${outcomes.length} outcomes; give one per class`);
  }
  if (!(penalty > 0 && Number.isFinite(penalty))) {
    throw new Error(`penaliseMisses: penalty must be a positive number of mm (e.g. hd95MissPenalty), got ${penalty}`);
  }
  return outcomes.map((d, k) => (d === "predicted" ? values[k] : d === "absent" ? NaN : penalty));
}
