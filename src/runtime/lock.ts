// One writer per run folder. A run takes `<folder>/run.lock` before it writes anything there and removes it when it
// ends (normally, by an exception, or on SIGINT/SIGTERM/SIGHUP). A second process that wants the same folder is
// refused with a message naming the holder: pid, host, command and start time.
//
// A lock left behind by a process that died (kill -9, power cut) is stale and is taken over. The rule:
// - same host (os.hostname()): stale when the machine has rebooted since (Linux boot id differs), when no process
//   with that pid is alive, or when the pid now belongs to a younger process (Linux: /proc/<pid>/stat start time);
// - another host: never stale automatically, because we cannot see its processes. The message says to delete the
//   lock file once that run is known to be over.
// The lock file appears complete or not at all: it is written to a temporary file and hard-linked into place
// (link fails if the name exists, so two processes cannot both create it).
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as crypto from "crypto";
import { ensureDir, fsyncDir, writeAll } from "./files";

/** Name of the lock file inside a run folder. */
export const LOCK_FILE_NAME = "run.lock";

/** What a lock file records about the process holding it. */
export interface LockHolder {
  pid: number;
  host: string;
  /** Linux boot id (/proc/sys/kernel/random/boot_id) when known. */
  bootId?: string;
  /** Start time of the process in clock ticks since boot (Linux /proc/<pid>/stat field 22) when known. */
  procStart?: string;
  /** ISO time the lock was taken. */
  started: string;
  /** The command line, for people reading the message. */
  command: string;
  cwd: string;
  /** Random identity of this particular lock, so that release never removes someone else's. */
  token: string;
}

/** Why a lock found in a folder can or cannot be taken over. */
export type LockState = "live" | "dead-pid" | "pid-reused" | "rebooted" | "other-host";

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

function bootId(): string | undefined {
  return readText("/proc/sys/kernel/random/boot_id")?.trim() || undefined;
}

/** Field 22 (starttime) of /proc/<pid>/stat; the command name in field 2 may hold spaces, so count after ")". */
function procStart(pid: number): string | undefined {
  const s = readText(`/proc/${pid}/stat`);
  if (!s) return undefined;
  const fields = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return fields[19]; // field 3 is fields[0], so field 22 is fields[19]
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}

/** Applies the staleness rule above to a holder. */
export function lockState(h: LockHolder): LockState {
  if (h.host !== os.hostname()) return "other-host";
  const boot = bootId();
  if (h.bootId && boot && h.bootId !== boot) return "rebooted";
  if (!pidAlive(h.pid)) return "dead-pid";
  if (h.procStart) {
    const now = procStart(h.pid);
    if (now !== undefined && now !== h.procStart) return "pid-reused";
  }
  return "live";
}

/** Parses a lock file; undefined when it is missing, throws naming the file when it is unreadable. */
export function readLockHolder(file: string): LockHolder | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`cannot read lock file ${file}: ${(e as Error).message}`);
  }
  let h: Partial<LockHolder>;
  try {
    h = JSON.parse(text);
  } catch {
    h = {};
  }
  if (!h || typeof h !== "object" || !Number.isInteger(h.pid) || typeof h.host !== "string") {
    throw new Error(
      `lock file ${file} is not a lock written by this kit (${JSON.stringify(text.slice(0, 80))}); ` +
        `if no other run uses this folder, delete the file and run again`,
    );
  }
  return h as LockHolder;
}

/** "pid 123 on host h (started ..., command ...)". */
export function describeHolder(h: LockHolder): string {
  return `pid ${h.pid} on host ${h.host}, started ${h.started}, command: ${h.command}`;
}

