// The webgpu backend in Node: TensorFlow.js's @tensorflow/tfjs-backend-webgpu on Dawn's `webgpu` npm package
// (a prebuilt dawn.node; Vulkan on Linux/Windows, Metal on macOS, D3D12 on Windows). Nothing here downloads anything.
//
// Three things make it usable for training (shared/reference/webgpu-node.md):
// - navigator.gpu must exist before tfjs-backend-webgpu is loaded (it registers the backend only when it sees it);
// - tfjs never checks shader compilation or validation errors: Dawn reports them through the device's
//   `uncapturederror` event and the op returns zeros or garbage. Every such event is recorded with the kernel and
//   shader that caused it, printed at once, and the next tensor read (`await t.data()`) throws: a run on webgpu is
//   correct or it stops;
// - several rank-5 kernels of tfjs-backend-webgpu 4.22 are faulty; webgpu_kernels.ts registers overrides.
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { installWebgpuKernelOverrides } from "./webgpu_kernels";

/** What the kit reports about the WebGPU adapter it runs on. */
export interface WebgpuAdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for a software adapter (Mesa lavapipe/llvmpipe, SwiftShader): correct but slow. */
  isFallbackAdapter: boolean;
  /** The limits that bound the kit: the largest tensor is maxStorageBufferBindingSize bytes. */
  limits: Record<string, number>;
}

/** Environment variable with extra Dawn options, space separated (e.g. "backend=vulkan adapter=NVIDIA"). */
export const DAWN_OPTIONS_ENV = "MAE_NNFORMER_DAWN_OPTIONS";

const REPORTED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupsPerDimension",
];

/** One recorded GPU error: Dawn's message and where in the kit it came from. */
export interface GpuErrorRecord {
  /** The tfjs kernel that was running when the shader or pipeline was created (e.g. "Add"), or "?" */
  kernel: string;
  /** Dawn's first line of the message (it names the shader label, i.e. the tfjs program class). */
  message: string;
}

/** Thrown on the first tensor read after Dawn reported an error: the values computed since then are not valid. */
export class WebgpuValidationError extends Error {
  constructor(readonly records: GpuErrorRecord[]) {
    const first = records[0];
    super(
      `webgpu: the GPU rejected ${records.length} shader/pipeline/dispatch${records.length > 1 ? "es" : ""}; ` +
        `results are invalid, so the run stops. First: kernel ${first.kernel}: ${first.message}. ` +
        `If the kernel is a rank-5 op, add an override in src/runtime/webgpu_kernels.ts (or route it through a ` +
        `rank <= 4 view); if the message names a buffer or binding size, a tensor is larger than ` +
        `maxStorageBufferBindingSize: use a smaller crop or batch. MAE_NNFORMER_BACKEND=wasm runs on the CPU.`,
    );
    this.name = "WebgpuValidationError";
  }
}

let adapterReport: WebgpuAdapterReport | null = null;
const errors: GpuErrorRecord[] = [];
let currentKernel = "?";

/** The adapter the webgpu backend runs on (null before it started). */
export function webgpuAdapter(): WebgpuAdapterReport | null {
  return adapterReport;
}

/** GPU errors recorded since start (or since the last clearWebgpuErrors). */
export function webgpuErrors(): readonly GpuErrorRecord[] {
  return errors;
}

/** Throws WebgpuValidationError when Dawn reported any error. Tensor reads on webgpu call it after every download. */
export function checkWebgpuErrors(): void {
  if (errors.length > 0) throw new WebgpuValidationError([...errors]);
}

/** One line: "llvmpipe (Mesa 25.0.7), vendor mesa, fallback adapter; maxStorageBufferBindingSize 128 MiB, ...". */
export function describeAdapter(a: WebgpuAdapterReport): string {
  const name = [a.device || a.architecture || "unknown device", a.description].filter(Boolean).join(", ");
  const lim = Object.entries(a.limits)
    .map(([k, v]) => `${k} ${v >= 1 << 20 ? `${(v / (1 << 20)).toFixed(0)} MiB` : v}`)
    .join(", ");
  return (
    `${name}; vendor ${a.vendor || "?"}, architecture ${a.architecture || "?"}` +
    `${a.isFallbackAdapter ? ", software fallback adapter" : ""}; ${lim}`
  );
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

function reportOf(adapter: any): WebgpuAdapterReport {
  const info = adapter.info ?? {};
  const limits: Record<string, number> = {};
  for (const k of REPORTED_LIMITS) limits[k] = Number(adapter.limits[k]);
  return {
    vendor: String(info.vendor ?? ""),
    architecture: String(info.architecture ?? ""),
    device: String(info.device ?? ""),
    description: String(info.description ?? ""),
    isFallbackAdapter: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter),
    limits,
  };
}

