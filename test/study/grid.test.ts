import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  RunResult,
  StudyCell,
  cellKey,
  expandGrid,
  parseResults,
  readResults,
  resultLine,
  runStudy,
  selectLabelledSubset,
} from "../../src/study/grid";
import { fakeResult } from "./fixtures";

function tmpFile(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "study-grid-"));
  return path.join(dir, name);
}

const GRID = { inits: ["mae", "scratch"], models: ["nnformer"], labelFractions: [0.1, 0.5], seeds: [1, 2, 3] };

describe("study/grid", () => {
  it("expandGrid lists every cell once, seed-major, with stable keys", () => {
    const cells = expandGrid(GRID);
    assert.equal(cells.length, 12);
    assert.deepEqual(
      cells.slice(0, 4).map((c) => c.key),
      [
        "model=nnformer|init=mae|frac=0.1|seed=1",
        "model=nnformer|init=scratch|frac=0.1|seed=1",
        "model=nnformer|init=mae|frac=0.5|seed=1",
        "model=nnformer|init=scratch|frac=0.5|seed=1",
      ],
    );
    assert.equal(new Set(cells.map((c) => c.key)).size, 12);
    for (const c of cells) assert.equal(c.key, cellKey(c));
    assert.deepEqual(expandGrid(GRID), cells); // deterministic
  });

  it("expandGrid rejects empty axes, duplicates and bad values with a clear message", () => {
    assert.throws(() => expandGrid({ ...GRID, seeds: [] }), /seeds must be a non-empty list/);
    assert.throws(() => expandGrid({ ...GRID, seeds: [1, 1] }), /seeds lists 1 twice/);
    assert.throws(() => expandGrid({ ...GRID, labelFractions: [0] }), /label fraction 0 must be in \(0, 1\]/);
    assert.throws(() => expandGrid({ ...GRID, inits: ["a|b"] }), /without '\|'/);
    assert.throws(() => expandGrid({ ...GRID, seeds: [1.5] }), /must be an integer/);
  });

  it("label subsets: deterministic, at least one case, nested across fractions, order-independent", () => {
    const ids = Array.from({ length: 30 }, (_, i) => `case${String(i).padStart(2, "0")}`);
    for (const seed of [0, 1, 7]) {
      const f10 = selectLabelledSubset(ids, 0.1, seed);
      const f25 = selectLabelledSubset(ids, 0.25, seed);
      const f50 = selectLabelledSubset(ids, 0.5, seed);
      const all = selectLabelledSubset(ids, 1, seed);
      assert.deepEqual([f10.length, f25.length, f50.length, all.length], [3, 8, 15, 30]);
      for (const c of f10) assert.ok(f25.includes(c));
      for (const c of f25) assert.ok(f50.includes(c));
      assert.deepEqual([...all].sort(), ids);
      assert.deepEqual(selectLabelledSubset([...ids].reverse(), 0.25, seed), f25);
      assert.deepEqual(selectLabelledSubset(ids, 0.25, seed), f25);
    }
    assert.notDeepEqual(selectLabelledSubset(ids, 0.25, 1), selectLabelledSubset(ids, 0.25, 2));
    assert.equal(selectLabelledSubset(ids, 0.001, 3).length, 1);
    assert.equal(selectLabelledSubset(["only"], 0.1, 3).length, 1);
    assert.throws(() => selectLabelledSubset(ids, 0, 1), /fraction 0 must be in/);
    assert.throws(() => selectLabelledSubset([], 0.5, 1), /no case ids/);
    assert.throws(() => selectLabelledSubset(["a", "a"], 0.5, 1), /"a" appears twice/);
  });

  it("resumes an interrupted study: only the remaining cells run, results equal an uninterrupted run", async () => {
    const cells = expandGrid(GRID);
    const fullFile = tmpFile("full.jsonl");
    const full = await runStudy(cells, async (c) => fakeResult(c), { resultsFile: fullFile });
    assert.equal(full.ran.length, 12);

    const file = tmpFile("resumed.jsonl");
    const k = 5;
    let calls = 0;
    const interrupted = async (c: StudyCell): Promise<RunResult> => {
      if (calls++ === k) throw new Error("simulated interruption");
      return fakeResult(c);
    };
    await assert.rejects(
      runStudy(cells, interrupted, { resultsFile: file }),
      (e: Error) => e.message.includes(cells[k].key) && e.message.includes("simulated interruption"),
    );
    assert.equal(readResults(file).length, k);

    const started: string[] = [];
    const ended: string[] = [];
    const skipped: string[] = [];
    const second = await runStudy(cells, async (c) => fakeResult(c), {
      resultsFile: file,
      onCellStart: (c, p) => {
        started.push(c.key);
        assert.equal(p.toRun, 12 - k);
      },
      onCellEnd: (r) => ended.push(r.key),
      onCellSkip: (c) => skipped.push(c.key),
    });
    assert.deepEqual(
      started,
      cells.slice(k).map((c) => c.key),
    );
    assert.deepEqual(ended, started);
    assert.deepEqual(
      skipped,
      cells.slice(0, k).map((c) => c.key),
    );
    assert.deepEqual(second.results, full.results);
    assert.deepEqual(readResults(file), readResults(fullFile));
    assert.equal(fs.readFileSync(file, "utf8"), fs.readFileSync(fullFile, "utf8"));

    // a third run has nothing left to do
    const third = await runStudy(
      cells,
      async () => {
        throw new Error("must not run");
      },
      { resultsFile: file },
    );
    assert.equal(third.ran.length, 0);
    assert.deepEqual(third.results, full.results);
  });

  it("NaN metrics survive the file as null -> NaN", async () => {
    const cells = expandGrid(GRID);
    const file = tmpFile("nan.jsonl");
    const out = await runStudy(cells, async (c) => fakeResult(c), { resultsFile: file });
    const r = readResults(file).find((x) => x.seed === 2 && x.init === "scratch")!;
    assert.ok(Number.isNaN(r.test.perClassHd95.aorta));
    assert.ok(fs.readFileSync(file, "utf8").includes('"aorta":null'));
    assert.deepEqual(readResults(file), out.results);
  });

  it("a corrupt line in the middle is an error naming file and line", () => {
    const cells = expandGrid(GRID).slice(0, 3);
    const lines = cells.map((c) => resultLine(fakeResult(c)));
    const file = tmpFile("corrupt.jsonl");
    fs.writeFileSync(file, lines[0] + lines[1].slice(0, 40) + "\n" + lines[2]);
    assert.throws(
      () => readResults(file),
      (e: Error) => e.message.includes(`${file}:2: not valid JSON`),
    );
    // valid JSON with a wrong field is an error too, even on the last line
    const bad = JSON.parse(lines[2]);
    bad.test.meanDice = "high";
    fs.writeFileSync(file, lines[0] + JSON.stringify(bad) + "\n");
    assert.throws(() => readResults(file), /corrupt\.jsonl:2: field "test\.meanDice" should be a number or null/);
    // and so is a key recorded twice
    fs.writeFileSync(file, lines[0] + lines[1] + lines[0]);
    assert.throws(() => readResults(file), /:3: key .* was already recorded on line 1/);
  });

  it("a truncated last line is dropped with a warning, and runStudy repairs the file before appending", async () => {
    const cells = expandGrid(GRID);
    const lines = cells.slice(0, 3).map((c) => resultLine(fakeResult(c)));
    const file = tmpFile("truncated.jsonl");
    fs.writeFileSync(file, lines[0] + lines[1] + lines[2].slice(0, 100)); // crash in the middle of line 3
    const warnings: string[] = [];
    const read = readResults(file, { onWarning: (m) => warnings.push(m) });
    assert.equal(read.length, 2);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /truncated\.jsonl:3: dropped an incomplete last line/);
    assert.equal(parseResults(lines[0] + lines[1]).needsRepair, false);

    const ran: string[] = [];
    const out = await runStudy(
      cells,
      async (c) => {
        ran.push(c.key);
        return fakeResult(c);
      },
      { resultsFile: file, onWarning: (m) => warnings.push(m) },
    );
    assert.equal(warnings.length, 2);
    assert.deepEqual(
      ran,
      cells.slice(2).map((c) => c.key),
    ); // the truncated cell runs again
    const again = readResults(file, { onWarning: () => assert.fail("file still broken") });
    assert.equal(again.length, cells.length);
    assert.deepEqual(again, out.results);
  });

  it("rejects a result that does not belong to its cell, and a results file from another grid", async () => {
    const cells = expandGrid(GRID);
    const file = tmpFile("mismatch.jsonl");
    await assert.rejects(
      runStudy(cells, async (c) => ({ ...fakeResult(c), seed: 99 }), { resultsFile: file }),
      /but the result says key .* seed 99/,
    );
    assert.equal(fs.existsSync(file), false);
    const other = { ...fakeResult(cells[0]), init: "other" };
    fs.writeFileSync(file, resultLine(other));
    await assert.rejects(
      runStudy(cells, async (c) => fakeResult(c), { resultsFile: file }),
      /results file of another grid/,
    );
    await assert.rejects(
      runStudy([cells[0], cells[0]], async (c) => fakeResult(c), { resultsFile: tmpFile("d.jsonl") }),
      /appears twice/,
    );
  });
});
