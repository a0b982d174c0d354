// A study is a grid of cells (model x initialisation x label fraction x seed). Each cell is one training run; how a
// run is trained is not this file's business: runStudy receives it as a function, so the study machinery (ordering,
// resume, the results file) is tested with a fake run and reused for any model.
//
// Results file: JSON lines, one finished cell per line, appended with fsync. A crash can at worst leave the last line
// incomplete; readResults drops such a line with a warning and runStudy cuts it off before appending again. Keys are
// unique: a cell whose key is already in the file is skipped, which is how an interrupted study resumes.
// One process per results file: two runStudy calls on the same file would both run the missing cells.
import * as fs from "fs";
import { appendFileDurable, writeFileAtomic } from "../runtime/files";
import { makeRng, seedFrom, shuffle } from "../runtime/random";
import type { TestScores } from "../metrics/case_scores";

// ---------------------------------------------------------------------------------------------------------------
// Cells

/** One run of a study. `key` identifies it in the results file; the other fields say what to train. */
export interface StudyCell {
  /** Stable id, e.g. "model=nnformer|init=mae|frac=0.25|seed=1" (see cellKey). */
  key: string;
  /** Weight initialisation, e.g. "mae" (pretrained encoder) or "scratch". */
  init: string;
  /** Model name as in the registry, e.g. "nnformer". */
  model: string;
  /** Fraction of the labelled training cases used, in (0, 1]. */
  labelFraction: number;
  /** Seed of the run: label subset, weight init, crops, augmentation. */
  seed: number;
}

/** The axes of a study grid; every combination is one cell. */
export interface StudyGrid {
  inits: string[];
  models: string[];
  labelFractions: number[];
  seeds: number[];
}

/** The key of a cell: "model=…|init=…|frac=…|seed=…". Numbers are written with String(), so 0.25 -> "0.25". */
export function cellKey(cell: Omit<StudyCell, "key">): string {
  return `model=${cell.model}|init=${cell.init}|frac=${cell.labelFraction}|seed=${cell.seed}`;
}

function checkName(kind: string, name: string): void {
  if (typeof name !== "string" || name.length === 0 || /[|=\s]/.test(name)) {
    throw new Error(
      `${kind} ${JSON.stringify(name)} must be a non-empty name without '|', '=' or spaces (it goes into cell keys)`,
    );
  }
}

function checkUnique<T>(kind: string, xs: T[]): void {
  if (!Array.isArray(xs) || xs.length === 0) throw new Error(`expandGrid: ${kind} must be a non-empty list`);
  const seen = new Set<T>();
  for (const x of xs) {
    if (seen.has(x)) throw new Error(`expandGrid: ${kind} lists ${JSON.stringify(x)} twice`);
    seen.add(x);
  }
}

/**
 * Every cell of the grid, in a fixed order: seeds outermost, then label fractions, models, initialisations (each in
 * the order given). Seed-major order means an interrupted study already holds complete, matched comparisons for its
 * first seeds, rather than every seed of one condition and nothing of the other.
 */
export function expandGrid(grid: StudyGrid): StudyCell[] {
  checkUnique("inits", grid.inits);
  checkUnique("models", grid.models);
  checkUnique("labelFractions", grid.labelFractions);
  checkUnique("seeds", grid.seeds);
  for (const i of grid.inits) checkName("init", i);
  for (const m of grid.models) checkName("model", m);
  for (const f of grid.labelFractions) {
    if (!(typeof f === "number" && f > 0 && f <= 1))
      throw new Error(`expandGrid: label fraction ${f} must be in (0, 1]`);
  }
  for (const s of grid.seeds) {
    if (!Number.isSafeInteger(s)) throw new Error(`expandGrid: seed ${s} must be an integer`);
  }
  const cells: StudyCell[] = [];
  for (const seed of grid.seeds) {
    for (const labelFraction of grid.labelFractions) {
      for (const model of grid.models) {
        for (const init of grid.inits) {
          const c = { init, model, labelFraction, seed };
          cells.push({ key: cellKey(c), ...c });
        }
      }
    }
  }
  return cells;
}

