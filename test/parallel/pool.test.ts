import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { runPool, runChild, RunningTask } from "../../src/study/pool";
import { runStudyInPool, cellRecordFile, readCellRecord, CellRecord, JobLauncher } from "../../src/study/cells";
import { expandGrid, readResults, RunResult, StudyCell } from "../../src/study/grid";
import { writeFileAtomic } from "../../src/runtime/files";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fakeResult(c: StudyCell): RunResult {
  return {
    key: c.key,
    init: c.init,
    model: c.model,
    labelFraction: c.labelFraction,
    seed: c.seed,
    backend: "fake",
    wallTimeS: 0.01,
    steps: 3,
    curve: [{ step: 3, valDice: c.seed / 10 + c.labelFraction, trainLoss: NaN }],
    test: { perClassDice: { a: c.labelFraction }, perClassHd95: { a: NaN }, meanDice: c.labelFraction, meanHd95: NaN },
  };
}

describe("parallel study: job pool", () => {
  it("runs at most `workers` tasks at once, waits for dependencies, keeps every result", async () => {
    let running = 0,
      most = 0;
    const order: string[] = [];
    const tasks = [
      { id: "pre", after: [] as string[] },
      { id: "a", after: [] },
      { id: "b", after: ["pre"] },
      { id: "c", after: [] },
      { id: "d", after: ["pre"] },
    ];
    const r = await runPool(tasks, {
      workers: 2,
      start: (t): RunningTask<string> => {
        running++;
        most = Math.max(most, running);
        order.push(`start ${t.id}`);
        const done = sleep(t.id === "pre" ? 60 : 10).then(() => {
          running--;
          order.push(`end ${t.id}`);
          return t.id.toUpperCase();
        });
        return { done, stop: () => {} };
      },
    });
    assert.equal(most, 2);
    assert.deepEqual([...r.keys()].sort(), ["a", "b", "c", "d", "pre"]);
    assert.equal(r.get("b"), "B");
    for (const dep of ["b", "d"]) assert.ok(order.indexOf(`start ${dep}`) > order.indexOf("end pre"), order.join(", "));
    // "a" and "c" do not wait for "pre": both ran before it ended
    assert.ok(order.indexOf("end c") < order.indexOf("end pre"), order.join(", "));
  });

  it("stops the running tasks and starts no other after a failure, naming the task", async () => {
    const stopped: string[] = [];
    const started: string[] = [];
    const p = runPool([{ id: "ok" }, { id: "bad" }, { id: "never" }], {
      workers: 2,
      start: (t) => {
        started.push(t.id);
        let stop = () => {};
        const done = new Promise<void>((resolve, reject) => {
          if (t.id === "bad") setTimeout(() => reject(new Error("boom")), 5);
          else stop = () => (stopped.push(t.id), reject(new Error("stopped")));
        });
        return { done, stop: () => stop() };
      },
    });
    await assert.rejects(p, /bad failed: boom/);
    assert.deepEqual(started, ["ok", "bad"]);
    assert.deepEqual(stopped, ["ok"]);
  });

  it("refuses bad worker counts and tasks that wait for a later task", async () => {
    await assert.rejects(
      runPool([{ id: "a" }], { workers: 0, start: () => ({ done: Promise.resolve(), stop() {} }) }),
      /workers must be a positive integer/,
    );
    await assert.rejects(
      runPool([{ id: "a", after: ["b"] }, { id: "b" }], {
        workers: 1,
        start: () => ({ done: Promise.resolve(), stop() {} }),
      }),
      /must come before it/,
    );
  });

  it("a child process reports over IPC and its failure names the exit code and log tail", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pool-child-"));
    const mod = path.join(dir, "child.ts");
    fs.writeFileSync(
      mod,
      `const n: number = Number(process.argv[2]);\nprocess.send!({ kind: "progress", done: n, total: 9 });\nconsole.log("child says " + n);\nif (n === 7) { console.error("it went wrong"); process.exit(5); }\nsetTimeout(() => process.disconnect(), 10);\n`,
    );
    const got: unknown[] = [];
    await runChild({ module: mod, args: ["3"], logFile: path.join(dir, "a.log"), onMessage: (m) => got.push(m) }).done;
    assert.deepEqual(got, [{ kind: "progress", done: 3, total: 9 }]);
    assert.match(fs.readFileSync(path.join(dir, "a.log"), "utf8"), /child says 3/);
    await assert.rejects(
      runChild({ module: mod, args: ["7"], logFile: path.join(dir, "b.log") }).done,
      /exited with code 5[\s\S]*it went wrong/,
    );
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe("parallel study: results from cell files", () => {
  const cells = expandGrid({ inits: ["scratch", "mae"], models: ["m"], labelFractions: [0.5, 1], seeds: [0, 1] });
  const pretrainFor = (c: StudyCell) => (c.init === "mae" ? { model: "m", seed: 0 } : undefined);
  // a fake executor: writes the cell's record as a real child would, after a short delay
  const fakeLaunch =
    (log: string[], failKey?: string): JobLauncher =>
    (job, out) => {
      const id = job.kind === "cell" ? job.key : `pretrain:${job.model}:seed${job.seed}`;
      log.push(id);
      const done = sleep(job.kind === "pretrain" ? 30 : 5).then(() => {
        if (job.kind !== "cell") return;
        if (job.key === failKey) throw new Error("simulated crash");
        const c = cells.find((x) => x.key === job.key)!;
        const rec: CellRecord = {
          format: "mae-nnformer-cell-v1",
          key: c.key,
          result: fakeResult(c),
          peakRssMiB: 100,
          processSeconds: 1,
        };
        writeFileAtomic(cellRecordFile(out, c.key), JSON.stringify(rec));
      });
      return { done, stop: () => {} };
    };

  it("every cell lands in results.jsonl exactly once, mae cells after their pretraining; a rerun skips them", async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "pool-study-"));
    const started: string[] = [];
    const r = await runStudyInPool({ out, cells, workers: 3, pretrainFor, launch: fakeLaunch(started), log: () => {} });
    assert.equal(started[0], "pretrain:m:seed0");
    assert.deepEqual(
      r.results.map((x) => x.key),
      cells.map((c) => c.key),
    );
    const rows = readResults(path.join(out, "results.jsonl"));
    assert.deepEqual(rows.map((x) => x.key).sort(), cells.map((c) => c.key).sort());
    assert.ok(Number.isNaN(rows[0].test.meanHd95));
    const again: string[] = [];
    const r2 = await runStudyInPool({ out, cells, workers: 2, pretrainFor, launch: fakeLaunch(again), log: () => {} });
    assert.deepEqual(again, []);
    assert.equal(r2.skipped.length, cells.length);
    fs.rmSync(out, { recursive: true, force: true });
  });

  it("with a cost per cell, the longest cells start first and results keep the grid's order", async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "pool-study-"));
    const started: string[] = [];
    const noPretrain = () => undefined;
    const cost = (c: StudyCell) => (c.labelFraction === 1 ? 4 : 1);
    const r = await runStudyInPool({
      out,
      cells,
      workers: 1,
      pretrainFor: noPretrain,
      launch: fakeLaunch(started),
      log: () => {},
      cost,
    });
    const big = cells.filter((c) => c.labelFraction === 1).map((c) => c.key);
    assert.deepEqual(started.slice(0, big.length), big, "the 100 % cells first, in grid order among themselves");
    assert.deepEqual(
      r.results.map((x) => x.key),
      cells.map((c) => c.key),
    );
    fs.rmSync(out, { recursive: true, force: true });
  });

  it("after a failed cell, the rerun merges cell files not yet in results.jsonl and runs only the rest", async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "pool-study-"));
    await assert.rejects(
      runStudyInPool({ out, cells, workers: 2, pretrainFor, launch: fakeLaunch([], cells[2].key), log: () => {} }),
      /simulated crash/,
    );
    const partial = readResults(path.join(out, "results.jsonl")).map((x) => x.key);
    assert.ok(partial.length < cells.length);
    // a cell finished by another executor (a cluster job) but not merged, and a truncated last line from a crash
    const extra = cells.find((c) => !partial.includes(c.key) && c.key !== cells[2].key)!;
    const rec: CellRecord = {
      format: "mae-nnformer-cell-v1",
      key: extra.key,
      result: fakeResult(extra),
      peakRssMiB: 1,
      processSeconds: 1,
    };
    writeFileAtomic(cellRecordFile(out, extra.key), JSON.stringify(rec));
    fs.appendFileSync(path.join(out, "results.jsonl"), '{"key": "trunc');
    const started: string[] = [];
    const warnings: string[] = [];
    const r = await runStudyInPool({
      out,
      cells,
      workers: 2,
      pretrainFor,
      launch: fakeLaunch(started),
      log: () => {},
      onWarning: (w) => warnings.push(w),
    });
    assert.ok(r.merged.includes(extra.key));
    assert.ok(!started.includes(extra.key));
    assert.match(warnings.join("\n"), /incomplete last line/);
    const rows = readResults(path.join(out, "results.jsonl"));
    assert.deepEqual(rows.map((x) => x.key).sort(), cells.map((c) => c.key).sort());
    assert.deepEqual(rows.find((x) => x.key === extra.key)!.test.meanDice, extra.labelFraction);
    fs.rmSync(out, { recursive: true, force: true });
  });

  it("a cell file for another key is refused with a message saying to delete it", () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "pool-study-"));
    const rec: CellRecord = {
      format: "mae-nnformer-cell-v1",
      key: cells[1].key,
      result: fakeResult(cells[1]),
      peakRssMiB: 1,
      processSeconds: 1,
    };
    writeFileAtomic(cellRecordFile(out, cells[0].key), JSON.stringify(rec));
    assert.throws(() => readCellRecord(out, cells[0].key), /not the record of cell .*delete it/);
    fs.rmSync(out, { recursive: true, force: true });
  });
});
