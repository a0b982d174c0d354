// Durable, atomic writes and up-front path checks.
//
// writeFileAtomic writes to a temporary file beside the target, loops until every byte is written, fsyncs the file,
// renames it over the target and fsyncs the folder. A crash or a full disk therefore never leaves half a file under
// the final name, and an older file at that path survives until the new one is complete.
//
// Folders are created one level at a time (ensureDir) rather than with fs.mkdirSync(..., { recursive: true }):
// on Node 20 a recursive mkdir below /proc loops forever (mkdir answers ENOENT, so it retries the parent, which
// exists), so `--out /proc/x` used to hang. We look for the deepest existing ancestor first and refuse pseudo
// filesystems (proc, sysfs, ...) by their statfs type.
import * as fs from "fs";
import * as path from "path";

/** statfs f_type values of Linux pseudo filesystems nobody means to write results into. */
const PSEUDO_FS: Record<number, string> = {
  0x9fa0: "proc",
  0x62656572: "sysfs",
  0x1cd1: "devpts",
  0x64626720: "debugfs",
  0x27e0eb: "cgroup",
  0x63677270: "cgroup2",
  0x73636673: "securityfs",
  0x74726163: "tracefs",
  0x6165676c: "pstore",
  0xcafe4a11: "bpf",
};

function errorCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The name of the pseudo filesystem `p` lives on (proc, sysfs, ...), or undefined for an ordinary one. */
export function pseudoFilesystem(p: string): string | undefined {
  const resolved = path.resolve(p);
  // statfs is the real test; the prefix check covers platforms without it (and is what people mean anyway).
  try {
    const type = Number(fs.statfsSync(resolved).type);
    if (PSEUDO_FS[type]) return PSEUDO_FS[type];
  } catch {
    // fall through to the prefix check
  }
  for (const [prefix, name] of [
    ["/proc", "proc"],
    ["/sys", "sysfs"],
  ] as const) {
    if (resolved === prefix || resolved.startsWith(prefix + "/")) return name;
  }
  return undefined;
}

/** The deepest folder that exists on the way to `p` (p itself when it exists); throws if a file is in the way. */
function deepestExisting(p: string, what: string): string {
  let cur = path.resolve(p);
  for (;;) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(cur);
    } catch (e) {
      const code = errorCode(e);
      if (code !== "ENOENT" && code !== "ENOTDIR") throw new Error(`${what}: cannot look at ${cur}: ${reason(e)}`);
    }
    if (st) {
      if (!st.isDirectory())
        throw new Error(
          `${what}: ${cur} is a file, not a folder, so ${p} cannot be created there; choose another path`,
        );
      return cur;
    }
    const parent = path.dirname(cur);
    if (parent === cur) throw new Error(`${what}: no part of ${p} exists`); // unreachable: "/" always exists
    cur = parent;
  }
}

/**
 * Creates `dir` and any missing parents, one level at a time, after checking that the deepest existing ancestor is
 * a writable folder on a real filesystem. `what` starts every error (e.g. "--out runs/x").
 */
export function ensureDir(dir: string, what = `folder ${dir}`): void {
  const target = path.resolve(dir);
  const base = deepestExisting(target, what);
  const pseudo = pseudoFilesystem(base);
  if (pseudo) {
    throw new Error(
      `${what}: ${dir} is on the ${pseudo} pseudo filesystem (${base}), where files cannot be written; choose a folder on a disk`,
    );
  }
  if (base === target) return;
  try {
    fs.accessSync(base, fs.constants.W_OK);
  } catch {
    throw new Error(`${what}: cannot create ${dir}: ${base} is not writable for this user; choose another folder`);
  }
  const missing = path.relative(base, target).split(path.sep);
  let cur = base;
  for (const part of missing) {
    cur = path.join(cur, part);
    try {
      fs.mkdirSync(cur);
    } catch (e) {
      if (errorCode(e) === "EEXIST" && fs.statSync(cur).isDirectory()) continue; // made by someone else meanwhile
      throw new Error(`${what}: cannot create folder ${cur}: ${reason(e)}`);
    }
  }
}

/** fsync a folder so that a rename or a new entry in it survives a power cut. Platforms that cannot are skipped. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, "r");
    fs.fsyncSync(fd);
  } catch (e) {
    // Windows cannot open folders; some filesystems refuse fsync on them. Neither is a failed write.
    if (!["EISDIR", "EPERM", "EINVAL", "ENOTSUP", "EACCES", "EBADF"].includes(errorCode(e) ?? "")) {
      throw new Error(`cannot fsync folder ${dir}: ${reason(e)}`);
    }
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Writes all of `buf` to `fd`, looping over short writes; throws on a write that makes no progress. */
export function writeAll(fd: number, buf: Uint8Array): void {
  let off = 0;
  while (off < buf.length) {
    let n: number;
    try {
      n = fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { bytesWritten?: number };
      err.bytesWritten = off;
      throw err;
    }
    if (!(n > 0)) {
      const err = new Error(`the system wrote 0 bytes at byte ${off} of ${buf.length}`) as Error & {
        bytesWritten?: number;
      };
      err.bytesWritten = off;
      throw err;
    }
    off += n;
  }
}

