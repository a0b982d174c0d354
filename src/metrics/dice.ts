// Dice similarity coefficient per class on label maps: Dice = 2|P ∩ G| / (|P| + |G|) (docs/nnformer.md §5).
// Plain loops over typed arrays, no tfjs: metrics run on whole original-resolution cases after inference.
//
// Empty structures. When a class is absent from both prediction and reference the ratio is 0/0. We return NaN by
// default so that means skip the case (STYLE "Tests"); the official nnFormer evaluation counts it as a perfect 1, which
// `{ bothEmpty: 1 }` reproduces. Present in one and absent in the other gives 0 in both conventions.

/** A label map: integer class values, one per voxel (any typed array or number[]). */
export type LabelMap = ArrayLike<number>;

/** A class to score: one label value, or a region given as the union of labels (BraTS: TC = [2, 3], WT = [1, 2, 3]). */
export type ClassSpec = number | readonly number[];

export interface DiceOptions {
  /** Value when the class is absent from both maps: "nan" (default, skipped by means) or 1 (official nnFormer). */
  bothEmpty?: "nan" | 1;
}

/** Voxel counts of one class: in the prediction, in the reference, and in both. */
export interface OverlapCounts {
  pred: number;
  ref: number;
  intersection: number;
}

/** The label values a ClassSpec stands for. */
export function classLabels(spec: ClassSpec): number[] {
  const labels = typeof spec === "number" ? [spec] : Array.from(spec);
  if (labels.length === 0 || !labels.every((v) => Number.isInteger(v))) {
    throw new Error(
      `class ${JSON.stringify(spec)} must be an integer label or a non-empty list of integer labels, e.g. 1 or [2, 3]`,
    );
  }
  return labels;
}

/** A short name for a ClassSpec: "3" or "2+3". */
export function className(spec: ClassSpec): string {
  return classLabels(spec).join("+");
}

function checkPair(fn: string, pred: LabelMap, ref: LabelMap): void {
  if (!pred || !ref || typeof pred.length !== "number" || typeof ref.length !== "number") {
    throw new Error(`${fn}: pred and ref must be label arrays (typed arrays of class values)`);
  }
  if (pred.length !== ref.length) {
    throw new Error(
      `${fn}: pred has ${pred.length} voxels but ref has ${ref.length}; both must be on the same grid (resample or uncrop the prediction first)`,
    );
  }
}

/**
 * Per-class overlap counts in one pass over the volume, via a joint (pred, ref) label histogram. Regions (several labels
 * per class) are sums over that histogram, so BraTS-style overlapping regions cost nothing extra.
 */
export function overlapCounts(pred: LabelMap, ref: LabelMap, classes: readonly ClassSpec[]): OverlapCounts[] {
  const fn = "overlapCounts";
  checkPair(fn, pred, ref);
  const n = pred.length;
  let lo = Infinity,
    hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const p = pred[i],
      r = ref[i];
    if (p < lo) lo = p;
    if (p > hi) hi = p;
    if (r < lo) lo = r;
    if (r > hi) hi = r;
  }
  const specs = classes.map(classLabels);
  if (n === 0) return specs.map(() => ({ pred: 0, ref: 0, intersection: 0 }));
  if (!Number.isInteger(lo) || !Number.isInteger(hi)) {
    // NaN fails both comparisons above and leaves lo/hi infinite; fractions fail the integer check
    for (let i = 0; i < n; i++) {
      for (const [name, a] of [
        ["pred", pred],
        ["ref", ref],
      ] as const) {
        if (!Number.isInteger(a[i])) {
          throw new Error(
            `${fn}: ${name}[${i}] = ${a[i]} is not an integer label; pass a label map (argmax or round the prediction first)`,
          );
        }
      }
    }
  }
  const R = hi - lo + 1;
  // joint[(p - lo) * R + (r - lo)] = number of voxels with prediction p and reference r
  const joint = new Map<number, number>();
  if (R <= 256) {
    const dense = new Float64Array(R * R);
    for (let i = 0; i < n; i++) dense[(pred[i] - lo) * R + (ref[i] - lo)]++;
    dense.forEach((c, k) => {
      if (c) joint.set(k, c);
    });
  } else {
    for (let i = 0; i < n; i++) {
      const k = (pred[i] - lo) * R + (ref[i] - lo);
      joint.set(k, (joint.get(k) ?? 0) + 1);
    }
  }
  return specs.map((labels) => {
    const inClass = new Set(labels.map((v) => v - lo));
    const out: OverlapCounts = { pred: 0, ref: 0, intersection: 0 };
    for (const [k, c] of joint) {
      const pIn = inClass.has(Math.floor(k / R)),
        rIn = inClass.has(k % R);
      if (pIn) out.pred += c;
      if (rIn) out.ref += c;
      if (pIn && rIn) out.intersection += c;
    }
    return out;
  });
}

/** Dice from counts, with the both-empty convention of DiceOptions. */
export function diceFromCounts(c: OverlapCounts, bothEmpty: "nan" | 1 = "nan"): number {
  const denom = c.pred + c.ref;
  if (denom === 0) return bothEmpty === 1 ? 1 : NaN;
  return (2 * c.intersection) / denom;
}

/**
 * Dice per class of a predicted and a reference label map (same grid), in the order of `classes`.
 * Both empty -> NaN (default) or 1 with `{ bothEmpty: 1 }`; exactly one empty -> 0.
 */
export function diceScores(
  pred: LabelMap,
  ref: LabelMap,
  classes: readonly ClassSpec[],
  options: DiceOptions = {},
): number[] {
  const { bothEmpty = "nan" } = options;
  if (bothEmpty !== "nan" && bothEmpty !== 1) {
    throw new Error(
      `diceScores: bothEmpty must be "nan" (skip in means) or 1 (official nnFormer), got ${JSON.stringify(bothEmpty)}`,
    );
  }
  return overlapCounts(pred, ref, classes).map((c) => diceFromCounts(c, bothEmpty));
}

/** Mean of the non-NaN values; NaN when there are none. */
export function nanMean(values: ArrayLike<number>): number {
  let s = 0,
    n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isNaN(v)) {
      s += v;
      n++;
    }
  }
  return n ? s / n : NaN;
}
