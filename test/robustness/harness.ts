// The robustness suite's tools: run the real command line in a child process, check that a bad input is refused
// the way a user deserves (non-zero exit, a message naming the culprit, no stack trace, no file changed), and a
// shared smoke study that several cases reuse (one run of about 5 s instead of one per case).
import { strict as assert } from "assert";
import { spawn, spawnSync, ChildProcess } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { getProfile } from "../../src/study/profiles";
import { runFolder } from "../../src/train/recipe";

export const ROOT = path.resolve(__dirname, "../..");
const CLI = path.join(ROOT, "src/cli/main.ts");

/** One temporary folder per test process for the whole suite, removed when the process exits. */
let scratchRoot: string | undefined;
export function scratch(name: string): string {
  if (!scratchRoot) {
    scratchRoot = fs.mkdtempSync(path.join(os.tmpdir(), "robustness-"));
    const root = scratchRoot;
    process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));
  }
  const dir = path.join(scratchRoot, name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export interface CliResult {
  args: string[];
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const cliEnv = () => ({ ...process.env, MAE_NNFORMER_BACKEND: process.env.MAE_NNFORMER_BACKEND ?? "wasm" });

/** Runs `mae-nnformer ...args` to completion (node with tsx, as `npx tsx src/cli/main.ts`), in `cwd`. */
export function runCli(args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): CliResult {
  const r = spawnSync(process.execPath, ["--require", "tsx/cjs", CLI, ...args], {
    cwd: opts.cwd ?? ROOT,
    encoding: "utf8",
    timeout: opts.timeoutMs ?? 60_000,
    env: cliEnv(),
  });
  if (r.error) throw new Error(`could not run mae-nnformer ${args.join(" ")}: ${r.error.message}`);
  return { args, status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Starts `mae-nnformer ...args` without waiting; stdout and stderr are collected on the returned object. */
export function startCli(args: string[], opts: { cwd?: string } = {}): ChildProcess & { out: string; err: string } {
  const child = spawn(process.execPath, ["--require", "tsx/cjs", CLI, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: cliEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  }) as ChildProcess & { out: string; err: string };
  child.out = "";
  child.err = "";
  child.stdout!.on("data", (d) => (child.out += d));
  child.stderr!.on("data", (d) => (child.err += d));
  return child;
}

/** Resolves with the exit code (or signal) of a started child. */
export function exited(child: ChildProcess): Promise<{ status: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ status: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once("exit", (status, signal) => resolve({ status, signal })));
}

/** A line of a V8 stack trace ("    at fn (file.ts:12:3)"). */
const STACK_LINE = /^\s+at .+(\(.+:\d+:\d+\)|:\d+:\d+)$/m;

/**
 * Asserts that the command failed cleanly: it exited (no signal) with a non-zero status, its stderr matches every
 * pattern (the culprit: file, field, flag, value), and it printed no stack trace.
 */
export function expectRefused(r: CliResult, ...patterns: RegExp[]): void {
  const shown = `mae-nnformer ${r.args.join(" ")}\n--- stderr ---\n${r.stderr}\n--- stdout (tail) ---\n${r.stdout.slice(-800)}`;
  assert.equal(r.signal, null, `killed by ${r.signal}: ${shown}`);
  assert.notEqual(r.status, 0, `exited 0 but should have refused: ${shown}`);
  for (const p of patterns) assert.match(r.stderr, p, `stderr does not name the culprit (${p}): ${shown}`);
  assert.doesNotMatch(r.stderr, STACK_LINE, `stack trace printed: ${shown}`);
  assert.doesNotMatch(r.stderr + r.stdout, /\bat Object\.<anonymous>|node:internal/, `internals printed: ${shown}`);
}

/** Asserts that the command succeeded. */
export function expectOk(r: CliResult): void {
  assert.equal(
    r.status,
    0,
    `mae-nnformer ${r.args.join(" ")} failed (${r.signal ?? r.status}):\n${r.stderr}\n${r.stdout.slice(-2000)}`,
  );
}

/** Path (relative to `dir`) -> SHA-256 of every file under `dir`. */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile())
        out.set(path.relative(dir, p), crypto.createHash("sha256").update(fs.readFileSync(p)).digest("hex"));
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out;
}

/** Asserts that every file of `before` is still there, byte for byte, and (unless `allowNew`) nothing was added. */
export function expectUnchanged(
  dir: string,
  before: Map<string, string>,
  allowNew: (rel: string) => boolean = () => false,
): void {
  const after = snapshot(dir);
  for (const [rel, hash] of before) {
    assert.ok(after.has(rel), `${rel} was removed from ${dir}`);
    assert.equal(after.get(rel), hash, `${rel} in ${dir} changed`);
  }
  const added = [...after.keys()].filter((rel) => !before.has(rel) && !allowNew(rel));
  assert.deepEqual(added, [], `files appeared in ${dir}`);
}

/** Fields that measure time rather than results; they differ between two identical runs. */
const TIMING_FIELDS = new Set(["wallTimeS", "msPerStep"]);

function withoutTiming(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutTiming);
  if (v && typeof v === "object")
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .filter((k) => !TIMING_FIELDS.has(k))
        .map((k) => [k, withoutTiming((v as Record<string, unknown>)[k])]),
    );
  return v;
}

