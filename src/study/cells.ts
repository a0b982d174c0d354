// Study cells as independent jobs. A cell is fully described by its key and the study folder: the folder holds the
// study's plan (study.json: the profile after every override), so any process can pick a cell up with
//   mae-nnformer cell --study DIR --key KEY          (and `--pretrain MODEL` for the MAE pretraining a cell needs)
// and leaves its result in DIR/cells/<cell>.json (written atomically). Here that process is one of a pool of child
// processes started by the study; a cluster job array can run the same command, one cell per job, and a later
// `mae-nnformer study --out DIR` merges the finished cells.
//
// results.jsonl has one writer: the parent. It appends a cell's line once the cell's file is complete, and on start it
// first merges cell files left by an interrupted run (kill -9) or by other executors, so a rerun resumes where the
// grid stopped; a cell whose process was killed mid-way resumes from its own checkpoint.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { writeFileAtomic } from "../runtime/files";
import { parseResults, resultLine, sameCell, validateRunResult, RunResult, StudyCell } from "./grid";
import { runChild, runPool, RunningTask, ChildMessage, exitWithParent, tellParent } from "./pool";
import { formatSeconds } from "../train/fit";
import type { StudyProfile } from "./profiles";

/** The study's plan, saved in its folder so that any process can run one of its cells. */
export interface StudyPlanFile {
  format: "mae-nnformer-study-v1";
  /** The profile after --config and flags. */
  profile: StudyProfile;
  /** The MAE checkpoint given with --mae-checkpoint, if any (otherwise the study pretrains its own). */
  maeCheckpoint?: string;
  /** Data-parallel shards inside each fine-tuning run (default 1). */
  dataParallel?: number;
}

export const STUDY_PLAN_FILE = "study.json";

/** Writes DIR/study.json (atomically). */
export function saveStudyPlan(out: string, plan: Omit<StudyPlanFile, "format">): void {
  const file: StudyPlanFile = { format: "mae-nnformer-study-v1", ...plan };
  writeFileAtomic(path.join(out, STUDY_PLAN_FILE), JSON.stringify(file, null, 2) + "\n");
}

/** Reads DIR/study.json, with errors that say what to do. */
export function loadStudyPlan(out: string): StudyPlanFile {
  const file = path.join(out, STUDY_PLAN_FILE);
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(
      `${file}: cannot read the study plan (${(e as Error).message}); start the study once with ` +
        `\`mae-nnformer study --out ${out}\` (it writes the plan) before running single cells`,
    );
  }
  const p = parsed as Partial<StudyPlanFile>;
  if (p?.format !== "mae-nnformer-study-v1")
    throw new Error(`${file}: field "format" should be "mae-nnformer-study-v1", got ${JSON.stringify(p?.format)}`);
  if (typeof p.profile !== "object" || p.profile === null || typeof p.profile.name !== "string")
    throw new Error(`${file}: field "profile" should be a study profile object`);
  if (p.maeCheckpoint !== undefined && typeof p.maeCheckpoint !== "string")
    throw new Error(`${file}: field "maeCheckpoint" should be a path, got ${JSON.stringify(p.maeCheckpoint)}`);
  return p as StudyPlanFile;
}

/** The file-safe name of a job (a cell key as for its run folder under runs/; "pretrain:MODEL"). */
export function cellFileName(key: string): string {
  return key.replace(/[|=:]/g, "_");
}

/** What a cell process leaves in DIR/cells/<cell>.json. */
export interface CellRecord {
  format: "mae-nnformer-cell-v1";
  key: string;
  result: RunResult;
  /** Peak resident set size of the process that ran the cell, MiB. */
  peakRssMiB: number;
  /** Wall seconds of the job in its process (module loading, backend start-up and data loading left out). */
  processSeconds: number;
}

export function cellRecordFile(out: string, key: string): string {
  return path.join(out, "cells", `${cellFileName(key)}.json`);
}