// ---------------------------------------------------------------------------------------------------------------
// Label-fraction subsets

/**
 * The labelled training cases a run with `fraction` and `seed` may use: max(1, round(fraction * n)) cases.
 *
 * The ids are sorted, shuffled once with a generator seeded from `seed` alone, and a prefix is taken. So for one seed
 * the subsets are nested (the 10% cases are among the 25% cases, which are among the 50% ones), the result does not
 * depend on the order of `caseIds`, and fraction 1 returns every case. Returned in shuffled (prefix) order.
 * Math.round rather than ceil, so 0.1 * 30 = 3.0000000000000004 gives 3 cases, not 4.
 */
export function selectLabelledSubset(caseIds: readonly string[], fraction: number, seed: number): string[] {
  if (caseIds.length === 0) throw new Error("selectLabelledSubset: no case ids to choose from");
  if (!(typeof fraction === "number" && fraction > 0 && fraction <= 1)) {
    throw new Error(`selectLabelledSubset: fraction ${fraction} must be in (0, 1]`);
  }
  if (!Number.isFinite(seed)) throw new Error(`selectLabelledSubset: seed ${seed} must be a finite number`);
  const sorted = [...caseIds].sort();
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1])
      throw new Error(`selectLabelledSubset: case id ${JSON.stringify(sorted[i])} appears twice`);
  }
  const order = shuffle(makeRng(seedFrom("label-subset", seed)), sorted);
  const count = Math.min(order.length, Math.max(1, Math.round(fraction * order.length)));
  return order.slice(0, count);
}

// ---------------------------------------------------------------------------------------------------------------
// Results

/** One point of the validation curve. */
export interface CurvePoint {
  step: number;
  /** Mean foreground Dice on the validation cases (NaN if not measured). */
  valDice: number;
  /** Training loss at that step (NaN if not recorded). */
  trainLoss: number;
}

/**
 * Test-set metrics of a finished run. NaN where undefined. The four required fields are all a results file from
 * before HD95 definitions were named has (HD95 then: max of the directed percentiles, missed organs left out of the
 * means); current runs record the whole TestScores (metrics/case_scores.ts): perClassHd95 and meanHd95 then charge a
 * missed organ the volume diagonal, and the detection counts and found-only HD95 come with them.
 */
export interface TestMetrics
  extends Partial<Omit<TestScores, "perClassDice" | "perClassHd95" | "meanDice" | "meanHd95">> {
  /** Dice per class, by class name (e.g. "spleen"). */
  perClassDice: Record<string, number>;
  /** 95th percentile Hausdorff distance per class, in mm. */
  perClassHd95: Record<string, number>;
  meanDice: number;
  meanHd95: number;
}

/** JSON null back to NaN, deeply (results files write NaN as null). */
function nullToNaN(v: unknown): unknown {
  if (v === null) return NaN;
  if (Array.isArray(v)) return v.map(nullToNaN);
  if (typeof v === "object") return Object.fromEntries(Object.entries(v as object).map(([k, x]) => [k, nullToNaN(x)]));
  return v;
}

/** What one cell produced; one line of the results file. */
export interface RunResult {
  /** The cell's key. */
  key: string;
  init: string;
  model: string;
  labelFraction: number;
  seed: number;
  /** tfjs backend the run used ("tensorflow", "wasm", ...). */
  backend: string;
  /** Wall-clock seconds of the whole run. */
  wallTimeS: number;
  /** Optimiser steps taken. */
  steps: number;
  /** Validation curve, in step order. */
  curve: CurvePoint[];
  test: TestMetrics;
  /** The labelled cases the run trained on (for the record), if the runner reports them. */
  labelledCases?: string[];
  /** Anything else worth keeping (config, versions, checkpoint path); free-form JSON. */
  meta?: Record<string, unknown>;
}

type Json = Record<string, unknown>;

