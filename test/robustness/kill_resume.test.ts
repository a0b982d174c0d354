// kill -9 at random points of a smoke study (at three stages of its progress), then resume: the results must equal those of an uninterrupted run
// (timing fields aside). The points are drawn from a seed printed with the test, so a failure can be replayed with
// ROBUSTNESS_SEED=<seed>.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import { SMOKE_MODEL, comparableRows, exited, expectOk, runCli, scratch, smokeFiles, startCli } from "./harness";
import { makeRng } from "../../src/runtime/random";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("robustness: kill -9 and resume", function () {
  this.timeout(300_000);

  it("three kill -9 at random points, then a resume, give the uninterrupted results", async () => {
    const reference = smokeFiles().results;
    const seed = Number(process.env.ROBUSTNESS_SEED ?? Date.now() % 1_000_000);
    const rand = makeRng(seed);
    const out = path.join(scratch("kill-resume"), "study");
    const notes: string[] = [];
    const results = path.join(out, "results.jsonl");
    const rowCount = () =>
      fs.existsSync(results) ? fs.readFileSync(results, "utf8").split("\n").filter(Boolean).length : 0;
    const maeLatest = path.join(out, "pretrain", SMOKE_MODEL, "mae_latest.safetensors");
    // Kill points follow the study's progress rather than the clock (a loaded machine runs slower): kill k waits for
    // its stage (pretraining written, then 1 and 2 result rows), then a random 0-1.5 s more, then kill -9.
    const stages: Array<[string, () => boolean]> = [
      ["pretraining checkpoint written", () => fs.existsSync(maeLatest)],
      ["1 row", () => rowCount() >= 1],
      ["2 rows", () => rowCount() >= 2],
    ];
    for (const [k, [stage, reached]] of stages.entries()) {
      const extra = Math.round(rand() * 1500);
      const child = startCli(["study", "--profile", "smoke", "--out", out]);
      while (!reached() && child.exitCode === null) await sleep(25);
      await sleep(extra);
      const alive = child.exitCode === null;
      if (alive) child.kill("SIGKILL");
      const end = await exited(child);
      notes.push(
        `kill ${k + 1} ${extra} ms after "${stage}": ${alive ? `killed (${end.signal})` : `had already exited ${end.status}`}, ${rowCount()} rows`,
      );
      if (!alive) assert.equal(end.status, 0, `the run between kills failed:\n${child.err}`);
    }
    console.log(`      seed ${seed}; ${notes.join("; ")}`);
    expectOk(runCli(["study", "--profile", "smoke", "--out", out], { timeoutMs: 120_000 }));
    assert.deepEqual(comparableRows(path.join(out, "results.jsonl")), comparableRows(reference));
  });
});