function commandLine(): string {
  const [node, script, ...args] = process.argv;
  const prog = script ? path.relative(process.cwd(), script) || script : path.basename(node ?? "node");
  return [prog, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(" ");
}

const held = new Map<string, RunLock>();
const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
const signalHandlers = new Map<NodeJS.Signals, () => void>();

function releaseAll(): void {
  for (const lock of [...held.values()]) lock.release();
}

function onExit(): void {
  releaseAll();
}

/** Installs exit and signal handlers while at least one lock is held; signals we handle are re-raised afterwards. */
function installHandlers(): void {
  if (held.size !== 1) return; // the first lock installs them
  process.on("exit", onExit);
  for (const sig of signals) {
    // Leave signals that someone else already handles (a notebook kernel, a test runner) to them: adding a listener
    // would change what the signal does. Their finally blocks and our exit handler still release the lock.
    if (process.listenerCount(sig) > 0) continue;
    const handler = () => {
      releaseAll();
      removeHandlers();
      process.kill(process.pid, sig); // no listener left: the default action (terminate) now happens
    };
    signalHandlers.set(sig, handler);
    process.on(sig, handler);
  }
}

function removeHandlers(): void {
  process.removeListener("exit", onExit);
  for (const [sig, handler] of signalHandlers) process.removeListener(sig, handler);
  signalHandlers.clear();
}

/** A lock held by this process on a run folder. */
export class RunLock {
  private released = false;
  constructor(
    /** The lock file. */
    readonly file: string,
    readonly holder: LockHolder,
  ) {}

  /** Removes the lock file if it is still ours. Safe to call more than once. */
  release(): void {
    if (this.released) return;
    this.released = true;
    held.delete(this.file);
    if (held.size === 0) removeHandlers();
    try {
      if (readLockHolder(this.file)?.token === this.holder.token) fs.rmSync(this.file, { force: true });
    } catch {
      // an unreadable lock file is not ours to remove
    }
  }
}

function refusal(dir: string, file: string, h: LockHolder, state: LockState): Error {
  const how =
    state === "other-host"
      ? `we cannot check a process on another host; once that run is over (or if it crashed), delete ${file}`
      : `wait for it to finish or stop it, or choose another output folder`;
  return new Error(`${dir} is in use by another run (${describeHolder(h)}); ${how}`);
}

export interface AcquireLockOptions {
  /** Recorded for the message another process shows; default this process's command line. */
  command?: string;
}

/**
 * Takes the lock of run folder `dir` (creating the folder), or throws naming the process that holds it.
 * A stale lock (see the top of this file) is taken over and reported through `onStale`.
 */
export function acquireRunLock(
  dir: string,
  options: AcquireLockOptions & { onStale?: (message: string) => void } = {},
): RunLock {
  ensureDir(dir, `run folder ${dir}`);
  const file = path.join(path.resolve(dir), LOCK_FILE_NAME);
  if (held.has(file)) throw new Error(`${dir} is already in use by this process (lock ${file})`);
  const holder: LockHolder = {
    pid: process.pid,
    host: os.hostname(),
    bootId: bootId(),
    procStart: procStart(process.pid),
    started: new Date().toISOString(),
    command: options.command ?? commandLine(),
    cwd: process.cwd(),
    token: crypto.randomBytes(8).toString("hex"),
  };
  const tmp = path.join(path.dirname(file), `.${LOCK_FILE_NAME}.${process.pid}.${holder.token}.tmp`);
  const fd = fs.openSync(tmp, "wx");
  try {
    writeAll(fd, Buffer.from(JSON.stringify(holder, null, 2) + "\n", "utf8"));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        createExclusive(tmp, file);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
          throw new Error(`cannot create lock file ${file}: ${(e as Error).message}`);
        }
      }
      const other = readLockHolder(file);
      if (!other) continue; // released between link and read: try again
      const state = lockState(other);
      if (state === "live" || state === "other-host" || attempt >= 3) throw refusal(dir, file, other, state);
      takeOverStale(file, other, state, options.onStale);
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  fsyncDir(path.dirname(file));
  const lock = new RunLock(file, holder);
  held.set(file, lock);
  installHandlers();
  return lock;
}

/** Puts the complete file `tmp` at `file` unless `file` exists (EEXIST then). Filesystems without hard links get an
 * exclusive create and a copy, which another process may see empty for a moment (it then reads an unparsable lock
 * and is refused with a message rather than taking the folder). */
function createExclusive(tmp: string, file: string): void {
  try {
    fs.linkSync(tmp, file);
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS") throw e;
  }
  const fd = fs.openSync(file, "wx");
  try {
    writeAll(fd, fs.readFileSync(tmp));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Moves a stale lock aside. Two processes may both judge the same lock stale; the one that renames second would
 * then move the first one's fresh lock, so it checks what it moved and puts a lock that is not the stale one back.
 */
function takeOverStale(file: string, stale: LockHolder, state: LockState, onStale?: (m: string) => void): void {
  const aside = `${file}.stale.${process.pid}.${crypto.randomBytes(4).toString("hex")}`;
  try {
    fs.renameSync(file, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return; // someone else moved it
    throw new Error(`cannot remove stale lock ${file}: ${(e as Error).message}`);
  }
  let moved: LockHolder | undefined;
  try {
    moved = readLockHolder(aside);
  } catch {
    moved = undefined;
  }
  if (moved && moved.token !== stale.token) {
    try {
      fs.linkSync(aside, file);
    } catch {
      // a third process took the name meanwhile; the next attempt reads it
    }
    fs.rmSync(aside, { force: true });
    return;
  }
  fs.rmSync(aside, { force: true });
  const why = { "dead-pid": "no such process", "pid-reused": "pid now used by another process", rebooted: "rebooted" };
  onStale?.(
    `took over a stale lock in ${path.dirname(file)} (${describeHolder(stale)}: ${why[state as keyof typeof why]})`,
  );
}

/** Runs `fn` holding the lock of `dir`, and releases it afterwards whatever happens. */
export async function withRunLock<T>(dir: string, fn: () => Promise<T>, options: AcquireLockOptions = {}): Promise<T> {
  const lock = acquireRunLock(dir, { ...options, onStale: (m) => console.warn(m) });
  try {
    return await fn();
  } finally {
    lock.release();
  }
}
