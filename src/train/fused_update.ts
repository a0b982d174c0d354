// The optimizer updates as single-pass kernels on the wasm backend (fused_update.wat). An AdamW step written with tf
// ops makes about 14 passes over memory per variable, each memory-bound on wasm (48 ms for the demo's 2.4 M
// parameters); the fused kernel reads g, w, m, s once and writes w, m, s once. Its arithmetic is the tf-op update's,
// operation for operation, so both give bit-identical weights (test/train/fused_update.test.ts).
//
// The kernels are registered as tfjs kernels of the wasm backend ("KitFusedAdamW", "KitFusedSgd"), so the engine
// allocates and tracks their outputs like any op; they run on the backend's own memory, imported by a small module.
// Where they cannot run (another backend, or the threaded wasm build, whose memory is shared) the optimizer keeps its
// tf ops.
import * as tf from "@tensorflow/tfjs";
import { FUSED_UPDATE_WASM } from "./fused_update_wasm";

interface FusedExports {
  adamw(...args: number[]): void;
  sgd(...args: number[]): void;
}

/** AdamW scalars of one update, as optim.ts computes them (float32 conversion happens at the wasm call). */
export interface AdamWScalars {
  b1: number;
  ob1: number;
  b2: number;
  ob2: number;
  bc2: number;
  eps: number;
  decay: boolean;
  decayFactor: number;
  step: number;
}

/** SGD scalars of one update. */
export interface SgdScalars {
  weightDecay: number;
  first: boolean;
  momentum: number;
  nesterov: boolean;
  lr: number;
}

/** The few WebAssembly globals used here (the project's TypeScript libs do not declare them). */
const WA = (
  globalThis as unknown as {
    WebAssembly: {
      Memory: abstract new (...a: never[]) => object;
      Module: new (bytes: Uint8Array) => object;
      Instance: new (module: object, imports: object) => { exports: unknown };
    };
  }
).WebAssembly;

const ADAMW = "KitFusedAdamW";
const SGD = "KitFusedSgd";

let bound: { backend: unknown; kernels: FusedExports | null } | null = null;

/** The module instantiated on the current wasm backend's memory, or null where it cannot be (threaded build). */
function kernelsFor(backend: unknown): FusedExports | null {
  if (bound && bound.backend === backend) return bound.kernels;
  let kernels: FusedExports | null = null;
  try {
    const memory = (backend as { wasm?: { asm?: { memory?: unknown } } }).wasm?.asm?.memory;
    if (memory instanceof WA.Memory) {
      const module = new WA.Module(Buffer.from(FUSED_UPDATE_WASM, "base64"));
      kernels = new WA.Instance(module, { env: { memory } }).exports as unknown as FusedExports;
    }
  } catch {
    kernels = null; // a shared (threaded) memory does not link to the module's unshared import
  }
  bound = { backend, kernels };
  return kernels;
}

type WasmBackend = {
  makeOutput(shape: number[], dtype: "float32"): tf.TensorInfo;
  dataIdMap: { get(id: object): { memoryOffset: number } };
};

const offset = (b: WasmBackend, t: tf.TensorInfo): number => b.dataIdMap.get(t.dataId).memoryOffset;

function checkInputs(kernel: string, ts: tf.TensorInfo[]): number {
  const n = ts[0].shape.reduce((a, d) => a * d, 1);
  for (const t of ts) {
    if (t.dtype !== "float32" || t.shape.reduce((a, d) => a * d, 1) !== n)
      throw new Error(`${kernel}: expected float32 tensors of ${n} elements, got ${t.dtype} [${t.shape}]`);
  }
  return n;
}

let registered = false;

function register(): void {
  if (registered) return;
  registered = true;
  tf.registerKernel({
    kernelName: ADAMW,
    backendName: "wasm",
    kernelFunc: ({ inputs, attrs, backend }) => {
      const b = backend as unknown as WasmBackend;
      const { g, w, m, s } = inputs as Record<string, tf.TensorInfo>;
      const a = attrs as unknown as AdamWScalars;
      const n = checkInputs(ADAMW, [w, g, m, s]);
      const outs = [w, m, s].map((t) => b.makeOutput([...t.shape], "float32"));
      kernelsFor(backend)!.adamw(
        ...[g, w, m, s, ...outs].map((t) => offset(b, t)),
        n,
        a.b1,
        a.ob1,
        a.b2,
        a.ob2,
        a.bc2,
        a.eps,
        a.decay ? 1 : 0,
        a.decayFactor,
        a.step,
      );
      return outs;
    },
  });
  tf.registerKernel({
    kernelName: SGD,
    backendName: "wasm",
    kernelFunc: ({ inputs, attrs, backend }) => {
      const b = backend as unknown as WasmBackend;
      const { g, w, m } = inputs as Record<string, tf.TensorInfo>;
      const a = attrs as unknown as SgdScalars;
      const n = checkInputs(SGD, [w, g, m]);
      const outs = [w, m].map((t) => b.makeOutput([...t.shape], "float32"));
      kernelsFor(backend)!.sgd(
        ...[g, w, m, ...outs].map((t) => offset(b, t)),
        n,
        a.weightDecay > 0 ? 1 : 0,
        a.weightDecay,
        a.first ? 1 : 0,
        a.momentum,
        a.nesterov ? 1 : 0,
        a.lr,
      );
      return outs;
    },
  });
}

/** True when the fused updates can run on the active backend (wasm, unthreaded). */
export function fusedUpdatesAvailable(): boolean {
  if (tf.getBackend() !== "wasm") return false;
  if (!kernelsFor(tf.backend())) return false;
  register();
  return true;
}

/** One fused AdamW update: the new [w, m, s]. */
export function fusedAdamW(g: tf.Tensor, w: tf.Tensor, m: tf.Tensor, s: tf.Tensor, a: AdamWScalars): tf.Tensor[] {
  return tf.engine().runKernel(ADAMW, { g, w, m, s }, a as unknown as tf.NamedAttrMap) as tf.Tensor[];
}

/** One fused SGD update: the new [w, m]. */
export function fusedSgd(g: tf.Tensor, w: tf.Tensor, m: tf.Tensor, a: SgdScalars): tf.Tensor[] {
  return tf.engine().runKernel(SGD, { g, w, m }, a as unknown as tf.NamedAttrMap) as tf.Tensor[];
}
