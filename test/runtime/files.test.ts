import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  appendFileDurable,
  assertReadableFile,
  assertWritableDir,
  assertWritableFile,
  ensureDir,
  pseudoFilesystem,
  removeLeftoverTempFiles,
  writeFileAtomic,
} from "../../src/runtime/files";

/** The form of fs.writeSync the code under test uses. */
type RawWrite = (fd: number, buf: Uint8Array, off: number, len: number) => number;
// The module object itself: the namespace import above only has getters onto it.
const fsModule: { writeSync: unknown } = require("fs");

/** Runs `fn` with fs.writeSync replaced by `fake` (which gets the real one), restoring it afterwards. */
function withWriteSync<T>(
  fake: (real: RawWrite, fd: number, buf: Uint8Array, off: number, len: number) => number,
  fn: () => T,
): T {
  const real = fsModule.writeSync as RawWrite;
  fsModule.writeSync = (fd: number, buf: Uint8Array, off: number, len: number) => fake(real, fd, buf, off, len);
  try {
    return fn();
  } finally {
    fsModule.writeSync = real;
  }
}

function enospc(): Error {
  return Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
}

const leftovers = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith(".tmp"));

describe("runtime/files", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "files-test-"));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("writes and replaces a file, creating parent folders, leaving no temporary file", () => {
    const file = path.join(dir, "a", "b", "c.txt");
    writeFileAtomic(file, "one");
    writeFileAtomic(file, new Uint8Array([116, 119, 111]));
    assert.equal(fs.readFileSync(file, "utf8"), "two");
    assert.deepEqual(leftovers(path.dirname(file)), []);
  });

  it("loops over short writes until every byte is written", () => {
    const file = path.join(dir, "short.bin");
    const data = new Uint8Array(1000).map((_, i) => i % 251);
    let calls = 0;
    withWriteSync(
      (real, fd, buf, off, len) => {
        calls++;
        return real(fd, buf, off, Math.min(7, len));
      },
      () => writeFileAtomic(file, data),
    );
    assert.ok(calls >= 143, `expected many short writes, got ${calls}`);
    assert.deepEqual(new Uint8Array(fs.readFileSync(file)), data);
  });

  it("a full disk mid-write keeps the old file, removes the temporary file and says the disk is full", () => {
    const file = path.join(dir, "keep.bin");
    writeFileAtomic(file, "the good old contents");
    let written = 0;
    assert.throws(
      () =>
        withWriteSync(
          (real, fd, buf, off, len) => {
            if (written >= 4096) throw enospc();
            const n = real(fd, buf, off, Math.min(4096 - written, len));
            written += n;
            return n;
          },
          () => writeFileAtomic(file, new Uint8Array(10000)),
        ),
      (e: Error) => {
        assert.match(e.message, /cannot write .*keep\.bin/);
        assert.match(e.message, /after 4096 of 10000 bytes/);
        assert.match(e.message, /disk is full/);
        assert.match(e.message, /previous .*keep\.bin is unchanged/);
        return true;
      },
    );
    assert.equal(fs.readFileSync(file, "utf8"), "the good old contents");
    assert.deepEqual(leftovers(dir), []);
  });

  it("a write that makes no progress is an error, not an endless loop", () => {
    const file = path.join(dir, "zero.bin");
    assert.throws(
      () =>
        withWriteSync(
          () => 0,
          () => writeFileAtomic(file, "abc"),
        ),
      /cannot write .*zero\.bin: the system wrote 0 bytes at byte 0 of 3/,
    );
    assert.equal(fs.existsSync(file), false);
    assert.deepEqual(leftovers(dir), []);
  });

  it("refuses a target that is a folder, naming it", () => {
    const sub = path.join(dir, "is-a-folder");
    fs.mkdirSync(sub);
    assert.throws(() => writeFileAtomic(sub, "x"), /cannot write .*is-a-folder: it is a folder/);
    assert.throws(() => assertWritableFile(sub, "--json"), /--json .*is-a-folder is a folder; give the path of a file/);
  });

  it("refuses a file where a parent folder should be", () => {
    const blocker = path.join(dir, "blocker");
    fs.writeFileSync(blocker, "");
    assert.throws(() => writeFileAtomic(path.join(blocker, "x", "y.txt"), "z"), /blocker is a file, not a folder/);
    assert.throws(
      () => ensureDir(path.join(blocker, "q"), "--out"),
      /^Error: --out: .*blocker is a file, not a folder/,
    );
    assert.throws(
      () => assertWritableDir(path.join(blocker, "q")),
      /^Error: output folder .*q is not writable: .*blocker is a file, not a folder/,
    );
  });

  it("refuses pseudo filesystems at once instead of hanging in a recursive mkdir", function () {
    if (!fs.existsSync("/proc/self")) {
      console.log("      (skipped: no /proc on this system)");
      this.skip();
    }
    const t0 = Date.now();
    assert.equal(pseudoFilesystem("/proc/x/y"), "proc");
    assert.throws(() => ensureDir("/proc/x", "--out /proc/x"), /--out \/proc\/x: \/proc\/x is on the proc pseudo/);
    assert.throws(
      () => assertWritableDir("/proc/x/y", "--out /proc/x/y"),
      /^Error: --out \/proc\/x\/y is not writable: \/proc\/x\/y is on the proc pseudo filesystem/,
    );
    assert.throws(() => writeFileAtomic("/proc/x/seg.nii.gz", "x"), /cannot write \/proc\/x\/seg\.nii\.gz/);
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(pseudoFilesystem(dir), undefined);
  });

  it("assertWritableDir creates the folder and leaves nothing behind", () => {
    const sub = path.join(dir, "out", "deep");
    assertWritableDir(sub);
    assert.deepEqual(fs.readdirSync(sub), []);
  });

  it("assertReadableFile names the flag, the path and the fix", () => {
    assert.throws(
      () => assertReadableFile(path.join(dir, "nope.safetensors"), "--mae-checkpoint", "checkpoint"),
      /--mae-checkpoint .*nope\.safetensors: no such checkpoint; check the path/,
    );
    assert.throws(
      () => assertReadableFile(dir, "--image", "NIfTI file"),
      /--image .* is a folder; give the path of a NIfTI file/,
    );
  });

  it("appendFileDurable appends whole lines, and cuts a partial append off again", () => {
    const file = path.join(dir, "log", "results.jsonl");
    appendFileDurable(file, "line 1\n");
    appendFileDurable(file, "line 2\n");
    let first = true;
    assert.throws(
      () =>
        withWriteSync(
          (real, fd, buf, off) => {
            if (!first) throw enospc();
            first = false;
            return real(fd, buf, off, 3);
          },
          () => appendFileDurable(file, "line 3 that does not fit\n"),
        ),
      /cannot write .*results\.jsonl: ENOSPC.* after 3 of 25 bytes; the disk is full/,
    );
    assert.equal(fs.readFileSync(file, "utf8"), "line 1\nline 2\n");
  });

  it("removeLeftoverTempFiles removes other processes' temporary files only", () => {
    const run = path.join(dir, "run");
    fs.mkdirSync(path.join(run, "cell"), { recursive: true });
    const theirs = [
      path.join(run, ".latest.safetensors.999999.3.tmp"),
      path.join(run, "cell", ".best.safetensors.12.1.tmp"),
    ];
    const ours = path.join(run, `.results.jsonl.${process.pid}.1.tmp`);
    const keep = [path.join(run, "cell", "best.safetensors"), path.join(run, "notes.tmp"), ours];
    for (const f of [...theirs, ...keep]) fs.writeFileSync(f, "x");
    assert.deepEqual(removeLeftoverTempFiles(run).sort(), theirs.sort());
    for (const f of keep) assert.ok(fs.existsSync(f), f);
    for (const f of theirs) assert.ok(!fs.existsSync(f), f);
  });
});