let gpu: any = null;

/** Load Dawn and expose it as navigator.gpu (idempotent). Throws with the reason when `webgpu` cannot load. */
function installNavigatorGpu(): any {
  if (gpu) return gpu;
  let dawn: { create: (opts: string[]) => any; globals: object };
  try {
    dawn = require("webgpu"); // an ES module: require(esm) needs Node >= 20.19
  } catch (e) {
    throw new Error(
      `the optional package 'webgpu' (Dawn for Node) did not load: ${firstLine(e)}. It ships prebuilt for ` +
        `linux-x64/arm64 (glibc >= 2.34), macOS and Windows; run npm install on a supported platform`,
    );
  }
  Object.assign(globalThis, dawn.globals); // GPUBufferUsage, GPUMapMode, ... which tfjs-backend-webgpu reads
  const opts = (process.env[DAWN_OPTIONS_ENV] ?? "").split(/\s+/).filter(Boolean);
  gpu = dawn.create(opts);
  const g = globalThis as any;
  if (!g.navigator) g.navigator = { gpu };
  // Node >= 21 has a global navigator whose properties are getters
  else Object.defineProperty(g.navigator, "gpu", { value: gpu, configurable: true, writable: true });
  return gpu;
}

/**
 * On Linux Dawn needs a Vulkan driver, announced by an ICD file where the Vulkan loader looks. Without one there is no
 * point loading Dawn (it only prints loader warnings): returns the reason, or null when a driver may exist.
 */
export function missingVulkanDriver(): string | null {
  if (process.platform !== "linux") return null;
  const env = process.env;
  if (env.VK_ICD_FILENAMES || env.VK_DRIVER_FILES || env.VK_ADD_DRIVER_FILES) return null;
  if (/backend=(?!vulkan)/.test(env[DAWN_OPTIONS_ENV] ?? "")) return null; // Dawn asked for OpenGL(ES) instead
  const home = env.HOME ?? "";
  const roots = [
    env.XDG_CONFIG_HOME ?? path.join(home, ".config"),
    ...(env.XDG_CONFIG_DIRS ?? "/etc/xdg").split(":"),
    "/etc",
    env.XDG_DATA_HOME ?? path.join(home, ".local/share"),
    ...(env.XDG_DATA_DIRS ?? "/usr/local/share:/usr/share").split(":"),
    "/usr/local/share",
    "/usr/share",
  ];
  for (const r of roots) {
    const dir = path.join(r, "vulkan", "icd.d");
    try {
      if (fs.readdirSync(dir).some((f) => f.endsWith(".json"))) return null;
    } catch {
      // no such directory
    }
  }
  return (
    "no Vulkan driver installed (no ICD file in /usr/share/vulkan/icd.d or /etc/vulkan/icd.d, VK_ICD_FILENAMES " +
    "unset); see environment.md, GPU section"
  );
}

/**
 * Find the adapter tfjs will use (high-performance preference) without starting the backend. Returns the report,
 * or a reason string when there is none.
 */
export async function probeWebgpuAdapter(): Promise<WebgpuAdapterReport | string> {
  const noDriver = missingVulkanDriver();
  if (noDriver) return noDriver;
  let g: any;
  try {
    g = installNavigatorGpu();
  } catch (e) {
    return firstLine(e);
  }
  const adapter = await g.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter)
    return (
      "no WebGPU adapter: Dawn found no usable Vulkan/Metal/D3D12 driver (on Linux: install the GPU's Vulkan " +
      "driver and libvulkan1, or set VK_ICD_FILENAMES; scripts/lavapipe.sh installs a software one for tests)"
    );
  return reportOf(adapter);
}

