// kill -9 at random points of a smoke study, then resume: the results must equal those of an uninterrupted run
// (timing fields aside). The points are drawn from a seed printed with the test, so a failure can be replayed with
// ROBUSTNESS_SEED=<seed>.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import { comparableRows, exited, expectOk, runCli, scratch, smokeFiles, startCli } from "./harness";
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
    for (let k = 0; k < 3; k++) {
      // The smoke study takes about 5 s here (startup about 1 s); kill somewhere in 0.8-5 s.
      const delay = Math.round(800 + rand() * 4200);
      const child = startCli(["study", "--profile", "smoke", "--out", out]);
      await sleep(delay);
      const alive = child.exitCode === null;
      if (alive) child.kill("SIGKILL");
      const end = await exited(child);
      const rows = fs.existsSync(path.join(out, "results.jsonl"))
        ? fs.readFileSync(path.join(out, "results.jsonl"), "utf8").split("\n").filter(Boolean).length
        : 0;
      notes.push(
        `kill ${k + 1} at ${delay} ms: ${alive ? `killed (${end.signal})` : `had already exited ${end.status}`}, ${rows} rows`,
      );
      if (!alive) assert.equal(end.status, 0, `the run between kills failed:\n${child.err}`);
    }
    console.log(`      seed ${seed}; ${notes.join("; ")}`);
    expectOk(runCli(["study", "--profile", "smoke", "--out", out], { timeoutMs: 120_000 }));
    assert.deepEqual(comparableRows(path.join(out, "results.jsonl")), comparableRows(reference));
  });
});