/** The rows of a results.jsonl, sorted by key, with timing fields removed: what two runs must agree on. */
export function comparableRows(file: string): unknown[] {
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => withoutTiming(JSON.parse(l)) as { key: string })
    .sort((a, b) => a.key.localeCompare(b.key));
}

/** The smoke study all robustness files share: run once, uninterrupted, by the command line. */
let smoke: { out: string; result: CliResult } | undefined;
export function smokeStudy(): { out: string; result: CliResult } {
  if (!smoke) {
    const out = path.join(scratch("shared"), "smoke");
    const result = runCli(["study", "--profile", "smoke", "--out", out], { timeoutMs: 120_000 });
    expectOk(result);
    smoke = { out, result };
  }
  return smoke;
}

/** The model of the smoke profile, and the key of one of its cells. */
export const SMOKE_MODEL = getProfile("smoke").models[0];
export const smokeKey = (init: string, frac: string) => `model=${SMOKE_MODEL}|init=${init}|frac=${frac}|seed=0`;

/** Files of the shared smoke study. */
export function smokeFiles() {
  const { out } = smokeStudy();
  return {
    out,
    results: path.join(out, "results.jsonl"),
    best: path.join(runFolder(out, smokeKey("scratch", "1")), "best.safetensors"),
    latest: path.join(runFolder(out, smokeKey("scratch", "1")), "latest.safetensors"),
    maeLatest: path.join(out, "pretrain", SMOKE_MODEL, "mae_latest.safetensors"),
  };
}

/** True when this process may mount a tmpfs (root on Linux with mount available). */
export function canMountTmpfs(): { ok: boolean; why: string } {
  if (process.platform !== "linux") return { ok: false, why: `not Linux (${process.platform})` };
  if (process.getuid?.() !== 0) return { ok: false, why: "not running as root (mounting a small tmpfs needs root)" };
  const probe = scratch("tmpfs-probe");
  const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], { encoding: "utf8" });
  if (m.status !== 0)
    return { ok: false, why: `mount -t tmpfs failed: ${(m.stderr || m.error?.message || "").trim()}` };
  spawnSync("umount", [probe]);
  return { ok: true, why: "" };
}

/** Mounts a tmpfs of `size` (e.g. "256k") at a new folder; returns it and an unmount function. */
export function mountTmpfs(name: string, size: string): { dir: string; unmount: () => void } {
  const dir = scratch(name);
  const m = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { encoding: "utf8" });
  assert.equal(m.status, 0, `mount -t tmpfs -o size=${size} tmpfs ${dir}: ${m.stderr}`);
  let mounted = true;
  const unmount = () => {
    if (mounted) spawnSync("umount", [dir]);
    mounted = false;
  };
  process.on("exit", unmount);
  return { dir, unmount };
}

/** Fills the filesystem of `dir` until about `leaveBytes` are free, with a file named `name`. */
export function fillDisk(dir: string, leaveBytes: number, name = "filler.bin"): void {
  const free = Number(fs.statfsSync(dir).bavail) * Number(fs.statfsSync(dir).bsize);
  const fd = fs.openSync(path.join(dir, name), "w");
  try {
    const chunk = Buffer.alloc(4096, 1);
    let left = free - leaveBytes;
    while (left >= chunk.length) {
      fs.writeSync(fd, chunk);
      left -= chunk.length;
    }
  } finally {
    fs.closeSync(fd);
  }
}
