// The done-when check of the webgpu path: the smoke study (MAE pretraining, fine-tuning from scratch and from MAE,
// evaluation) on webgpu gives the same losses, Dice and HD95 as on wasm, within 1e-3. Both run as CLI processes.
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { startWebgpuSuite } from "./helpers";

type Row = Record<string, unknown> & { key: string };

/** Runs `study --profile smoke` on a backend; returns the rows of results.jsonl by key. */
function smokeStudy(backend: string, out: string): Map<string, Row> {
  // from the sources: tsx runs the CLI; in the GPU pack the CLI is bundled beside the suite
  const root = path.resolve(__dirname, "../..");
  const [cmd, pre] = __filename.endsWith(".ts")
    ? [path.join(root, "node_modules/.bin/tsx"), [path.join(root, "src/cli/main.ts")]]
    : [process.execPath, [path.join(__dirname, "kit.js")]];
  const r = spawnSync(cmd, [...pre, "study", "--profile", "smoke", "--out", out], {
    env: { ...process.env, MAE_NNFORMER_BACKEND: backend },
    encoding: "utf8",
    timeout: 900000,
  });
  assert.equal(r.status, 0, `smoke study on ${backend} failed:\n${r.stdout}\n${r.stderr}`);
  const rows = fs
    .readFileSync(path.join(out, "results.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Row);
  return new Map(rows.map((row) => [row.key, row]));
}

/** Every number in `a` (timings and backend fields aside) against the same path in `b`: the largest difference. */
function largestDifference(a: unknown, b: unknown, where: string, seen: { n: number }): [number, string] {
  if (typeof a === "number") {
    seen.n++;
    const d = typeof b === "number" ? Math.abs(a - b) : Infinity;
    return [Number.isNaN(a) && Number.isNaN(b) ? 0 : d, where];
  }
  let worst: [number, string] = [0, ""];
  if (a && typeof a === "object")
    for (const [k, v] of Object.entries(a)) {
      if (/time|Time|PerStep|backend/.test(k)) continue;
      const d = largestDifference(v, (b as Record<string, unknown> | undefined)?.[k], `${where}.${k}`, seen);
      if (!(d[0] <= worst[0])) worst = d;
    }
  return worst;
}

describe("webgpu/smoke study vs wasm", () => {
  before(startWebgpuSuite);

  it("losses, Dice and HD95 of every run agree within 1e-3", function () {
    this.timeout(1800000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mae-webgpu-study-"));
    try {
      const wasm = smokeStudy("wasm", path.join(dir, "wasm"));
      const gpu = smokeStudy("webgpu", path.join(dir, "webgpu"));
      assert.deepEqual([...gpu.keys()].sort(), [...wasm.keys()].sort());
      const seen = { n: 0 };
      for (const [key, row] of wasm) {
        assert.equal(gpu.get(key)!.backend, "webgpu");
        const [d, where] = largestDifference(row, gpu.get(key), key, seen);
        assert.ok(d <= 1e-3, `${where}: webgpu differs from wasm by ${d}`);
      }
      assert.ok(seen.n > 50, `only ${seen.n} numbers compared`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
