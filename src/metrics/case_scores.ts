// What a study run records about its test cases, in the kit convention (metrics/detection.ts explains it):
//   Dice per class and case (0 for a missed or hallucinated organ, undefined when the organ is in neither map);
//   HD95 per class and case in mm by a named definition (medpy or monai), a missed or hallucinated organ charged the
//     volume's diagonal; this penalised figure is the one means, rankings and verdicts use;
//   HD95 over the found organs only, with the number of undefined values next to every mean of it;
//   the detection outcome of every (case, class) and their counts per class and in total.
// Means follow nnFormer: over cases for each class, then over classes (undefined values skipped and counted).
import type { Vec3 } from "../runtime/math";
import { ClassSpec, LabelMap, diceFromCounts, nanMean, overlapCounts } from "./dice";
import { Hd95Definition, hd95Scores } from "./hd95";
import {
  Detection,
  DetectionCounts,
  countDetections,
  detectionOf,
  hd95MissPenalty,
  meanDefined,
  penaliseMisses,
} from "./detection";

/** One test case scored in the kit convention. */
export interface ScoredCase {
  caseId: string;
  /** Dice per class (NaN when absent from both maps). */
  dice: number[];
  /** HD95 in mm per class, missed / false positive = `penalty`, absent = NaN. */
  hd95: number[];
  /** HD95 in mm per class where the class was found (in both maps), NaN otherwise. */
  hd95Found: number[];
  outcomes: Detection[];
  /** The miss penalty of this case: its volume diagonal in mm. */
  penalty: number;
}

/** Scores one case: Dice, HD95 (penalised and found-only) and the detection outcome per class. */
export function scoreCase(
  caseId: string,
  pred: LabelMap,
  ref: LabelMap,
  classes: readonly ClassSpec[],
  shape: Vec3,
  spacing: Vec3,
  definition: Hd95Definition,
): ScoredCase {
  const counts = overlapCounts(pred, ref, classes);
  const outcomes = counts.map(detectionOf);
  const hd95Found = hd95Scores(pred, ref, classes, shape, { definition, units: "mm", spacing });
  const penalty = hd95MissPenalty(shape, spacing);
  return {
    caseId,
    dice: counts.map((c) => diceFromCounts(c, "nan")),
    hd95: penaliseMisses(hd95Found, outcomes, penalty),
    hd95Found,
    outcomes,
    penalty,
  };
}

/** One letter per outcome, for compact records: P predicted, M missed, F false positive, A absent. */
export const OUTCOME_CODE: Record<Detection, string> = { predicted: "P", missed: "M", falsePositive: "F", absent: "A" };

/** The test-set summary a run records (RunResult.test). */
export interface TestScores {
  /** Mean over cases of each class's Dice (absent cases skipped). */
  perClassDice: Record<string, number>;
  /** Mean over cases of each class's penalised HD95 in mm (absent cases skipped). */
  perClassHd95: Record<string, number>;
  /** Mean over the cases where the class was found; NaN when it never was. */
  perClassHd95Found: Record<string, number>;
  /** Per class: cases where its found-only HD95 is undefined (missed + false positive). */
  perClassHd95Undefined: Record<string, number>;
  perClassDetection: Record<string, DetectionCounts>;
  meanDice: number;
  /** Mean over classes of perClassHd95: the HD95 figure means, rankings and verdicts use. */
  meanHd95: number;
  /** Mean over classes of perClassHd95Found (classes never found skipped; see hd95Undefined). */
  meanHd95Found: number;
  /** (case, class) pairs whose found-only HD95 is undefined, over all classes. */
  hd95Undefined: number;
  /** (case, class) pairs that have a found-only HD95 or are undefined (absent pairs excluded). */
  hd95Pairs: number;
  detection: DetectionCounts;
  /** How HD95 was computed, for the report. */
  hd95: { definition: Hd95Definition; units: "mm"; missPenalty: "volume diagonal" };
  /** Per case: Dice and penalised HD95 per class, and the outcomes as a string of OUTCOME_CODE letters. */
  perCase: { caseId: string; dice: number[]; hd95: number[]; outcomes: string }[];
}

/** Summarises scored cases (all scored with the same classes and definition) into what a run records. */
export function summarizeScoredCases(
  cases: readonly ScoredCase[],
  classNames: readonly string[],
  definition: Hd95Definition,
): TestScores {
  const K = classNames.length;
  cases.forEach((c) => {
    if (c.dice.length !== K || c.hd95.length !== K || c.outcomes.length !== K) {
      throw new Error(
        `summarizeScoredCases: case ${c.caseId} has ${c.dice.length} scores but there are ${K} classes (${classNames.join(", ")})`,
      );
    }
  });
  const col = (k: number, f: (c: ScoredCase) => number[]) => cases.map((c) => f(c)[k]);
  const perClassDice: Record<string, number> = {};
  const perClassHd95: Record<string, number> = {};
  const perClassHd95Found: Record<string, number> = {};
  const perClassHd95Undefined: Record<string, number> = {};
  const perClassDetection: Record<string, DetectionCounts> = {};
  const det = countDetections(
    cases.map((c) => c.outcomes),
    classNames,
  );
  let undef = 0,
    pairs = 0;
  classNames.forEach((name, k) => {
    perClassDice[name] = nanMean(col(k, (c) => c.dice));
    perClassHd95[name] = nanMean(col(k, (c) => c.hd95));
    const found = meanDefined(cases.filter((c) => c.outcomes[k] !== "absent").map((c) => c.hd95Found[k]));
    perClassHd95Found[name] = found.mean;
    perClassHd95Undefined[name] = found.undefined;
    undef += found.undefined;
    pairs += found.defined + found.undefined;
    const { name: _n, ...counts } = det.perClass[k];
    perClassDetection[name] = counts;
  });
  return {
    perClassDice,
    perClassHd95,
    perClassHd95Found,
    perClassHd95Undefined,
    perClassDetection,
    meanDice: nanMean(Object.values(perClassDice)),
    meanHd95: nanMean(Object.values(perClassHd95)),
    meanHd95Found: nanMean(Object.values(perClassHd95Found)),
    hd95Undefined: undef,
    hd95Pairs: pairs,
    detection: det.total,
    hd95: { definition, units: "mm", missPenalty: "volume diagonal" },
    perCase: cases.map((c) => ({
      caseId: c.caseId,
      dice: c.dice,
      hd95: c.hd95,
      outcomes: c.outcomes.map((o) => OUTCOME_CODE[o]).join(""),
    })),
  };
}
