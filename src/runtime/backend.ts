// Picks the fastest TensorFlow.js backend available at run time: tensorflow (tfjs-node-gpu, then tfjs-node) >
// webgpu (Dawn, only on a hardware adapter) > wasm > cpu. MAE_NNFORMER_BACKEND=tensorflow|webgpu|wasm|cpu forces one
// (webgpu then also runs on a software adapter such as lavapipe). The choice and why better ones were skipped are
// reported.
import * as tf from "@tensorflow/tfjs";
import { describeAdapter, startWebgpu, WebgpuAdapterReport } from "./webgpu";

export type BackendName = "tensorflow" | "webgpu" | "wasm" | "cpu";
export const BACKEND_ENV = "MAE_NNFORMER_BACKEND";
export const BACKEND_ORDER: BackendName[] = ["tensorflow", "webgpu", "wasm", "cpu"];

export interface BackendReport {
  /** The backend tfjs now runs on. */
  name: BackendName;
  /** For tensorflow: which npm package provided it. */
  provider?: string;
  /** True when forced through the environment variable. */
  forced: boolean;
  /** One line per better backend that was tried and not used, with the reason. */
  skipped: string[];
  /** For webgpu: the adapter (vendor, architecture, limits). */
  adapter?: WebgpuAdapterReport;
}

let current: BackendReport | null = null;
let pending: Promise<BackendReport> | null = null;

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

async function tryBackend(
  name: BackendName,
  skipped: string[],
  forced: boolean,
): Promise<string | WebgpuAdapterReport | undefined | false> {
  if (name === "webgpu") {
    let got: WebgpuAdapterReport | string;
    try {
      got = await startWebgpu(forced);
    } catch (e) {
      got = firstLine(e);
    }
    if (typeof got === "string") {
      skipped.push(`webgpu: ${got}`);
      return false;
    }
    return got;
  }
  if (name === "tensorflow") {
    let provider: string | undefined;
    for (const pkg of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
      try {
        require(pkg); // registers the "tensorflow" backend as a side effect
        provider = pkg;
        break;
      } catch (e) {
        skipped.push(`${pkg}: ${firstLine(e)}`);
      }
    }
    if (!provider) return false;
    if (!(await tf.setBackend("tensorflow"))) {
      skipped.push(`tensorflow: ${provider} loaded but the backend failed to initialise`);
      return false;
    }
    return provider;
  }
  if (name === "wasm") {
    try {
      require("@tensorflow/tfjs-backend-wasm");
    } catch (e) {
      skipped.push(`wasm: ${firstLine(e)}`);
      return false;
    }
  }
  try {
    if (!(await tf.setBackend(name))) {
      skipped.push(`${name}: setBackend returned false`);
      return false;
    }
  } catch (e) {
    skipped.push(`${name}: ${firstLine(e)}`);
    return false;
  }
  return undefined;
}

/** Initialise the best backend once (later calls return the same report). */
export function initBackend(order: BackendName[] = BACKEND_ORDER): Promise<BackendReport> {
  if (current) return Promise.resolve(current);
  if (!pending)
    pending = selectBackend(order)
      .then((r) => (current = r))
      .finally(() => (pending = null));
  return pending;
}

async function selectBackend(order: BackendName[]): Promise<BackendReport> {
  const forcedRaw = process.env[BACKEND_ENV]?.trim();
  if (forcedRaw && !BACKEND_ORDER.includes(forcedRaw as BackendName)) {
    throw new Error(`${BACKEND_ENV}=${forcedRaw} is not a backend; use one of ${BACKEND_ORDER.join(", ")} or unset it`);
  }
  const candidates = forcedRaw ? [forcedRaw as BackendName] : order;
  const skipped: string[] = [];
  for (const name of candidates) {
    const got = await tryBackend(name, skipped, Boolean(forcedRaw));
    if (got === false) continue;
    await tf.ready();
    if (name === "wasm") applyWasmPatches();
    const r: BackendReport = { name, forced: Boolean(forcedRaw), skipped };
    if (typeof got === "string") r.provider = got;
    else if (got) r.adapter = got;
    return r;
  }
  throw new Error(
    `no TensorFlow.js backend could start (${candidates.join(", ")} tried): ${skipped.join("; ")}` +
      (forcedRaw ? `; unset ${BACKEND_ENV} to let the kit choose` : ""),
  );
}

/** The report of the active backend, or null before initBackend(). */
export function backendReport(): BackendReport | null {
  return current;
}

/** One human line: "wasm (tensorflow skipped: ...)". */
export function describeBackend(r: BackendReport): string {
  const via = r.provider ? ` via ${r.provider}` : r.adapter ? ` on ${describeAdapter(r.adapter)}` : "";
  const why = r.forced ? ` (forced by ${BACKEND_ENV})` : "";
  const skipped = r.skipped.length ? `; not used: ${r.skipped.join("; ")}` : "";
  return `backend ${r.name}${via}${why}${skipped}`;
}

