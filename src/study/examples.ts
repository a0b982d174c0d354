// Example segmentations of a finished study: the first test case predicted by the scratch and the MAE run of the
// largest label fraction (first seed, final weights), one axial slice through the most labelled voxels, drawn as
// image | ground truth | scratch | MAE. The figure is stored as examples.json in the study folder, so the report
// (also one rebuilt later from results.jsonl) shows it; when a checkpoint is missing the file records why instead.
import * as fs from "fs";
import * as path from "path";
import { Predictor } from "../infer/predict";
import { Figure } from "../plots/plotly";
import { sliceGrid } from "../plots/volume_views";
import { writeFileAtomic } from "../runtime/files";
import { runFolder } from "../train/recipe";
import type { Volume } from "../data/volume";
import type { RunResult } from "./grid";

export const EXAMPLES_FILE = "examples.json";
const FORMAT = "mae-nnformer-examples-v1";

/** What examples.json holds: the figure and where it came from, or why there is none. */
export interface ExamplesRecord {
  format: typeof FORMAT;
  /** Why no figure was drawn (a missing checkpoint, no pair of runs, ...); absent when there is a figure. */
  skipped?: string;
  caseId?: string;
  model?: string;
  labelFraction?: number;
  seed?: number;
  /** The run keys drawn, baseline first: [scratch, MAE]. */
  cells?: string[];
  /** Axial (first voxel axis) slice index drawn. */
  slice?: number;
  figure?: Figure;
}

/** A test case with its label map on its own grid. */
export interface ExampleCase {
  id: string;
  image: Volume;
  label: Volume | null;
  /** Label names by value (background first), when the runs' settings do not record them. */
  labelNames?: string[];
}

export interface ExampleOptions {
  /** The initialisation under test and the baseline; default "mae" and "scratch". */
  a?: string;
  b?: string;
  /** Display names, e.g. {mae: "MAE"}. */
  names?: Record<string, string>;
}

/** The pair of runs to draw: largest label fraction, first seed both arms ran, first model with both arms. */
export function pickExampleRuns(
  results: readonly RunResult[],
  options: ExampleOptions = {},
): { a: RunResult; b: RunResult } | string {
  const a = options.a ?? "mae",
    b = options.b ?? "scratch";
  const candidates = results
    .filter((r) => r.init === a)
    .map((ra) => ({
      ra,
      rb: results.find(
        (r) => r.init === b && r.model === ra.model && r.labelFraction === ra.labelFraction && r.seed === ra.seed,
      ),
    }))
    .filter((p): p is { ra: RunResult; rb: RunResult } => p.rb !== undefined);
  if (candidates.length === 0) return `no ${a} and ${b} runs with the same model, label fraction and seed`;
  const top = Math.max(...candidates.map((p) => p.ra.labelFraction));
  const atTop = candidates.filter((p) => p.ra.labelFraction === top);
  const seed = Math.min(...atTop.map((p) => p.ra.seed));
  const pick = atTop.find((p) => p.ra.seed === seed)!;
  return { a: pick.ra, b: pick.rb };
}

/** The index along the first voxel axis (axial) with the most labelled (> 0) voxels; the first such slice on ties. */
export function mostLabelledSlice(label: Volume): number {
  const [D, H, W] = label.shape;
  const C = label.channels;
  let best = 0,
    bestCount = -1;
  for (let d = 0; d < D; d++) {
    let count = 0;
    for (let i = d * H * W; i < (d + 1) * H * W; i++) if (label.data[i * C] > 0) count++;
    if (count > bestCount) {
      best = d;
      bestCount = count;
    }
  }
  return best;
}

function labelVolume(like: Volume, data: Uint8Array | Uint16Array, source: string): Volume {
  return { data, shape: like.shape, channels: 1, spacing: like.spacing, affine: like.affine, source };
}

function settingsOf(r: RunResult): Record<string, any> | undefined {
  return (r.meta as Record<string, any> | undefined)?.settings;
}

/**
 * Predicts `testCase` with the final weights (runs/<cell>/latest.safetensors) of both picked runs and draws the
 * four panels. Returns a record with `skipped` (and no figure) when the runs, a checkpoint or the case is missing.
 * One case, two sliding-window predictions; every model is disposed.
 */
