// A full disk: a write that does not fit fails with a clear error and a non-zero exit, never leaves a partial file
// under a final name, and never replaces a good file. Runs on a small tmpfs, which needs root; elsewhere the cases
// are skipped with the reason printed.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import { readSafetensors, writeSafetensors } from "../../src/io/safetensors";
import { appendFileDurable, writeFileAtomic } from "../../src/runtime/files";
import {
  canMountTmpfs,
  expectRefused,
  expectUnchanged,
  fillDisk,
  mountTmpfs,
  runCli,
  smokeFiles,
  snapshot,
} from "./harness";
import * as bad from "./inputs";

/** Every file under `dir` (relative paths). */
function files(dir: string): string[] {
  return [...snapshot(dir).keys()].sort();
}

describe("robustness: disk full", function () {
  this.timeout(180_000);
  let tmpfs: ReturnType<typeof canMountTmpfs>;

  before(function () {
    tmpfs = canMountTmpfs();
    if (!tmpfs.ok) {
      console.log(`      SKIPPED disk-full cases: ${tmpfs.why}`);
      this.skip();
    }
  });

  it("library writes: the old file survives, no temporary file is left, the error says the disk is full", () => {
    const { dir, unmount } = mountTmpfs("full-lib", "256k");
    try {
      const file = path.join(dir, "weights.safetensors");
      writeSafetensors(file, new Map([["w", { dtype: "F32", shape: [4], data: new Float32Array([1, 2, 3, 4]) }]]));
      const before = snapshot(dir);
      const big = new Map([["w", { dtype: "F32" as const, shape: [200_000], data: new Float32Array(200_000) }]]);
      assert.throws(() => writeSafetensors(file, big), /cannot write .*weights\.safetensors: ENOSPC.*the disk is full/);
      expectUnchanged(dir, before);
      assert.deepEqual(Array.from(readSafetensors(file).tensors.get("w")!.data), [1, 2, 3, 4]);
      assert.throws(() => writeFileAtomic(path.join(dir, "new.bin"), new Uint8Array(1 << 20)), /Nothing was written/);
      assert.deepEqual(files(dir), ["weights.safetensors"]);
      const log = path.join(dir, "results.jsonl");
      appendFileDurable(log, "one\n");
      assert.throws(() => appendFileDurable(log, "x".repeat(1 << 20)), /the disk is full/);
      assert.equal(fs.readFileSync(log, "utf8"), "one\n");
    } finally {
      unmount();
    }
  });

  it("predict on a full disk exits non-zero and keeps the previous prediction", () => {
    const ck = smokeFiles();
    const { dir, unmount } = mountTmpfs("full-predict", "512k");
    try {
      const image = bad.niftiFile(dir, "image.nii.gz");
      const out = path.join(dir, "seg.nii"); // uncompressed: 16 KB of labels, more than we leave free
      fs.writeFileSync(out, "the previous prediction");
      fillDisk(dir, 4096);
      const before = snapshot(dir);
      const r = runCli(["predict", "--checkpoint", ck.best, "--image", image, "--out", out]);
      expectRefused(r, /cannot write .*seg\.nii/, /the disk is full/, /previous .*seg\.nii is unchanged/);
      expectUnchanged(dir, before);
    } finally {
      unmount();
    }
  });

  it("a study on a full disk exits non-zero and leaves no partial checkpoint under a final name", () => {
    const { dir, unmount } = mountTmpfs("full-study", "3m");
    try {
      const out = path.join(dir, "study");
      const r = runCli(["study", "--profile", "smoke", "--out", out], { timeoutMs: 120_000 });
      expectRefused(r, /cannot write .*\.safetensors/, /the disk is full/);
      const left = files(dir);
      assert.deepEqual(
        left.filter((f) => f.endsWith(".tmp")),
        [],
        "temporary files left behind",
      );
      for (const f of left.filter((f) => f.endsWith(".safetensors"))) readSafetensors(path.join(dir, f)); // complete
    } finally {
      unmount();
    }
  });
});