let wasmPatched = false;
/**
 * Kernel patches for tfjs-backend-wasm 4.22 (same results, less time):
 * - Slice copies its whole input out of the wasm heap before slicing, so a slice costs O(input). Re-registered to
 *   read a heap view instead (O(output)).
 * - GatherV2 costs ~33 ns per element in wasm (an element-wise strided copy, after a JS bounds check that builds a
 *   closure per index): 13 ms for rows [8192] of [8192, 48]. Re-registered (float32 / int32) as row copies inside the
 *   heap (copyWithin): 0.7 ms. Same bounds check and error message; other dtypes keep the wasm kernel.
 * Not patched, on purpose: Identity (it copies; every tensor saved for a gradient is cloned through it, ~45 ms per
 * nnFormer step). Sharing the buffer instead breaks the wasm matMul/conv operator caches, which are keyed by buffer id
 * alone: a saved clone then meets an operator packed for another shape or transpose flag (wrong values, or an abort).
 */
function applyWasmPatches(): void {
  if (wasmPatched) return;
  wasmPatched = true;
  patchWasmGather();
  const { slice_util, util } = tf as any;
  tf.unregisterKernel("Slice", "wasm");
  tf.registerKernel({
    kernelName: "Slice",
    backendName: "wasm",
    kernelFunc: ({ inputs, attrs, backend }: any) => {
      const x = inputs.x;
      const [begin, size] = slice_util.parseSliceParams(x, attrs.begin, attrs.size);
      const out = backend.makeOutput(size, x.dtype);
      const xv = backend.typedArrayFromHeap(x);
      const ov = backend.typedArrayFromHeap(out);
      const strides = util.computeStrides(x.shape);
      if (slice_util.isSliceContinous(x.shape, begin, size)) {
        const off = slice_util.computeFlatOffset(begin, strides);
        ov.set(xv.subarray(off, off + util.sizeFromShape(size)));
        return out;
      }
      const rank = x.shape.length;
      const inner = size[rank - 1];
      const idx = new Array(rank - 1).fill(0);
      const rows = util.sizeFromShape(size.slice(0, rank - 1));
      let o = 0;
      for (let n = 0; n < rows; n++) {
        let off = begin[rank - 1];
        for (let d = 0; d < rank - 1; d++) off += (begin[d] + idx[d]) * strides[d];
        ov.set(xv.subarray(off, off + inner), o);
        o += inner;
        for (let d = rank - 2; d >= 0; d--) {
          if (++idx[d] < size[d]) break;
          idx[d] = 0;
        }
      }
      return out;
    },
  });
}

function patchWasmGather(): void {
  const original = tf.getKernel("GatherV2", "wasm");
  if (!original) return;
  const { util, backend_util } = tf as any;
  tf.unregisterKernel("GatherV2", "wasm");
  tf.registerKernel({
    ...original,
    kernelFunc: (args: any) => {
      const {
        inputs: { x, indices },
        attrs: { axis, batchDims },
        backend,
      } = args;
      if (
        (x.dtype !== "float32" && x.dtype !== "int32") ||
        indices.dtype !== "int32" ||
        util.sizeFromShape(x.shape) === 0
      ) {
        return (original.kernelFunc as any)(args);
      }
      const ax = util.parseAxisParam(axis, x.shape)[0];
      const info = backend_util.segment_util.collectGatherOpShapeInfo(x, indices, ax, batchDims);
      const nIdx = util.sizeFromShape(indices.shape);
      const dim: number = info.dimSize;
      const iv = backend.typedArrayFromHeap(indices) as Int32Array;
      for (let i = 0; i < nIdx; i++) {
        const v = iv[i];
        if (!(v >= 0 && v <= dim - 1)) throw new Error(`GatherV2: the index value ${v} is not in [0, ${dim - 1}]`);
      }
      const out = backend.makeOutput(info.outputShape, x.dtype);
      if (nIdx === 0) return out;
      // read the heap only after makeOutput (which may grow the wasm memory); 4-byte elements copied as int32 bits
      const heap: Int32Array = backend.wasm.HEAP32;
      const idx = backend.typedArrayFromHeap(indices) as Int32Array;
      const xOff = backend.dataIdMap.get(x.dataId).memoryOffset >>> 2; // unsigned: the heap may exceed 2 GiB
      let d = backend.dataIdMap.get(out.dataId).memoryOffset >>> 2; // unsigned: the heap may exceed 2 GiB
      const S: number = info.sliceSize;
      const outer: number = info.outerSize;
      const perBatch = nIdx / info.batchSize;
      for (let b = 0; b < info.batchSize; b++) {
        for (let o = 0; o < outer; o++) {
          const base = xOff + (b * outer + o) * dim * S;
          const first = b * perBatch;
          if (S >= 8) {
            for (let i = 0; i < perBatch; i++, d += S) {
              const s = base + idx[first + i] * S;
              heap.copyWithin(d, s, s + S);
            }
          } else {
            for (let i = 0; i < perBatch; i++) {
              const s = base + idx[first + i] * S;
              for (let c = 0; c < S; c++) heap[d++] = heap[s + c];
            }
          }
        }
      }
      return out;
    },
  });
}