export async function exampleSegmentations(
  results: readonly RunResult[],
  out: string,
  testCase: ExampleCase | undefined,
  options: ExampleOptions = {},
): Promise<ExamplesRecord> {
  const skip = (why: string): ExamplesRecord => ({ format: FORMAT, skipped: why });
  const pick = pickExampleRuns(results, options);
  if (typeof pick === "string") return skip(pick);
  const runs = [pick.b, pick.a];
  const files = runs.map((r) => path.join(runFolder(out, r.key), "latest.safetensors"));
  const missing = files.filter((f) => !fs.existsSync(f));
  if (missing.length)
    return skip(
      `no final weights for ${missing.map((f) => path.relative(out, f)).join(" and ")} in this study folder ` +
        "(results merged from elsewhere, or run folders removed); run the study here to draw them",
    );
  if (!testCase) return skip("the study's test cases could not be loaded");
  const testIds = (pick.a.meta as Record<string, unknown> | undefined)?.testCases;
  if (Array.isArray(testIds) && testIds.length && testIds[0] !== testCase.id)
    return skip(`the first test case of the runs is ${String(testIds[0])}, but the data given is ${testCase.id}`);
  if (!testCase.label) return skip(`test case ${testCase.id} has no label map`);
  const label = testCase.label;
  const ev = settingsOf(pick.a)?.eval ?? {};
  const predictions: Volume[] = [];
  for (let i = 0; i < runs.length; i++) {
    let p: Predictor;
    try {
      p = Predictor.load(files[i]);
    } catch (e) {
      throw new Error(`${path.relative(out, files[i])} does not load: ${(e as Error).message}`);
    }
    try {
      const labels = await p.predict(testCase.image, { overlap: ev.overlap, mirror: ev.mirror });
      predictions.push(labelVolume(label, labels, `${runs[i].key} prediction of ${testCase.id}`));
    } finally {
      p.dispose();
    }
  }
  const slice = mostLabelledSlice(label);
  const labelNames: string[] | undefined = settingsOf(pick.a)?.data?.labelNames ?? testCase.labelNames;
  const name = (init: string) => options.names?.[init] ?? init;
  const figure = sliceGrid(
    [
      { title: "image", image: testCase.image },
      { title: "ground truth", image: testCase.image, label },
      { title: name(pick.b.init), image: testCase.image, label: predictions[0] },
      { title: name(pick.a.init), image: testCase.image, label: predictions[1] },
    ],
    "axial",
    slice,
    {
      labelNames,
      columns: 4,
      title:
        `Test case ${testCase.id}, ${pick.a.model}, ${Number((pick.a.labelFraction * 100).toPrecision(3))}% labels, ` +
        `seed ${pick.a.seed}, final weights`,
    },
  );
  return {
    format: FORMAT,
    caseId: testCase.id,
    model: pick.a.model,
    labelFraction: pick.a.labelFraction,
    seed: pick.a.seed,
    cells: runs.map((r) => r.key),
    slice,
    figure,
  };
}

/**
 * Draws the example segmentations (exampleSegmentations) and writes them to <out>/examples.json atomically; a failure
 * to load the test case or to draw (e.g. a checkpoint that does not load) is recorded as the reason for skipping, so
 * a finished study always gets its report. Returns what was written.
 */
export async function writeExampleSegmentations(
  results: readonly RunResult[],
  out: string,
  loadTestCase: () => Promise<ExampleCase | undefined>,
  options: ExampleOptions = {},
): Promise<ExamplesRecord> {
  let record: ExamplesRecord | undefined;
  const pick = pickExampleRuns(results, options);
  if (typeof pick === "string") record = { format: FORMAT, skipped: pick };
  else {
    let testCase: ExampleCase | undefined;
    try {
      testCase = await loadTestCase();
    } catch (e) {
      record = { format: FORMAT, skipped: `the test case could not be loaded: ${(e as Error).message}` };
    }
    if (record === undefined) {
      try {
        record = await exampleSegmentations(results, out, testCase, options);
      } catch (e) {
        // the study's results are complete by now: a figure that cannot be drawn is reported, never fatal
        record = { format: FORMAT, skipped: `drawing failed: ${(e as Error).message}` };
      }
    }
  }
  writeFileAtomic(path.join(out, EXAMPLES_FILE), JSON.stringify(record) + "\n");
  return record;
}

/**
 * The example figure of a study folder for its report, or a sentence saying why there is none: examples.json absent,
 * unreadable, or drawn from runs that are not among `results` (a stale file).
 */
export function readExamples(out: string, results: readonly RunResult[]): { figure?: Figure; note: string } {
  const file = path.join(out, EXAMPLES_FILE);
  if (!fs.existsSync(file))
    return { note: `No example segmentations: ${EXAMPLES_FILE} is absent (the study run draws it after all cells).` };
  let rec: ExamplesRecord;
  try {
    rec = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    return { note: `No example segmentations: ${file} is not valid JSON (${(e as Error).message}).` };
  }
  if (rec?.format !== FORMAT) return { note: `No example segmentations: ${file} is not a ${FORMAT} file.` };
  if (rec.skipped) return { note: `Example segmentations skipped: ${rec.skipped}.` };
  const keys = new Set(results.map((r) => r.key));
  if (!rec.figure || !rec.cells || rec.cells.some((k) => !keys.has(k)))
    return { note: `No example segmentations: ${file} was drawn from runs that are not in these results.` };
  return {
    figure: rec.figure,
    note:
      `Axial slice ${rec.slice} (the one with the most labelled voxels) of test case ${rec.caseId}, predicted by ` +
      `sliding window on the case's own grid with each run's final weights (${rec.cells.join("; ")}); colours are ` +
      "fixed per organ (legend).",
  };
}