function fail(where: string, field: string, want: string, got: unknown): never {
  const shown = got === undefined ? "nothing" : JSON.stringify(got)?.slice(0, 60);
  throw new Error(`${where}: field "${field}" should be ${want}, got ${shown}`);
}

function str(o: Json, field: string, where: string): string {
  const v = o[field];
  if (typeof v !== "string" || v.length === 0) fail(where, field, "a non-empty string", v);
  return v;
}

function finite(o: Json, field: string, where: string, prefix = ""): number {
  const v = o[field];
  if (typeof v !== "number" || !Number.isFinite(v)) fail(where, prefix + field, "a finite number", v);
  return v;
}

/** A metric: a number, or null (JSON has no NaN or Infinity; JSON.stringify writes them as null), read back as NaN. */
function metric(o: Json, field: string, where: string, prefix = ""): number {
  const v = o[field];
  if (v === null) return NaN;
  if (typeof v !== "number") fail(where, prefix + field, "a number or null", v);
  return v;
}

function metricMap(o: Json, field: string, where: string, prefix: string): Record<string, number> {
  const v = o[field];
  if (typeof v !== "object" || v === null || Array.isArray(v))
    fail(where, prefix + field, "an object {class: number}", v);
  const out: Record<string, number> = {};
  for (const k of Object.keys(v)) out[k] = metric(v as Json, k, where, `${prefix}${field}.`);
  return out;
}

/**
 * Checks the shape of a parsed result and returns it typed (null metrics become NaN). Unknown top-level fields are
 * kept as they are, so results written by a newer runner still read. `where` starts every error message.
 */
export function validateRunResult(x: unknown, where = "result"): RunResult {
  if (typeof x !== "object" || x === null || Array.isArray(x)) throw new Error(`${where}: expected a JSON object`);
  const o = x as Json;
  const key = str(o, "key", where);
  const init = str(o, "init", where);
  const model = str(o, "model", where);
  const labelFraction = finite(o, "labelFraction", where);
  const seed = finite(o, "seed", where);
  const backend = str(o, "backend", where);
  const wallTimeS = finite(o, "wallTimeS", where);
  const steps = finite(o, "steps", where);
  if (!Array.isArray(o.curve)) fail(where, "curve", "a list of {step, valDice, trainLoss}", o.curve);
  const curve = (o.curve as unknown[]).map((p, i) => {
    if (typeof p !== "object" || p === null) fail(where, `curve[${i}]`, "an object {step, valDice, trainLoss}", p);
    const q = p as Json;
    const pre = `curve[${i}].`;
    return {
      step: finite(q, "step", where, pre),
      valDice: metric(q, "valDice", where, pre),
      trainLoss: metric(q, "trainLoss", where, pre),
    };
  });
  const t = o.test;
  if (typeof t !== "object" || t === null || Array.isArray(t)) fail(where, "test", "an object", t);
  const tj = t as Json;
  const test: TestMetrics = {
    ...(nullToNaN(tj) as object),
    perClassDice: metricMap(tj, "perClassDice", where, "test."),
    perClassHd95: metricMap(tj, "perClassHd95", where, "test."),
    meanDice: metric(tj, "meanDice", where, "test."),
    meanHd95: metric(tj, "meanHd95", where, "test."),
  };
  const out: RunResult = {
    ...(o as object),
    key,
    init,
    model,
    labelFraction,
    seed,
    backend,
    wallTimeS,
    steps,
    curve,
    test,
  };
  if (o.labelledCases !== undefined) {
    if (!Array.isArray(o.labelledCases) || !o.labelledCases.every((c) => typeof c === "string")) {
      fail(where, "labelledCases", "a list of case ids", o.labelledCases);
    }
  }
  if (o.meta !== undefined && (typeof o.meta !== "object" || o.meta === null || Array.isArray(o.meta))) {
    fail(where, "meta", "an object", o.meta);
  }
  return out;
}

