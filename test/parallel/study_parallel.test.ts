import { strict as assert } from "assert";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { initBackend } from "../../src/runtime/backend";
import { getProfile } from "../../src/study/profiles";
import { runLowLabelStudy } from "../../src/study/lowlabel";
import { readResults, RunResult } from "../../src/study/grid";
import { childExecArgv } from "../../src/study/pool";
import { loadStudyPlan, saveStudyPlan } from "../../src/study/cells";

// The smoke study three ways: serially in this process, on a pool of 2 worker processes, and on the pool killed with
// SIGKILL after its first finished cell and then rerun. Every way must give the same rows (timing fields aside).
const CLI = path.resolve(__dirname, "../../src/cli/main.ts");
const cliArgs = (args: string[]) => [...childExecArgv(CLI), CLI, ...args];

/** A row without the fields that measure time. */
function comparable(r: RunResult): unknown {
  const { wallTimeS: _w, meta, ...rest } = r;
  const { msPerStep: _m, ...keptMeta } = (meta ?? {}) as Record<string, unknown>;
  return { ...rest, meta: keptMeta };
}

function rowsByKey(file: string): Map<string, unknown> {
  return new Map(readResults(file).map((r) => [r.key, comparable(r)]));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("study/cells: cells on a pool of worker processes", function () {
  this.timeout(600000);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "study-parallel-"));
  let serial: Map<string, unknown>;

  before(async () => {
    await initBackend();
    const out = path.join(root, "serial");
    await runLowLabelStudy(getProfile("smoke"), { out, workers: 1, log: () => {}, progress: false });
    serial = rowsByKey(path.join(out, "results.jsonl"));
    assert.equal(serial.size, 4);
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it("gives the rows of the serial run (2 workers), each cell once, with the plan saved for single-cell runs", () => {
    const out = path.join(root, "pool");
    const r = spawnSync(process.execPath, cliArgs(["study", "--profile", "smoke", "--out", out, "--workers", "2"]), {
      encoding: "utf8",
      timeout: 300000,
    });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /running 4 cell\(s\) and 1 pretraining job\(s\) on 2 worker process\(es\)/);
    assert.match(r.stdout, /peak RSS per worker process: max \d+ MiB/);
    assert.deepEqual(rowsByKey(path.join(out, "results.jsonl")), serial);
    assert.equal(loadStudyPlan(out).profile.name, "smoke");
  });

  it("kill -9 of the study during the run, then a rerun: the grid completes with the same rows", async () => {
    const out = path.join(root, "killed");
    const child = spawn(process.execPath, cliArgs(["study", "--profile", "smoke", "--out", out, "--workers", "2"]), {
      stdio: "ignore",
    });
    const cells = path.join(out, "cells");
    const finished = () =>
      fs.existsSync(cells) ? fs.readdirSync(cells).filter((f) => f.startsWith("model") && f.endsWith(".json")) : [];
    for (let i = 0; i < 3000 && finished().length === 0 && child.exitCode === null; i++) await sleep(50);
    assert.equal(child.exitCode, null, "the study ended before it could be killed");
    process.kill(child.pid!, "SIGKILL");
    const atKill = finished().length;
    assert.ok(atKill >= 1 && atKill < 4, `${atKill} cells finished when killed`);
    // the orphaned job processes notice that their parent is gone and stop (no rerun races them on a cell)
    const unfinished = () =>
      fs
        .readdirSync(cells)
        .filter((f) => f.endsWith(".log") && !fs.existsSync(path.join(cells, f.replace(/\.log$/, ".json"))));
    const saysGone = (f: string) => /parent process \d+ is gone/.test(fs.readFileSync(path.join(cells, f), "utf8"));
    // a job forked just before the kill is still starting (loader, backend, data) on a busy machine: give it time
    for (let i = 0; i < 900 && !unfinished().every(saysGone); i++) await sleep(100);
    assert.ok(unfinished().length >= 1, "no job was running at the kill");
    assert.deepEqual(
      unfinished().filter((f) => !saysGone(f)),
      [],
      "these jobs went on after their parent died",
    );
    const r = spawnSync(process.execPath, cliArgs(["study", "--profile", "smoke", "--out", out, "--workers", "2"]), {
      encoding: "utf8",
      timeout: 300000,
    });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.deepEqual(rowsByKey(path.join(out, "results.jsonl")), serial);
    // every cell finished before the kill was either appended then or merged now, never run twice
    assert.equal(readResults(path.join(out, "results.jsonl")).length, 4);
  });
});

describe("study/cells: a single cell from the command line", function () {
  this.timeout(120000);
  const run = (args: string[]) => spawnSync(process.execPath, cliArgs(args), { encoding: "utf8", timeout: 60000 });

  it("refuses a folder without a study plan, a missing job and a bad worker count, saying what to do", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cell-cli-"));
    try {
      const noPlan = run(["cell", "--study", dir, "--key", "model=m|init=scratch|frac=1|seed=0"]);
      assert.equal(noPlan.status, 1);
      assert.match(noPlan.stderr, /study\.json: cannot read the study plan .* start the study once with/);
      const noJob = run(["cell", "--study", dir]);
      assert.equal(noJob.status, 1);
      assert.match(noJob.stderr, /give exactly one of --key KEY or --pretrain MODEL/);
      const badWorkers = run(["study", "--profile", "smoke", "--out", dir, "--workers", "0"]);
      assert.equal(badWorkers.status, 1);
      assert.match(badWorkers.stderr, /--workers must be a positive integer, got "0"/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("names the grid's keys when asked for a cell that is not in it", () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "cell-cli-"));
    try {
      saveStudyPlan(out, { profile: getProfile("smoke") });
      const r = run(["cell", "--study", out, "--key", "model=nnformer-micro|init=scratch|frac=0.3|seed=0"]);
      assert.equal(r.status, 1);
      assert.match(
        r.stderr,
        /is not in the grid of .*study\.json; its cells are:\n\s+model=nnformer-micro\|init=scratch\|frac=0\.5\|seed=0/,
      );
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
