// A small job pool: runs tasks with at most `workers` of them at a time, starting each as soon as the tasks it waits
// for have finished, in the order given. What a task does (a child process, a promise) is up to the caller; the study
// uses it to run its cells as child processes (see cells.ts), so this file knows nothing about training.
import { fork } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { pathToFileURL } from "url";

/** One unit of work. */
export interface PoolTask {
  /** Unique id, e.g. a cell key. */
  id: string;
  /** Ids of tasks that must finish first; ids not in the task list count as finished. */
  after?: string[];
}

/** A started task: its outcome, and how to stop it early. */
export interface RunningTask<R> {
  done: Promise<R>;
  /** Asks the task to stop (called on every running task when another one fails). */
  stop(): void;
}

export interface PoolOptions<T extends PoolTask, R> {
  /** Most tasks running at once (>= 1). */
  workers: number;
  start: (task: T) => RunningTask<R>;
  onStart?: (task: T) => void;
  /** Called when a task succeeded, before any task that waits for it starts. Throwing fails the pool. */
  onEnd?: (task: T, result: R) => void;
}

/**
 * Runs every task and returns their results by id. On the first failure no further task starts, the running ones
 * are stopped and awaited, and the pool rejects with that first error (naming the task).
 */
export async function runPool<T extends PoolTask, R>(tasks: T[], o: PoolOptions<T, R>): Promise<Map<string, R>> {
  if (!Number.isInteger(o.workers) || o.workers < 1)
    throw new Error(`workers must be a positive integer, got ${o.workers}`);
  const ids = new Set<string>();
  for (const t of tasks) {
    if (ids.has(t.id)) throw new Error(`runPool: task id ${t.id} appears twice`);
    ids.add(t.id);
  }
  for (const t of tasks)
    for (const a of t.after ?? []) {
      const at = tasks.findIndex((u) => u.id === a);
      if (at >= tasks.indexOf(t))
        throw new Error(`runPool: task ${t.id} waits for ${a}, which must come before it in the list`);
    }
  const results = new Map<string, R>();
  const pending = [...tasks];
  const running = new Map<string, RunningTask<R>>();
  let failure: Error | null = null;

  return new Promise((resolve, reject) => {
    const ready = (t: T) => (t.after ?? []).every((a) => !ids.has(a) || results.has(a));
    const settle = () => {
      if (running.size > 0) return;
      if (failure) reject(failure);
      else if (pending.length === 0) resolve(results);
    };
    const fill = () => {
      while (!failure && running.size < o.workers) {
        const i = pending.findIndex(ready);
        if (i < 0) break;
        const task = pending.splice(i, 1)[0];
        let handle: RunningTask<R>;
        try {
          o.onStart?.(task);
          handle = o.start(task);
        } catch (e) {
          fail(task, e);
          break;
        }
        running.set(task.id, handle);
        handle.done.then(
          (r) => {
            running.delete(task.id);
            if (!failure) {
              try {
                results.set(task.id, r);
                o.onEnd?.(task, r);
              } catch (e) {
                fail(task, e);
              }
            }
            fill();
            settle();
          },
          (e) => {
            running.delete(task.id);
            fail(task, e);
            settle();
          },
        );
      }
    };
    const fail = (task: T, e: unknown) => {
      if (failure) return;
      failure = new Error(`${task.id} failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });
      for (const h of running.values()) h.stop();
    };
    fill();
    settle();
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Child processes

/** A message a child sends to its parent over the IPC channel. */
export type ChildMessage = Record<string, unknown>;

export interface ChildSpec {
  /** Module to run (a .ts file runs through tsx). */
  module: string;
  args: string[];
  /** stdout and stderr of the child are appended here. */
  logFile: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  onMessage?: (m: ChildMessage) => void;
}

/** Node flags that let a child run TypeScript sources the way this process does. */
export function childExecArgv(module: string): string[] {
  const own = process.execArgv.filter((a) => !a.startsWith("--inspect"));
  if (!module.endsWith(".ts") || own.some((a) => a.includes("tsx"))) return own;
  // under mocha (`--require tsx/cjs`) or a plain node, the child needs the tsx loader itself
  const tsxDir = path.dirname(require.resolve("tsx/package.json"));
  const loader = path.join(tsxDir, "dist", "loader.mjs");
  return [...own, "--import", fs.existsSync(loader) ? pathToFileURL(loader).href : "tsx"];
}

/** Environment variable through which a child learns its parent's pid (it exits when the parent is gone). */
export const PARENT_PID_ENV = "MAE_NNFORMER_PARENT_PID";

/**
 * Runs `module args` as a child process with an IPC channel. Resolves on exit code 0; rejects otherwise with the
 * exit code and the last lines of its log. stop() sends SIGTERM.
 */
export function runChild(spec: ChildSpec): RunningTask<void> {
  fs.mkdirSync(path.dirname(spec.logFile), { recursive: true });
  const log = fs.openSync(spec.logFile, "a");
  const child = fork(spec.module, spec.args, {
    execArgv: childExecArgv(spec.module),
    env: { ...process.env, ...spec.env, [PARENT_PID_ENV]: String(process.pid) },
    stdio: ["ignore", log, log, "ipc"],
  });
  fs.closeSync(log); // the child holds its own copy
  if (spec.onMessage) child.on("message", (m) => spec.onMessage!(m as ChildMessage));
  const done = new Promise<void>((resolve, reject) => {
    child.on("error", (e) => reject(new Error(`cannot start ${spec.module}: ${e.message}`)));
    child.on("exit", (code, signal) => {
      if (code === 0) return resolve();
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      reject(new Error(`process ${child.pid} ${how}; its log ${spec.logFile} ends with:\n${logTail(spec.logFile)}`));
    });
  });
  return {
    done,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    },
  };
}

function logTail(file: string, lines = 12): string {
  try {
    const text = fs.readFileSync(file, "utf8").trimEnd().split("\n");
    return text
      .slice(-lines)
      .map((l) => `    ${l}`)
      .join("\n");
  } catch {
    return "    (no log)";
  }
}

let parentCheck: (() => void) | undefined;

/**
 * In a child started by runChild: exit when the parent is gone (killed with -9, say), so that a rerun of the study
 * does not race an orphan on the same cell. Checks now and then from a timer and whenever `check` is called (training
 * loops call it per step, since a busy loop may starve the timer). Call it first thing in the child, before its slow
 * start-up (backend, data), and again where the check is needed (the watch is set up once; each call checks). Returns the check; a no-op
 * outside a pool child.
 */
export function exitWithParent(): () => void {
  if (parentCheck) {
    parentCheck();
    return parentCheck;
  }
  const want = Number(process.env[PARENT_PID_ENV]);
  if (!want) return (parentCheck = () => {});
  const check = () => {
    if (process.ppid !== want) {
      process.stderr.write(`parent process ${want} is gone; stopping (the study resumes this cell when rerun)\n`);
      process.exit(3);
    }
  };
  setInterval(check, 1000).unref();
  check();
  return (parentCheck = check);
}

/** Sends a message to the parent when there is one (a no-op otherwise, e.g. in a cluster job). */
export function tellParent(m: ChildMessage): void {
  if (process.send && process.connected) process.send(m);
}