/** A results file, parsed. */
export interface ResultsFileContents {
  results: RunResult[];
  /** Things that were tolerated (a dropped incomplete last line). */
  warnings: string[];
  /** The text of the complete lines, each ending in "\n"; what the file should hold after a repair. */
  cleanText: string;
  /** True when the file text differs from cleanText (an incomplete last line, or no final newline). */
  needsRepair: boolean;
}

/**
 * Parses results-file text. A line that is not JSON throws (naming file and line) unless it is the last non-blank
 * line, which an interrupted write can leave incomplete: that one is dropped with a warning. A complete line with the
 * wrong fields, or a key seen before, always throws.
 */
export function parseResults(text: string, file = "results"): ResultsFileContents {
  const lines = text.split("\n");
  let last = lines.length - 1;
  while (last >= 0 && lines[last].trim() === "") last--;
  const results: RunResult[] = [];
  const warnings: string[] = [];
  const kept: string[] = [];
  const seenAt = new Map<string, number>();
  for (let i = 0; i <= last; i++) {
    const line = lines[i].replace(/\r$/, "");
    if (line.trim() === "") continue;
    const where = `${file}:${i + 1}`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (e) {
      if (i === last) {
        const shown = line.length > 60 ? `${line.slice(0, 60)}…` : line;
        warnings.push(
          `${where}: dropped an incomplete last line (${line.length} chars, probably an interrupted write): ${shown}`,
        );
        continue;
      }
      throw new Error(
        `${where}: not valid JSON (${(e as Error).message}). Only the last line may be incomplete; ` +
          `repair or delete line ${i + 1} (its cell then runs again).`,
      );
    }
    const r = validateRunResult(parsed, where);
    const before = seenAt.get(r.key);
    if (before !== undefined) {
      throw new Error(`${where}: key ${r.key} was already recorded on line ${before}; delete one of the two lines`);
    }
    seenAt.set(r.key, i + 1);
    results.push(r);
    kept.push(line);
  }
  const cleanText = kept.map((l) => `${l}\n`).join("");
  return { results, warnings, cleanText, needsRepair: cleanText !== text };
}

export interface ReadResultsOptions {
  /** Receives each tolerated problem; default console.warn. */
  onWarning?: (message: string) => void;
}

/** The results in a JSON-lines file, in file order; see parseResults for what is tolerated. */
export function readResults(file: string, options: ReadResultsOptions = {}): RunResult[] {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`cannot read results file ${file}: ${(e as Error).message}`);
  }
  const parsed = parseResults(text, file);
  const warn = options.onWarning ?? ((m: string) => console.warn(m));
  for (const w of parsed.warnings) warn(w);
  return parsed.results;
}

/** One result as one line of JSON (NaN and Infinity become null), newline included. */
export function resultLine(result: RunResult): string {
  const line = JSON.stringify(result);
  if (line.includes("\n")) throw new Error("internal: JSON.stringify produced a newline"); // never: no indent given
  return `${line}\n`;
}

// ---------------------------------------------------------------------------------------------------------------
// Running a study

/** Where a cell stands within the run of a study. */
export interface CellProgress {
  /** Position of the cell in the list given to runStudy (0-based). */
  index: number;
  /** Number of cells in that list. */
  total: number;
  /** Cells run so far in this call (including this one on end). */
  ranSoFar: number;
  /** Cells this call has to run (total minus those already in the file). */
  toRun: number;
}

export interface RunStudyOptions {
  /** JSON-lines file: read to skip finished cells, appended to after each cell. */
  resultsFile: string;
  /** Called before a cell runs. */
  onCellStart?: (cell: StudyCell, progress: CellProgress) => void;
  /** Called after a cell's result is safely in the file; `seconds` is measured here, around runCell. */
  onCellEnd?: (result: RunResult, progress: CellProgress & { seconds: number }) => void;
  /** Called for a cell whose result was already in the file. */
  onCellSkip?: (cell: StudyCell, previous: RunResult) => void;
  /** Receives tolerated problems with the results file; default console.warn. */
  onWarning?: (message: string) => void;
}

