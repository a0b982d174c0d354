// Threaded wasm in Node (opt-in). tfjs-backend-wasm 4.22 ships a threaded SIMD build but never uses it under Node: the
// WASM_HAS_MULTITHREAD_SUPPORT flag is false there, and Emscripten's pthread start-up assumes a browser. Three
// start-up workarounds make it run:
//   1. force the flag and set the thread count before the backend initialises;
//   2. Emscripten starts its pthread workers from a blob: URL (unknown to Node's Worker) and sends them the main
//      script as a Blob: give the Worker a real file holding the worker script, and the path of the main script;
//   3. its pool size is derived from the core count (half of it, at least under Node): report twice the CPUs while
//      the pool is created, so `threads` workers are made.
// Only XNNPACK kernels (conv2d, matMul, depthwise conv, softmax, sigmoid) run on several threads; JS kernels,
// transposes and elementwise ops stay on one. Results are the same as with one thread up to float summation order.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend, BackendReport } from "./backend";

/** Environment variable that asks for N wasm threads (like --threads); 1 or unset = the single-threaded build. */
export const THREADS_ENV = "MAE_NNFORMER_WASM_THREADS";

/** The thread count asked for through THREADS_ENV, or undefined. Throws on a value that is not a positive integer. */
export function threadsFromEnv(): number | undefined {
  const raw = process.env[THREADS_ENV]?.trim();
  if (!raw) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 64)
    throw new Error(`${THREADS_ENV}=${raw} is not a thread count; use an integer from 1 to 64 or unset it`);
  return n;
}

let installed: number | null = null;

/**
 * Makes the next wasm backend start use the threaded build with `threads` threads (>= 2). Call before the backend is
 * initialised (initBackend). Returns a function that undoes the start-up patches; call it once the backend is ready.
 */
export function prepareWasmThreads(threads: number): () => void {
  if (!Number.isInteger(threads) || threads < 2)
    throw new Error(`prepareWasmThreads: threads must be an integer >= 2, got ${threads}`);
  if (tf.findBackend("wasm"))
    throw new Error("prepareWasmThreads: the wasm backend has already started; set the threads before initBackend()");
  if (installed !== null && installed !== threads)
    throw new Error(`prepareWasmThreads: already prepared for ${installed} threads`);
  installed = threads;
  const wt = require("worker_threads") as typeof import("worker_threads");
  const wasmDir = path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json"));
  const mainJs = path.join(wasmDir, "wasm-out", "tfjs-backend-wasm-threaded-simd.js");
  const { wasmWorkerContents } = require(path.join(wasmDir, "wasm-out", "tfjs-backend-wasm-threaded-simd.worker.js"));
  const workerFile = path.join(os.tmpdir(), `mae-nnformer-wasm-pthread-${process.pid}.js`);
  // newline characters inside the exported script text sit in string literals: keep them escaped, as in the blob
  fs.writeFileSync(workerFile, String(wasmWorkerContents).replace(/\n/g, "\\n"));
  process.on("exit", () => fs.rmSync(workerFile, { force: true }));
  const Original = wt.Worker;
  class NodePthreadWorker extends Original {
    constructor(file: string | URL, options?: import("worker_threads").WorkerOptions) {
      super(String(file).startsWith("blob:") ? workerFile : file, options);
      this.unref();
    }
    // Emscripten refs a worker while its pthread runs, and XNNPACK's pool threads run for good: the process would never
    // exit. The main thread waits for them synchronously anyway, so they never need to hold the event loop.
    ref(): void {}
    postMessage(msg: unknown, transfer?: readonly import("worker_threads").Transferable[]): void {
      const m = msg as { cmd?: string; urlOrBlob?: unknown };
      if (m && m.cmd === "load" && typeof m.urlOrBlob !== "string") m.urlOrBlob = mainJs;
      super.postMessage(msg, transfer);
    }
  }
  (wt as { Worker: unknown }).Worker = NodePthreadWorker;
  const osModule = require("os") as { cpus: typeof os.cpus }; // the module object itself (a namespace import is read-only)
  const realCpus = osModule.cpus;
  osModule.cpus = () => {
    const real = realCpus.call(osModule);
    return Array.from({ length: 2 * threads }, (_, i) => real[i % real.length]);
  };
  const wasm = require("@tensorflow/tfjs-backend-wasm") as typeof import("@tensorflow/tfjs-backend-wasm"); // registers the flag
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true);
  wasm.setThreadsCount(threads);
  // Emscripten keeps its own reference to the Worker class it found at load time, so both patches can go once the
  // backend has started (other worker threads of the kit then get the ordinary class)
  return () => {
    osModule.cpus = realCpus;
    (wt as { Worker: unknown }).Worker = Original;
  };
}

/** Threads the wasm backend runs XNNPACK kernels on (1 unless the threaded build started), or 1 off wasm. */
export function wasmThreadsInUse(): number {
  if (tf.getBackend() !== "wasm") return 1;
  const wasm = require("@tensorflow/tfjs-backend-wasm") as typeof import("@tensorflow/tfjs-backend-wasm");
  return wasm.getThreadsCount();
}

/** The backend flags worth printing with a benchmark. */
export function backendFlags(): Record<string, unknown> {
  const out: Record<string, unknown> = { backend: tf.getBackend(), wasmThreads: wasmThreadsInUse() };
  for (const f of ["WASM_HAS_SIMD_SUPPORT", "WASM_HAS_MULTITHREAD_SUPPORT"]) {
    try {
      out[f] = tf.env().get(f);
    } catch {
      // not registered (no wasm package loaded)
    }
  }
  return out;
}

/**
 * initBackend with `threads` wasm threads (default: MAE_NNFORMER_WASM_THREADS, else 1). The setting is also put in
 * the environment, so child processes (a study's cell workers) start the same way.
 */
export async function initBackendWithThreads(threads?: number): Promise<BackendReport> {
  const n = threads ?? threadsFromEnv() ?? 1;
  if (n > 1 && !tf.findBackend("wasm") && process.env.MAE_NNFORMER_BACKEND?.trim() !== "tensorflow") {
    process.env[THREADS_ENV] = String(n);
    const restore = prepareWasmThreads(n);
    try {
      return await initBackend();
    } finally {
      restore();
    }
  }
  return initBackend();
}
