import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { spawnSync } from "child_process";
import {
  LOCK_FILE_NAME,
  LockHolder,
  acquireRunLock,
  lockState,
  readLockHolder,
  withRunLock,
} from "../../src/runtime/lock";

/** A lock file as another process would have left it. */
function plant(dir: string, over: Partial<LockHolder>): string {
  fs.mkdirSync(dir, { recursive: true });
  const holder: LockHolder = {
    pid: process.pid,
    host: os.hostname(),
    started: "2026-01-01T00:00:00.000Z",
    command: "mae-nnformer study --profile smoke --out x",
    cwd: "/",
    token: "planted",
    ...over,
  };
  const file = path.join(dir, LOCK_FILE_NAME);
  fs.writeFileSync(file, JSON.stringify(holder));
  return file;
}

/** The pid of a process that has exited (and, pid reuse aside, is not alive). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

describe("runtime/lock", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "lock-test-"));
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it("takes the lock, records who holds it, and removes it on release", () => {
    const dir = path.join(root, "a", "run");
    const lock = acquireRunLock(dir, { command: "study --out a/run" });
    const h = readLockHolder(path.join(dir, LOCK_FILE_NAME))!;
    assert.equal(h.pid, process.pid);
    assert.equal(h.host, os.hostname());
    assert.equal(h.command, "study --out a/run");
    assert.ok(!Number.isNaN(Date.parse(h.started)));
    assert.equal(lockState(h), "live");
    lock.release();
    lock.release();
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it("refuses a second writer in the same process", () => {
    const dir = path.join(root, "same");
    const lock = acquireRunLock(dir);
    try {
      assert.throws(() => acquireRunLock(dir), /same is already in use by this process/);
    } finally {
      lock.release();
    }
  });

  it("refuses a folder held by a live process, naming pid, host, start and command", () => {
    const dir = path.join(root, "live");
    // The parent of this test process is alive for as long as we are.
    const file = plant(dir, { pid: process.ppid, token: "other", procStart: undefined });
    assert.throws(
      () => acquireRunLock(dir),
      (e: Error) => {
        assert.match(e.message, /live is in use by another run/);
        assert.match(e.message, new RegExp(`pid ${process.ppid} on host ${os.hostname()}`));
        assert.match(e.message, /started 2026-01-01T00:00:00\.000Z/);
        assert.match(e.message, /command: mae-nnformer study --profile smoke --out x/);
        assert.match(e.message, /wait for it to finish or stop it, or choose another output folder/);
        return true;
      },
    );
    assert.equal(readLockHolder(file)!.token, "other", "the holder's lock is untouched");
  });

  it("takes over a lock whose process is dead, saying so", () => {
    const dir = path.join(root, "dead");
    plant(dir, { pid: deadPid() });
    const messages: string[] = [];
    const lock = acquireRunLock(dir, { onStale: (m) => messages.push(m) });
    assert.equal(readLockHolder(lock.file)!.pid, process.pid);
    assert.match(messages.join("\n"), /took over a stale lock .*dead.*no such process/);
    lock.release();
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it("takes over a lock whose pid now belongs to a younger process (Linux)", function () {
    if (!fs.existsSync(`/proc/${process.pid}/stat`)) {
      console.log("      (skipped: no /proc/<pid>/stat on this system)");
      this.skip();
    }
    const dir = path.join(root, "reused");
    plant(dir, { pid: process.ppid, procStart: "1" });
    const lock = acquireRunLock(dir, { onStale: () => {} });
    lock.release();
  });

  it("never takes over a lock of another host, and says how to proceed", () => {
    const dir = path.join(root, "remote");
    const file = plant(dir, { pid: 1, host: "some-other-host" });
    assert.throws(
      () => acquireRunLock(dir),
      new RegExp(`pid 1 on host some-other-host.*once that run is over \\(or if it crashed\\), delete ${file}`),
    );
  });

  it("refuses an unreadable lock file, naming it", () => {
    const dir = path.join(root, "garbage");
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, LOCK_FILE_NAME), "not json");
    assert.throws(() => acquireRunLock(dir), /lock file .*garbage\/run\.lock is not a lock written by this kit/);
  });

  it("withRunLock releases the lock when the work throws", async () => {
    const dir = path.join(root, "throws");
    await assert.rejects(
      withRunLock(dir, async () => {
        assert.ok(fs.existsSync(path.join(dir, LOCK_FILE_NAME)));
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.equal(fs.existsSync(path.join(dir, LOCK_FILE_NAME)), false);
  });

  it("a process that exits or gets SIGTERM leaves no lock behind", () => {
    const lockModule = path.resolve(__dirname, "../../src/runtime/lock.ts");
    for (const how of ["exit", "SIGTERM"]) {
      const dir = path.join(root, `child-${how}`);
      const code =
        `const { acquireRunLock } = require(${JSON.stringify(lockModule)});` +
        `acquireRunLock(${JSON.stringify(dir)});` +
        (how === "exit" ? "process.exit(0);" : "process.kill(process.pid, 'SIGTERM'); setTimeout(() => {}, 5000);");
      const r = spawnSync(process.execPath, ["--require", "tsx/cjs", "-e", code], { encoding: "utf8" });
      if (how === "SIGTERM") assert.equal(r.signal, "SIGTERM", r.stderr);
      else assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(fs.readdirSync(dir), [], `${how}: ${r.stderr}`);
    }
  });
});