/** What runStudy did. */
export interface StudyOutcome {
  /** A result for every cell, in cell order: those found in the file and those run now. */
  results: RunResult[];
  /** Keys of the cells run by this call, in order. */
  ran: string[];
  /** Keys of the cells skipped because the file had them. */
  skipped: string[];
}

/** True when a result row is the one of this cell (key and every grid coordinate). */
export function sameCell(r: RunResult, c: StudyCell): boolean {
  return (
    r.key === c.key &&
    r.init === c.init &&
    r.model === c.model &&
    r.labelFraction === c.labelFraction &&
    r.seed === c.seed
  );
}

function describeMismatch(r: RunResult, c: StudyCell): string {
  return (
    `cell ${c.key} (init ${c.init}, model ${c.model}, fraction ${c.labelFraction}, seed ${c.seed}) but the result ` +
    `says key ${r.key} (init ${r.init}, model ${r.model}, fraction ${r.labelFraction}, seed ${r.seed})`
  );
}

/**
 * Runs every cell whose key is not yet in `resultsFile`, one after the other, and appends each result as one JSON
 * line as soon as it is done. If runCell throws, the study stops with that error (cause attached) and the finished
 * cells stay recorded; calling runStudy again with the same cells resumes. An incomplete last line left by a crash is
 * cut off first (atomically). Results in the file for keys not in `cells` are kept in the file and ignored here.
 */
export async function runStudy(
  cells: StudyCell[],
  runCell: (cell: StudyCell) => Promise<RunResult>,
  options: RunStudyOptions,
): Promise<StudyOutcome> {
  const file = options.resultsFile;
  const warn = options.onWarning ?? ((m: string) => console.warn(m));
  const keys = new Set<string>();
  for (const c of cells) {
    if (keys.has(c.key)) throw new Error(`runStudy: cell key ${c.key} appears twice in the cell list`);
    keys.add(c.key);
  }

  const done = new Map<string, RunResult>();
  if (fs.existsSync(file)) {
    const parsed = parseResults(fs.readFileSync(file, "utf8"), file);
    for (const w of parsed.warnings) warn(w);
    if (parsed.needsRepair) writeFileAtomic(file, parsed.cleanText); // before appending, so no line is glued on
    for (const r of parsed.results) done.set(r.key, r);
  }
  for (const c of cells) {
    const r = done.get(c.key);
    if (r !== undefined && !sameCell(r, c))
      throw new Error(`${file}: ${describeMismatch(r, c)}; is this the results file of another grid?`);
  }

  const toRun = cells.filter((c) => !done.has(c.key)).length;
  const outcome: StudyOutcome = { results: [], ran: [], skipped: [] };
  for (let index = 0; index < cells.length; index++) {
    const cell = cells[index];
    const previous = done.get(cell.key);
    if (previous !== undefined) {
      outcome.skipped.push(cell.key);
      outcome.results.push(previous);
      options.onCellSkip?.(cell, previous);
      continue;
    }
    const progress: CellProgress = { index, total: cells.length, ranSoFar: outcome.ran.length, toRun };
    options.onCellStart?.(cell, progress);
    const t0 = Date.now();
    let raw: RunResult;
    try {
      raw = await runCell(cell);
    } catch (e) {
      const err = new Error(`cell ${cell.key} failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });
      throw err;
    }
    // Round-trip through JSON, so the result returned here is exactly what a later read of the file gives.
    const line = resultLine(raw);
    const result = validateRunResult(JSON.parse(line), `result of cell ${cell.key}`);
    if (!sameCell(result, cell)) throw new Error(`runStudy: ${describeMismatch(result, cell)}`);
    appendFileDurable(file, line); // whole line or nothing: a failed append is cut off again
    done.set(cell.key, result);
    outcome.ran.push(cell.key);
    outcome.results.push(result);
    options.onCellEnd?.(result, { ...progress, ranSoFar: outcome.ran.length, seconds: (Date.now() - t0) / 1000 });
  }
  return outcome;
}
