// What the numbers of a study report mean, in sentences printed under its tables (Markdown and HTML alike): which
// HD95 definition and miss convention, how organs were counted, which interval method and what it covers at small n,
// the unit of the paired tests, whether MAE pretraining was shared by the seeds, and the size of the test split.
import { HD95_DEFINITION_TEXT, Hd95Definition } from "../../metrics/hd95";
import { RunResult } from "../grid";
import { INTERVAL_METHOD_TEXT, IntervalMethod } from "../stats";
import { distinct } from "./groups";

export interface NotesOptions {
  /** The interval method the tables used; default "t". */
  interval?: IntervalMethod;
  /** The initialisation under test and its baseline, for the paired-test sentence; default "mae" and "scratch". */
  a?: string;
  b?: string;
}

function metaOf(r: RunResult, key: string): unknown {
  return (r.meta as Record<string, unknown> | undefined)?.[key];
}

/** The notes for a set of results, one sentence (or two) per item. */
export function studyNotes(results: readonly RunResult[], options: NotesOptions = {}): string[] {
  const notes: string[] = [];
  if (results.length === 0) return notes;
  const defs = distinct(results.map((r) => r.test.hd95?.definition).filter((d): d is Hd95Definition => !!d));
  const legacy = results.filter((r) => !r.test.hd95).length;
  if (defs.length) {
    notes.push(
      `HD95: ${defs.map((d) => HD95_DEFINITION_TEXT[d]).join("; ")}; in mm, per organ and test case. A missed or ` +
        "hallucinated organ scores the volume's diagonal (the largest distance the grid allows) and an organ in " +
        "neither map is left out, so the HD95 means, rankings and verdicts penalise misses. " +
        '"HD95 of found organs" averages only the organs a run found, with the number of undefined (case, organ) ' +
        "values beside it.",
    );
  }
  if (legacy) {
    notes.push(
      `${legacy} run(s) were recorded before HD95 definitions were named: their HD95 is the larger of the two ` +
        "directed 95th percentiles with missed organs left out of the means, and they carry no organ counts; run " +
        "them again for figures comparable with current ones.",
    );
  }
  if (results.some((r) => r.test.detection)) {
    notes.push(
      "Organs: found / present over every run's test cases of a row; missed = in the reference but not predicted " +
        "(Dice 0), FP = predicted where the reference has none (Dice 0).",
    );
  }
  const method = options.interval ?? "t";
  const m = INTERVAL_METHOD_TEXT[method];
  notes.push(
    `95 % CI: ${m.name} over the runs (seeds) of a row; ${m.note}. A row with one run, or with runs that all ` +
      'scored the same, has no interval: "n/a (n = 1)".',
  );
  const a = options.a ?? "mae",
    b = options.b ?? "scratch";
  const tests = distinct(results.map((r) => (metaOf(r, "testCases") as unknown[] | undefined)?.length)).filter(
    (n): n is number => typeof n === "number",
  );
  const cases = (n: number) => `${n} ${n === 1 ? "case" : "cases"}`;
  const perRun = tests.length === 1 ? `${tests[0]} test ${tests[0] === 1 ? "case" : "cases"}` : "its test cases";
  if (results.some((r) => r.init === a) && results.some((r) => r.init === b)) {
    notes.push(
      `Paired tests: the unit is the seed. A pair is the ${a} and ${b} runs with the same model, label fraction and ` +
        `seed, each scored by its mean over ${perRun}; test cases are not separate pairs, since they share one ` +
        "trained model per run.",
    );
  }
  const pre = distinct(
    results.filter((r) => r.init === a).map((r) => String(metaOf(r, "pretraining") ?? "not recorded")),
  );
  if (pre.length) {
    const perSeed = pre.every((p) => p.startsWith("per seed"));
    const shared = pre.every((p) => p.startsWith("shared"));
    const given = pre.every((p) => p === "given checkpoint");
    notes.push(
      perSeed
        ? "MAE pretraining: one per seed (pretraining seed = fine-tuning seed), so the seed-level tests include " +
            "pretraining variance."
        : shared
          ? "MAE pretraining: one pretraining (seed 0) shared by every seed, so the seed-level tests leave out " +
            "pretraining variance: they compare fine-tuning seeds from one pretrained encoder."
          : given
            ? "MAE pretraining: one given encoder checkpoint (the shipped one, when the methods paragraph names it) " +
              "shared by every seed, so the seed-level tests leave out pretraining variance: they compare " +
              "fine-tuning seeds from one pretrained encoder."
            : `MAE pretraining: ${pre.join("; ")}.`,
    );
  }
  const vals = distinct(results.map((r) => (metaOf(r, "valCases") as unknown[] | undefined)?.length)).filter(
    (n): n is number => typeof n === "number",
  );
  if (tests.length === 1) {
    notes.push(
      `Test split: ${cases(tests[0])}, scored on each case's own grid with the final weights of every run; ` +
        `validation curves${vals.length === 1 ? ` use ${vals[0]} other ${vals[0] === 1 ? "case" : "cases"}` : " use the val split"}, never a test case.`,
    );
  }
  return notes;
}
