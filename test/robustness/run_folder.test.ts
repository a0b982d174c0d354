// One writer per run folder, and no stale results: a second study on a folder in use is refused naming the holder;
// a rerun with other settings is refused naming the fields (never answered with the old rows), and --force
// discards exactly the stale parts; a truncated checkpoint on resume says to delete it.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import { runFolder } from "../../src/train/recipe";
import {
  comparableRows,
  exited,
  expectOk,
  expectRefused,
  expectUnchanged,
  runCli,
  scratch,
  smokeFiles,
  smokeKey,
  snapshot,
  startCli,
} from "./harness";

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A copy of the shared smoke study to modify. */
function copyOfSmoke(name: string): string {
  const to = path.join(scratch(name), "study");
  fs.cpSync(smokeFiles().out, to, { recursive: true });
  return to;
}

const rowsOf = (file: string) =>
  fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { key: string; steps: number });

describe("robustness: run folders", function () {
  this.timeout(240_000);

  it("a second study on a folder in use is refused, naming the holder", async () => {
    const out = path.join(scratch("two-writers"), "study");
    const first = startCli(["study", "--profile", "smoke", "--out", out]);
    try {
      const lock = path.join(out, "run.lock");
      for (let t = 0; !fs.existsSync(lock) && first.exitCode === null && t < 600; t++) await sleep(50);
      assert.ok(fs.existsSync(lock), `the first study never took the lock:\n${first.err}`);
      const r = runCli(["study", "--profile", "smoke", "--out", out]);
      expectRefused(
        r,
        new RegExp(`is in use by another run \\(pid ${first.pid} on host `),
        /command: .*study --profile smoke --out/,
        /wait for it to finish or stop it, or choose another output folder/,
      );
    } finally {
      first.kill("SIGKILL");
      await exited(first);
    }
  });

  it("other settings are refused naming the fields; --force reruns only the stale cells", () => {
    const out = copyOfSmoke("stale");
    const results = path.join(out, "results.jsonl");
    const before = snapshot(out);
    const args = ["study", "--profile", "smoke", "--out", out, "--inits", "scratch", "--fractions", "1"];
    const r = runCli([...args, "--steps", "3"]);
    expectRefused(
      r,
      /holds results or checkpoints made with other settings than this run/,
      new RegExp(`${escape(smokeKey("scratch", "1"))}.*finetune\\.steps: 2 -> 3`),
      /another --out folder .* add --force/,
    );
    assert.doesNotMatch(r.stdout, /already in results\.jsonl/);
    expectUnchanged(out, before);

    expectOk(runCli([...args, "--steps", "3", "--force"]));
    const rows = rowsOf(results);
    assert.equal(rows.length, 4);
    assert.equal(rows.find((x) => x.key === smokeKey("scratch", "1"))!.steps, 3);
    const others = (file: string) =>
      comparableRows(file).filter((x) => (x as { key: string }).key !== smokeKey("scratch", "1"));
    assert.deepEqual(others(results), others(smokeFiles().results), "the other cells' rows are kept as they were");
    // and the same settings again are a plain resume
    const again = runCli([...args, "--steps", "3"]);
    expectOk(again);
    assert.match(again.stdout, /already in .*results\.jsonl/);
  });

  it("a truncated latest.safetensors on resume says to delete it to restart that cell", () => {
    const out = copyOfSmoke("truncated-latest");
    const results = path.join(out, "results.jsonl");
    const cell = smokeKey("scratch", "0.5");
    fs.writeFileSync(
      results,
      fs
        .readFileSync(results, "utf8")
        .split("\n")
        .filter((l) => l && !l.includes(cell))
        .map((l) => l + "\n")
        .join(""),
    );
    const latest = path.join(runFolder(out, cell), "latest.safetensors");
    fs.truncateSync(latest, Math.floor(fs.statSync(latest).size / 2));
    const before = snapshot(out);
    const r = runCli(["study", "--profile", "smoke", "--out", out, "--inits", "scratch", "--fractions", "0.5"]);
    expectRefused(r, /latest\.safetensors is truncated/, /delete .*latest\.safetensors to restart that cell/);
    expectUnchanged(out, before);
  });
});