/** The error a failed write of `file` is reported with: what happened, how far it got, and what to do. */
function writeError(file: string, total: number, e: unknown): Error {
  const code = errorCode(e);
  const done = (e as { bytesWritten?: number }).bytesWritten;
  const progress = done !== undefined ? ` after ${done} of ${total} bytes` : "";
  const kept = fs.existsSync(file) ? ` The previous ${file} is unchanged.` : ` Nothing was written under that name.`;
  let fix = "check the folder and try again";
  if (code === "ENOSPC" || code === "EDQUOT") fix = "the disk is full: free some space or choose another output folder";
  else if (code === "EACCES" || code === "EPERM" || code === "EROFS") fix = "choose a folder you can write to";
  else if (code === "EISDIR") fix = "that path is a folder; give a file name";
  return new Error(`cannot write ${file}: ${reason(e)}${progress}; ${fix}.${kept}`, { cause: e });
}

let tempCounter = 0;

/** Write bytes or text to `file` atomically and durably, creating parent folders. Throws a clear error on failure. */
export function writeFileAtomic(file: string, data: Uint8Array | string): void {
  const target = path.resolve(file);
  const dir = path.dirname(target);
  const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  try {
    if (fs.statSync(target).isDirectory())
      throw new Error(`cannot write ${file}: it is a folder; give the path of a file inside it or another name`);
  } catch (e) {
    if (errorCode(e) !== "ENOENT" && errorCode(e) !== "ENOTDIR") throw e;
  }
  ensureDir(dir, `cannot write ${file}`);
  // pid + counter make the name unique within the machine; "wx" refuses to reuse a leftover.
  const tmp = path.join(dir, `.${path.basename(target)}.${process.pid}.${++tempCounter}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, "wx");
    writeAll(fd, buf);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, target);
  } catch (e) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // already failing; the temp file is removed below
      }
    }
    fs.rmSync(tmp, { force: true });
    throw writeError(file, buf.length, e);
  }
  fsyncDir(dir);
}

/** Temporary files writeFileAtomic makes: ".<name>.<pid>.<n>.tmp". */
const TEMP_FILE = /^\..+\.(\d+)\.\d+\.tmp$/;

/**
 * Removes temporary files left under `dir` by writers that were killed before they could clean up (kill -9, power
 * cut). Call it only while holding the folder's lock: then no other process writes there, and every temporary file
 * not made by this process is a leftover. Returns the files removed.
 */
export function removeLeftoverTempFiles(dir: string): string[] {
  const removed: string[] = [];
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const m = TEMP_FILE.exec(e.name);
        if (m && Number(m[1]) !== process.pid) {
          fs.rmSync(p, { force: true });
          removed.push(p);
        }
      }
    }
  };
  walk(dir);
  return removed;
}

/** Appends `text` to `file` (creating it and its folder), looping until written, then fsyncs. */
export function appendFileDurable(file: string, text: string): void {
  const target = path.resolve(file);
  ensureDir(path.dirname(target), `cannot append to ${file}`);
  const buf = Buffer.from(text, "utf8");
  const existed = fs.existsSync(target);
  let fd: number | undefined;
  let size = 0;
  try {
    fd = fs.openSync(target, "a");
    size = fs.fstatSync(fd).size;
    writeAll(fd, buf);
    fs.fsyncSync(fd);
  } catch (e) {
    // Cut a partial append off again so that the file ends where it ended before.
    if (fd !== undefined) {
      try {
        fs.ftruncateSync(fd, size);
      } catch {
        // nothing more we can do; the reader tolerates an incomplete last line
      }
    }
    throw writeError(file, buf.length, e);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  if (!existed) fsyncDir(path.dirname(target));
}

/**
 * Throws a clear error unless `dir` exists (or can be made) and is writable: "<what> is not writable: <why>; <fix>".
 * Call it before long jobs.
 */
export function assertWritableDir(dir: string, what = `output folder ${dir}`): void {
  const prefix = `${what} is not writable`;
  ensureDir(dir, prefix);
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    throw new Error(`${prefix}: ${reason(e)}`);
  }
  if (!st.isDirectory()) throw new Error(`${prefix}: ${dir} is a file, not a folder; choose a folder`);
  const probe = path.join(dir, `.write-probe-${process.pid}-${++tempCounter}`);
  try {
    fs.writeFileSync(probe, "");
  } catch (e) {
    throw new Error(`${prefix}: ${reason(e)}; choose another folder`);
  } finally {
    fs.rmSync(probe, { force: true });
  }
}

/**
 * Throws a clear error unless `file` can be written later: it is not a folder, and its folder exists (or can be
 * made) and is writable. `flag` names the option (e.g. "--json") in the message.
 */
export function assertWritableFile(file: string, flag: string): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(file);
  } catch (e) {
    if (errorCode(e) !== "ENOENT" && errorCode(e) !== "ENOTDIR") throw new Error(`${flag} ${file}: ${reason(e)}`);
  }
  if (st?.isDirectory())
    throw new Error(`${flag} ${file} is a folder; give the path of a file (e.g. ${path.join(file, "out.json")})`);
  if (st && !st.isFile()) throw new Error(`${flag} ${file} is not a regular file; give the path of a file`);
  assertWritableDir(path.dirname(path.resolve(file)), `${flag} ${file}`);
}

/** Throws a clear error unless `file` is an existing regular file; `flag` and `what` make the message. */
export function assertReadableFile(file: string, flag: string, what = "file"): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new Error(`${flag} ${file}: no such ${what}; check the path (relative paths start at ${process.cwd()})`);
  }
  if (st.isDirectory()) throw new Error(`${flag} ${file} is a folder; give the path of a ${what}`);
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch {
    throw new Error(`${flag} ${file}: the ${what} is not readable for this user`);
  }
}