/**
 * Start tfjs on webgpu. `allowFallback` accepts a software adapter (forced runs and tests); otherwise a fallback
 * adapter is refused, since wasm is faster than a software GPU. Returns the adapter, or the reason it was not used.
 */
export async function startWebgpu(allowFallback: boolean): Promise<WebgpuAdapterReport | string> {
  const probe = await probeWebgpuAdapter();
  if (typeof probe === "string") return probe;
  if (probe.isFallbackAdapter && !allowFallback)
    return (
      `only a software adapter (${probe.device || probe.description || probe.vendor}), slower than wasm; ` +
      `MAE_NNFORMER_BACKEND=webgpu uses it anyway`
    );
  try {
    require("@tensorflow/tfjs-backend-webgpu"); // registers "webgpu" now that navigator.gpu exists
  } catch (e) {
    return `@tensorflow/tfjs-backend-webgpu did not load: ${firstLine(e)}`;
  }
  installWebgpuKernelOverrides();
  trackKernels();
  try {
    if (!(await tf.setBackend("webgpu"))) return "setBackend('webgpu') returned false (see the warning above)";
  } catch (e) {
    return `the webgpu backend failed to start: ${firstLine(e)}`;
  }
  guardBackend(tf.backend() as any);
  adapterReport = probe;
  return probe;
}

let kernelsTracked = false;

/**
 * Remember which kernel is running (tfjs's engine runs every registered kernel through runKernelFunc, synchronously),
 * so that a shader created meanwhile is labelled with the kernel's name, including kernels registered later.
 */
function trackKernels(): void {
  if (kernelsTracked) return;
  kernelsTracked = true;
  const engine = tf.engine() as any;
  const run = engine.runKernelFunc;
  engine.runKernelFunc = function (params: { kernelName?: string }) {
    const outer = currentKernel;
    if (params.kernelName) currentKernel = params.kernelName;
    try {
      return run.call(this, params);
    } finally {
      currentKernel = outer;
    }
  };
}

let guardedDevice: any = null;

/** Make Dawn's errors fatal and synchronous reads explicit on the active webgpu backend. */
function guardBackend(backend: any): void {
  const device = backend.device;
  if (guardedDevice === device) return;
  guardedDevice = device;
  // labels "Kernel:ProgramClass" travel into Dawn's messages, so an error names the op that caused it
  const labelled = (fn: (d: any) => any) => (desc: any) =>
    fn.call(device, { ...desc, label: `${currentKernel}:${desc?.label ?? "?"}` });
  device.createShaderModule = labelled(device.createShaderModule);
  device.createComputePipeline = labelled(device.createComputePipeline);
  device.createComputePipelineAsync = labelled(device.createComputePipelineAsync);
  device.addEventListener("uncapturederror", (ev: any) => {
    const message = String(ev?.error?.message ?? ev?.error ?? ev).trim();
    const label = /"([^":]+):[^"]*"/.exec(message);
    const rec: GpuErrorRecord = { kernel: label ? label[1] : currentKernel, message: message.split("\n")[0] };
    errors.push(rec);
    if (errors.length <= 3) console.error(`webgpu: GPU error in kernel ${rec.kernel}: ${message}`);
  });
  device.lost?.then?.((info: any) => {
    if (info?.reason === "destroyed") return;
    errors.push({ kernel: currentKernel, message: `device lost: ${info?.message ?? "unknown reason"}` });
  });
  const read = backend.read.bind(backend);
  backend.read = async (dataId: unknown) => {
    const values = await read(dataId);
    checkWebgpuErrors();
    return values;
  };
  const readSync = backend.readSync.bind(backend);
  backend.readSync = (dataId: unknown) => {
    const data = backend.tensorMap.get(dataId);
    if (data && data.values == null && data.dtype !== "string")
      throw new Error(
        "webgpu: dataSync()/arraySync()/print() cannot read a GPU tensor in Node (they need OffscreenCanvas); " +
          "read it with `await tensor.data()` or `await tensor.array()`",
      );
    return readSync(dataId);
  };
}