/** The record of a finished cell, or null when there is none (yet). Throws on a record that does not parse. */
export function readCellRecord(out: string, key: string): CellRecord | null {
  const file = cellRecordFile(out, key);
  if (!fs.existsSync(file)) return null;
  let r: Partial<CellRecord>;
  try {
    r = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message}); delete it and the cell runs again`);
  }
  if (r.format !== "mae-nnformer-cell-v1" || r.key !== key)
    throw new Error(`${file}: not the record of cell ${key} (format ${r.format}, key ${r.key}); delete it`);
  const result = validateRunResult(r.result, `${file}: result`);
  if (result.key !== key) throw new Error(`${file}: the result is for ${result.key}, not ${key}; delete it`);
  return { ...(r as CellRecord), result };
}

/** A job of the pool: one cell, or the MAE pretraining that "mae" cells of a model wait for. */
export type CellJob = { kind: "cell"; key: string } | { kind: "pretrain"; model: string; seed: number };

export function jobId(job: CellJob): string {
  return job.kind === "cell" ? job.key : `pretrain:${job.model}:seed${job.seed}`;
}

/** Progress a job reports to the pool: units done of total (steps). */
export interface JobProgress {
  kind: "progress";
  done: number;
  total: number;
}

/** Starts a job in another process; the default runs `mae-nnformer cell` (see cellCommandArgs). */
export type JobLauncher = (job: CellJob, out: string, onMessage: (m: ChildMessage) => void) => RunningTask<void>;

/** The CLI arguments that run a job: `cell --study DIR --key KEY` or `cell --study DIR --pretrain MODEL --seed N`. */
export function cellCommandArgs(job: CellJob, out: string): string[] {
  return job.kind === "cell"
    ? ["cell", "--study", out, "--key", job.key]
    : ["cell", "--study", out, "--pretrain", job.model, "--seed", String(job.seed)];
}

/** The CLI's entry module, run by pool children. */
export const CLI_MODULE = path.resolve(__dirname, "..", "cli", `main${path.extname(__filename)}`);

export const forkCli: JobLauncher = (job, out, onMessage) =>
  runChild({
    module: CLI_MODULE,
    args: cellCommandArgs(job, out),
    logFile: path.join(out, "cells", `${cellFileName(jobId(job))}.log`),
    onMessage,
  });

/** Default pool size: the physical cores (logical CPUs / 2 when the CPU reports SMT pairs, else all). */
export function defaultWorkers(): number {
  const logical = os.availableParallelism?.() ?? os.cpus().length;
  let physical = logical;
  try {
    // Linux: count distinct (package, core) pairs
    const info = fs.readFileSync("/proc/cpuinfo", "utf8");
    const cores = new Set<string>();
    let phys = "";
    for (const line of info.split("\n")) {
      const [k, v] = line.split(":").map((s) => s?.trim());
      if (k === "physical id") phys = v;
      if (k === "core id") cores.add(`${phys}/${v}`);
    }
    if (cores.size > 0) physical = Math.min(logical, cores.size);
  } catch {
    // not Linux: keep the logical count
  }
  return Math.max(1, physical);
}

export interface ParallelStudyOptions {
  /** Study folder: results.jsonl, study.json, cells/, runs/, pretrain/. */
  out: string;
  /** The grid, in order (the order of results returned). */
  cells: StudyCell[];
  workers: number;
  /** The MAE pretraining (model, seed) a cell needs first, or undefined. */
  pretrainFor: (cell: StudyCell) => { model: string; seed: number } | undefined;
  launch?: JobLauncher;
  log?: (line: string) => void;
  onWarning?: (message: string) => void;
  /** A live status line on stderr (default when it is a terminal); otherwise a line per start and end. */
  progress?: boolean;
  /**
   * Relative cost of a cell (e.g. its fine-tuning steps): cells start longest first, which shortens the wall time of
   * a pool whose cells differ in length. Results are returned in cell order either way.
   */
  cost?: (cell: StudyCell) => number;
}

/** What a parallel study did. */
export interface ParallelStudyOutcome {
  /** A result for every cell, in cell order. */
  results: RunResult[];
  /** Keys run now (in the order they finished). */
  ran: string[];
  /** Keys already in results.jsonl. */
  skipped: string[];
  /** Keys whose finished cell files were merged into results.jsonl (left by a killed run or other executors). */
  merged: string[];
  /** Peak RSS of each job's process, MiB, by job id. */
  peakRssMiB: Record<string, number>;
}

/** Appends one complete line and fsyncs (only the parent writes results.jsonl). */
function appendLine(file: string, line: string): void {
  const buf = Buffer.from(line, "utf8");
  const fd = fs.openSync(file, "a");
  try {
    let off = 0;
    while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Runs the cells not yet in DIR/results.jsonl on a pool of `workers` processes (DIR/study.json must exist: the
 * children read it). MAE pretraining runs once per model, as a job of its own that the model's "mae" cells wait for;
 * other cells run beside it. Each finished cell is appended to results.jsonl by this process alone.
 */
export async function runStudyInPool(o: ParallelStudyOptions): Promise<ParallelStudyOutcome> {
  const log = o.log ?? ((s: string) => console.log(s));
  const warn = o.onWarning ?? ((m: string) => console.warn(m));
  const launch = o.launch ?? forkCli;
  const file = path.join(o.out, "results.jsonl");
  fs.mkdirSync(o.out, { recursive: true });
  const done = new Map<string, RunResult>();
  if (fs.existsSync(file)) {
    const parsed = parseResults(fs.readFileSync(file, "utf8"), file);
    for (const w of parsed.warnings) warn(w);
    if (parsed.needsRepair) writeFileAtomic(file, parsed.cleanText); // before appending, so no line is glued on
    for (const r of parsed.results) done.set(r.key, r);
  }
  const byKey = new Map(o.cells.map((c) => [c.key, c]));
  if (byKey.size !== o.cells.length) throw new Error("runStudyInPool: a cell key appears twice in the cell list");
  for (const c of o.cells) {
    const r = done.get(c.key);
    if (r && !sameCell(r, c))
      throw new Error(
        `${file}: the line for ${c.key} describes another cell; is this the results file of another grid?`,
      );
  }
  const outcome: ParallelStudyOutcome = { results: [], ran: [], skipped: [], merged: [], peakRssMiB: {} };
  const record = (c: StudyCell, rec: CellRecord) => {
    if (!sameCell(rec.result, c)) throw new Error(`${cellRecordFile(o.out, c.key)}: the result is for another cell`);
    const line = resultLine(rec.result);
    const result = validateRunResult(JSON.parse(line), `result of cell ${c.key}`);
    appendLine(file, line);
    done.set(c.key, result);
    outcome.peakRssMiB[c.key] = rec.peakRssMiB;
  };
  for (const c of o.cells) {
    if (done.has(c.key)) {
      outcome.skipped.push(c.key);
      continue;
    }
    const rec = readCellRecord(o.out, c.key);
    if (rec) {
      record(c, rec);
      outcome.merged.push(c.key);
      log(`    ${c.key}: merged its finished cell file into ${file}`);
    }
  }

  const todo = o.cells.filter((c) => !done.has(c.key));
  type Task = { id: string; after?: string[]; job: CellJob };
  const tasks: Task[] = [];
  const pretrains = new Map<string, CellJob>();
  for (const c of todo) {
    const m = o.pretrainFor(c);
    if (m) pretrains.set(jobId({ kind: "pretrain", ...m }), { kind: "pretrain", ...m });
  }
  for (const [id, job] of pretrains) tasks.push({ id, job });
  const cost = o.cost;
  for (const c of cost ? [...todo].sort((a, b) => cost(b) - cost(a)) : todo) {
    const m = o.pretrainFor(c);
    tasks.push({ id: c.key, after: m ? [jobId({ kind: "pretrain", ...m })] : [], job: { kind: "cell", key: c.key } });
  }

  // progress over the whole grid: each job reports steps done of its total
  const t0 = Date.now();
  const prog = new Map<string, { done: number; total: number }>();
  const running = new Set<string>();
  const cellsTotal = o.cells.length;
  let finished = o.cells.length - todo.length;
  const live = o.progress ?? Boolean(process.stderr.isTTY);
  let lastDraw = 0;
  const status = () => {
    // a job that has not reported yet counts as 0 of the mean total of those that have
    const totals = [...prog.values()].map((p) => p.total);
    const typical = totals.length ? totals.reduce((a, b) => a + b, 0) / totals.length : 1;
    let all = 0,
      got = 0;
    for (const t of tasks) {
      const p = prog.get(t.id);
      all += p ? p.total : typical;
      got += p ? Math.min(p.done, p.total) : 0;
    }
    const f = all > 0 ? got / all : 1;
    const elapsed = (Date.now() - t0) / 1000;
    const eta = f > 0.01 ? formatSeconds((elapsed * (1 - f)) / f) : "?";
    const runningNow = running.size;
    return `[grid ${finished}/${cellsTotal} cells done, ${runningNow} running, ${Math.round(100 * f)} % of this run, ETA ${eta}]`;
  };
  const draw = (force = false) => {
    if (!live) return;
    const now = Date.now();
    if (!force && now - lastDraw < 500) return;
    lastDraw = now;
    process.stderr.write(`\r${status()}   `);
  };
  const say = (line: string) => {
    if (live) process.stderr.write("\r\x1b[K");
    log(line);
    draw(true);
  };

  if (!tasks.length) log(`all ${o.cells.length} cells are already in ${file}`);
  else {
    log(
      `running ${todo.length} cell(s)${pretrains.size ? ` and ${pretrains.size} pretraining job(s)` : ""} on ${Math.min(o.workers, tasks.length)} worker process(es); logs in ${path.join(o.out, "cells")}`,
    );
  }
  await runPool(tasks, {
    workers: o.workers,
    onStart: (t) => {
      running.add(t.id);
      say(`${status()} start ${t.id}`);
    },
    start: (t) =>
      launch(t.job, o.out, (m) => {
        if (m.kind === "progress" && typeof m.done === "number" && typeof m.total === "number") {
          prog.set(t.id, { done: m.done, total: m.total });
          draw();
        }
      }),
    onEnd: (t) => {
      running.delete(t.id);
      const p = prog.get(t.id);
      if (p) p.done = p.total;
      else prog.set(t.id, { done: 1, total: 1 }); // finished without reporting (e.g. pretraining found complete)
      if (t.job.kind === "pretrain") {
        const rss = readPretrainRss(o.out, t.job);
        if (rss !== undefined) outcome.peakRssMiB[t.id] = rss;
        say(`${status()} done ${t.id}${rss !== undefined ? `, peak RSS ${rss.toFixed(0)} MiB` : ""}`);
        return;
      }
      const c = byKey.get(t.job.key)!;
      const rec = readCellRecord(o.out, c.key);
      if (!rec) throw new Error(`its process exited without writing ${cellRecordFile(o.out, c.key)}`);
      record(c, rec);
      outcome.ran.push(c.key);
      finished++;
      const r = rec.result;
      say(
        `${status()} done ${c.key}: test Dice ${r.test.meanDice.toFixed(3)}, HD95 ${r.test.meanHd95.toFixed(1)} mm, ` +
          `${rec.processSeconds.toFixed(0)} s, peak RSS ${rec.peakRssMiB.toFixed(0)} MiB`,
      );
    },
  });
  if (live && tasks.length) process.stderr.write("\r\x1b[K");
  const rss = Object.values(outcome.peakRssMiB);
  if (rss.length)
    log(
      `peak RSS per worker process: max ${Math.max(...rss).toFixed(0)} MiB (${o.workers} at once: at most ` +
        `${(Math.min(o.workers, rss.length) * Math.max(...rss)).toFixed(0)} MiB together); this process ` +
        `${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`,
    );
  outcome.results = o.cells.map((c) => done.get(c.key)!);
  return outcome;
}

function pretrainRssFile(out: string, job: CellJob): string {
  return path.join(out, "cells", `${cellFileName(jobId(job))}.json`);
}

function readPretrainRss(out: string, job: CellJob): number | undefined {
  try {
    const v = JSON.parse(fs.readFileSync(pretrainRssFile(out, job), "utf8")).peakRssMiB;
    return typeof v === "number" ? v : undefined;
  } catch {
    return undefined;
  }
}

/** What a child needs from the study to run its job. */
export interface CellExecutor {
  cells: StudyCell[];
  /** Runs one cell; `onStep(done, total)` after each training step. */
  runCell(cell: StudyCell, onStep: (done: number, total: number) => void): Promise<RunResult>;
  /** Pretrains (or finds complete) the MAE encoder of `model` for `seed`; `onStep(done, total)` after each step. */
  pretrain(model: string, seed: number, onStep: (done: number, total: number) => void): Promise<string>;
}

/**
 * The child side (`mae-nnformer cell`): runs one job and leaves its record in DIR/cells/. A cell already recorded is
 * not run again. Reports progress to a parent pool when there is one, and stops when that parent dies.
 */
export async function runCellJob(out: string, job: CellJob, exec: CellExecutor): Promise<void> {
  const t0 = Date.now();
  const checkParent = exitWithParent();
  const onStep = (done: number, total: number) => {
    checkParent();
    tellParent({ kind: "progress", done, total } satisfies JobProgress);
  };
  const rssMiB = () => process.resourceUsage().maxRSS / 1024;
  if (job.kind === "pretrain") {
    const file = await exec.pretrain(job.model, job.seed, onStep);
    writeFileAtomic(
      pretrainRssFile(out, job),
      JSON.stringify({ model: job.model, seed: job.seed, checkpoint: file, peakRssMiB: rssMiB() }) + "\n",
    );
    return;
  }
  const cell = exec.cells.find((c) => c.key === job.key);
  if (!cell) {
    const keys = exec.cells.map((c) => c.key);
    throw new Error(
      `cell ${job.key} is not in the grid of ${path.join(out, STUDY_PLAN_FILE)}; its cells are:\n  ${keys.join("\n  ")}`,
    );
  }
  if (readCellRecord(out, cell.key)) return; // done already (another executor, or a rerun)
  const result = await exec.runCell(cell, onStep);
  const rec: CellRecord = {
    format: "mae-nnformer-cell-v1",
    key: cell.key,
    result: validateRunResult(JSON.parse(resultLine(result)), `result of cell ${cell.key}`),
    peakRssMiB: rssMiB(),
    processSeconds: (Date.now() - t0) / 1000,
  };
  writeFileAtomic(cellRecordFile(out, cell.key), JSON.stringify(rec) + "\n");
}
