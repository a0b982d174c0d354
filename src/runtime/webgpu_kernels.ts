// Kernel overrides for tfjs-backend-webgpu 4.22, registered by the kit for the rank-5 (NDHWC) ops it uses whose
// webgpu kernels are faulty (shared/reference/webgpu-node.md §5). tfjs 4.22 is the last release, so the fixes live
// here. Each override views its tensors at rank <= 4 (a reshape on webgpu shares the buffer, no copy) and calls the
// original kernel, so the arithmetic is tfjs's own:
// - binary ops (Add, Mul, ...) whose output has rank >= 5: the broadcast-aware shader indexes a `vec5` that does not
//   exist in WGSL, fails to compile, and the op returns zeros. Adjacent axes with the same broadcast pattern are
//   merged (e.g. [B,D,H,W,C] + [C] -> [B·D·H·W, C] + [1, C]);
// - Select (tf.where, and the gradients of clipByValue/leakyRelu/prelu) throws for rank 5: run flat;
// - PadV2 (tf.pad, and the gradient of tf.slice) gives wrong values for rank 5: unpadded axes are merged into their
//   outer neighbour, or the axes are padded one at a time as rank-3 views;
// - Reverse (tf.reverse, mirror test-time augmentation) throws for rank 5: adjacent axes with the same flip are
//   merged (flipping both axes of [a, b] = flipping the a·b flat axis), else one axis at a time;
// - Transpose of an int32 buffer at rank >= 3 (also inside int32 reductions, and after `.toFloat()`, which only
//   relabels an int32 buffer): the shader passes an i32 to an f32 setter and does not compile. Axes are merged and an
//   int32 transpose shader of the kit's runs instead. Reductions over non-innermost axes of such buffers
//   (Sum, Mean, Max, ...) transpose internally without the kernel registry, so they first go through that override;
// - AddN with more inputs than a shader can bind (8 storage buffers by default): the pipeline is invalid. Summed in
//   chunks.
// Each override is tested against the cpu backend (test/webgpu/kernels.test.ts).
import * as tf from "@tensorflow/tfjs";

const BACKEND = "webgpu";

type TensorInfo = { dataId: object; shape: number[]; dtype: string };
type KernelArgs = { inputs: Record<string, TensorInfo>; backend: any; attrs: Record<string, any> };
type KernelFn = (args: KernelArgs) => TensorInfo | TensorInfo[];

/** The broadcasting binary kernels the override covers (every one tfjs-webgpu implements with BinaryOpProgram). */
export const BINARY_KERNELS = [
  "Add",
  "Sub",
  "Multiply",
  "RealDiv",
  "Maximum",
  "Minimum",
  "SquaredDifference",
  "Pow",
  "FloorDiv",
  "Mod",
  "Atan2",
  "Prelu",
  "Equal",
  "NotEqual",
  "Greater",
  "GreaterEqual",
  "Less",
  "LessEqual",
  "LogicalAnd",
  "LogicalOr",
];

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

function reshape(backend: any, x: TensorInfo, shape: number[]): TensorInfo {
  const k = tf.getKernel("Reshape", BACKEND)!.kernelFunc as unknown as KernelFn;
  return k({ inputs: { x }, backend, attrs: { shape } }) as TensorInfo;
}

/** Reshape views are released once the kernel has consumed them (the data lives on through refcounts). */
function release(backend: any, ts: TensorInfo[], keep: TensorInfo[]): void {
  for (const t of ts) if (!keep.includes(t)) backend.disposeData(t.dataId);
}

/**
 * Shapes [a', b', out'] of minimal rank equivalent to broadcasting a against b: axes of output size 1 dropped, and
 * adjacent axes where each operand is either full or broadcast in the same way merged.
 */
export function collapseBroadcast(a: number[], b: number[]): { a: number[]; b: number[]; out: number[] } {
  const r = Math.max(a.length, b.length);
  const pa = [...new Array(r - a.length).fill(1), ...a];
  const pb = [...new Array(r - b.length).fill(1), ...b];
  const ra: number[] = [];
  const rb: number[] = [];
  const ro: number[] = [];
  let last = "";
  for (let i = 0; i < r; i++) {
    const o = Math.max(pa[i], pb[i]);
    if (o === 1) continue;
    const pattern = `${pa[i] === o ? 1 : 0}${pb[i] === o ? 1 : 0}`;
    if (pattern === last) {
      ro[ro.length - 1] *= o;
      ra[ra.length - 1] *= pa[i];
      rb[rb.length - 1] *= pb[i];
    } else {
      ro.push(o);
      ra.push(pa[i]);
      rb.push(pb[i]);
      last = pattern;
    }
  }
  if (ro.length === 0) return { a: [1], b: [1], out: [1] };
  return { a: ra, b: rb, out: ro };
}

function binaryOverride(inner: KernelFn): KernelFn {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const names = Object.keys(inputs);
    const [x, y] = names.map((n) => inputs[n]);
    const outRank = Math.max(x.shape.length, y.shape.length);
    if (outRank < 5) return inner(args);
    const c = collapseBroadcast(x.shape, y.shape);
    if (c.out.length > 4) return inner(args);
    const outShape = tf.backend_util.assertAndGetBroadcastShape(x.shape, y.shape);
    const x2 = reshape(backend, x, c.a);
    const y2 = reshape(backend, y, c.b);
    const o = inner({ inputs: { [names[0]]: x2, [names[1]]: y2 }, backend, attrs }) as TensorInfo;
    const out = reshape(backend, o, outShape);
    release(backend, [x2, y2, o], []);
    return out;
  };
}

function selectOverride(inner: KernelFn): KernelFn {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const { condition, t, e } = inputs;
    const same = (s: number[]) => s.length === t.shape.length && s.every((v, i) => v === t.shape[i]);
    if (t.shape.length < 5 || !same(condition.shape) || !same(e.shape)) return inner(args);
    const n = [size(t.shape)];
    const views = [reshape(backend, condition, n), reshape(backend, t, n), reshape(backend, e, n)];
    const o = inner({ inputs: { condition: views[0], t: views[1], e: views[2] }, backend, attrs }) as TensorInfo;
    const out = reshape(backend, o, t.shape);
    release(backend, [...views, o], []);
    return out;
  };
}

function padOverride(inner: KernelFn): KernelFn {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const x = inputs.x;
    const paddings = attrs.paddings as [number, number][];
    if (x.shape.length < 5) return inner(args);
    // merge every unpadded axis into its outer neighbour: padding the outer axis by p rows of the merged size
    const shape = [...x.shape];
    const pads = paddings.map((p) => [p[0], p[1]] as [number, number]);
    for (let i = shape.length - 1; i > 0; i--) {
      if (pads[i][0] === 0 && pads[i][1] === 0) {
        pads[i - 1] = [pads[i - 1][0] * shape[i], pads[i - 1][1] * shape[i]];
        shape[i - 1] *= shape[i];
        shape.splice(i, 1);
        pads.splice(i, 1);
      }
    }
    const outShape = x.shape.map((s, i) => s + paddings[i][0] + paddings[i][1]);
    const temps: TensorInfo[] = [];
    let cur = reshape(backend, x, shape);
    temps.push(cur);
    if (shape.length <= 4) {
      cur = inner({ inputs: { x: cur }, backend, attrs: { ...attrs, paddings: pads } }) as TensorInfo;
      temps.push(cur);
    } else {
      // one axis at a time, each as [outer, n, inner]
      const now = [...shape];
      for (let i = 0; i < now.length; i++) {
        if (pads[i][0] === 0 && pads[i][1] === 0) continue;
        const outer = size(now.slice(0, i));
        const innerSize = size(now.slice(i + 1));
        const v = reshape(backend, cur, [outer, now[i], innerSize]);
        temps.push(v);
        cur = inner({
          inputs: { x: v },
          backend,
          attrs: { ...attrs, paddings: [[0, 0], pads[i], [0, 0]] },
        }) as TensorInfo;
        temps.push(cur);
        now[i] += pads[i][0] + pads[i][1];
      }
    }
    const out = reshape(backend, cur, outShape);
    release(backend, temps, []);
    return out;
  };
}

function reverseOverride(inner: KernelFn): KernelFn {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const x = inputs.x;
    const rank = x.shape.length;
    if (rank < 5) return inner(args);
    const dims = tf.util.parseAxisParam(attrs.dims, x.shape);
    const flip = x.shape.map((_, i) => dims.includes(i));
    // merge adjacent axes with the same flip; axes of size 1 join either neighbour
    const shape: number[] = [];
    const flips: boolean[] = [];
    for (let i = 0; i < rank; i++) {
      if (x.shape[i] === 1) continue;
      if (flips.length > 0 && flips[flips.length - 1] === flip[i]) shape[shape.length - 1] *= x.shape[i];
      else {
        shape.push(x.shape[i]);
        flips.push(flip[i]);
      }
    }
    if (shape.length === 0) {
      shape.push(1);
      flips.push(false);
    }
    const temps: TensorInfo[] = [];
    let cur = reshape(backend, x, shape);
    temps.push(cur);
    const axes = flips.flatMap((f, i) => (f ? [i] : []));
    if (axes.length > 0 && shape.length <= 4) {
      cur = inner({ inputs: { x: cur }, backend, attrs: { ...attrs, dims: axes } }) as TensorInfo;
      temps.push(cur);
    } else {
      for (const i of axes) {
        const v = reshape(backend, cur, [size(shape.slice(0, i)), shape[i], size(shape.slice(i + 1))]);
        temps.push(v);
        cur = inner({ inputs: { x: v }, backend, attrs: { ...attrs, dims: [1] } }) as TensorInfo;
        temps.push(cur);
      }
    }
    const out = reshape(backend, cur, x.shape);
    release(backend, temps, []);
    return out;
  };
}

/**
 * The same transpose on fewer axes: size-1 axes dropped, and input axes that stay neighbours in the output merged.
 * Returns the input shape and permutation of the collapsed view.
 */
export function collapseTranspose(shape: number[], perm: number[]): { shape: number[]; perm: number[] } {
  const keep = shape.map((s, i) => (s !== 1 ? i : -1)).filter((i) => i >= 0);
  const p = perm.filter((a) => keep.includes(a)); // output order of the kept input axes
  // groups of input axes that appear consecutively (and in order) in the output
  const groups: number[][] = [];
  for (const a of p) {
    const last = groups[groups.length - 1];
    if (last && last[last.length - 1] + 1 === a) last.push(a);
    else groups.push([a]);
  }
  const byInput = [...groups].sort((g, h) => g[0] - h[0]);
  const outShape = byInput.map((g) => g.reduce((n, a) => n * shape[a], 1));
  return { shape: outShape.length ? outShape : [1], perm: groups.map((g) => byInput.indexOf(g)) };
}

/**
 * A transpose shader for int32 buffers of any rank (tfjs's passes its i32 reads to the f32 setter). The shape is baked
 * in as constant strides: output index -> output coordinates -> input index.
 */
function intTransposeProgram(shape: number[], perm: number[]): object {
  const { webgpu_util } = require("@tensorflow/tfjs-backend-webgpu");
  const outputShape = perm.map((a) => shape[a]);
  const inStrides = shape.map((_, i) => shape.slice(i + 1).reduce((n, v) => n * v, 1));
  const outStrides = outputShape.map((_, i) => outputShape.slice(i + 1).reduce((n, v) => n * v, 1));
  const steps = perm.map(
    (a, i) => `c = rest / ${outStrides[i]}; rest = rest - c * ${outStrides[i]}; src = src + c * ${inStrides[a]};`,
  );
  const layout = webgpu_util.flatDispatchLayout(outputShape);
  return {
    variableNames: ["A"],
    outputShape,
    shaderKey: `kitTransposeInt32_${shape.join("x")}_${perm.join("_")}`,
    dispatchLayout: layout,
    dispatch: webgpu_util.computeDispatch(layout, outputShape, [64, 1, 1]),
    workgroupSize: [64, 1, 1],
    size: true,
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          var rest = index;
          var src = 0;
          var c = 0;
          ${steps.join("\n          ")}
          setOutputAtIndexI32(index, A[src]);
        }
      }`,
  };
}

function transposeOverride(inner: KernelFn): KernelFn {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const x = inputs.x;
    // the buffer's type decides: an int32 -> float32 cast is a relabel that keeps the int32 buffer
    const stored = backend.tensorMap.get(x.dataId)?.dtype;
    if (stored !== "int32" || x.shape.length < 3 || backend.shouldExecuteOnCPU([x])) return inner(args);
    const perm = attrs.perm as number[];
    const c = collapseTranspose(x.shape, perm);
    const outShape = perm.map((a) => x.shape[a]);
    const view = reshape(backend, x, c.shape);
    let o: TensorInfo;
    if (c.shape.length <= 2) o = inner({ inputs: { x: view }, backend, attrs: { perm: c.perm } }) as TensorInfo;
    else o = backend.runWebGPUProgram(intTransposeProgram(c.shape, c.perm), [view], "int32");
    const out = reshape(backend, o, outShape);
    release(backend, [view, o], []);
    return x.dtype === "int32" ? out : { ...out, dtype: x.dtype };
  };
}

/** Reductions that transpose their input internally (bypassing the Transpose override) when axes are not innermost. */
export const REDUCE_KERNELS = ["Sum", "Mean", "Max", "Min", "Prod", "All", "Any"];

function reduceOverride(inner: KernelFn): KernelFn {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const x = inputs.x;
    const stored = backend.tensorMap.get(x.dataId)?.dtype;
    const axisAttr = "reductionIndices" in attrs ? "reductionIndices" : "axis"; // Max and Min name it differently
    const axes = tf.util.parseAxisParam(attrs[axisAttr], x.shape);
    const perm = tf.backend_util.getAxesPermutation(axes, x.shape.length);
    if (stored !== "int32" || x.shape.length < 3 || perm == null) return inner(args);
    // move the reduced axes last with the (overridden) Transpose kernel, then reduce the innermost axes
    const transpose = tf.getKernel("Transpose", BACKEND)!.kernelFunc as unknown as KernelFn;
    const xt = transpose({ inputs: { x }, backend, attrs: { perm } }) as TensorInfo;
    const inner2 = tf.backend_util.getInnerMostAxes(axes.length, x.shape.length);
    const o = inner({
      inputs: { x: xt },
      backend,
      attrs: { ...attrs, [axisAttr]: inner2, keepDims: false },
    }) as TensorInfo;
    const [outShape] = tf.backend_util.computeOutAndReduceShapes(x.shape, axes);
    const out = reshape(backend, o, attrs.keepDims ? tf.backend_util.expandShapeToKeepDim(outShape, axes) : outShape);
    release(backend, [xt, o], []);
    return out;
  };
}

/**
 * AddN with more inputs than a shader may bind (maxStorageBuffersPerShaderStage − 1 for the output: 7 on the WebGPU
 * default limits; tfjs binds them all and the pipeline is invalid, e.g. a global gradient norm over 160 tensors):
 * sum in chunks, then the partial sums.
 */
function addNOverride(inner: KernelFn): KernelFn {
  const run: KernelFn = (args) => {
    const { backend, attrs } = args;
    const ts = args.inputs as unknown as TensorInfo[]; // AddN's inputs are an array
    const max = Math.max(2, Number(backend.device.limits.maxStorageBuffersPerShaderStage ?? 8) - 1);
    if (ts.length <= max) return inner(args);
    const partial: TensorInfo[] = [];
    for (let i = 0; i < ts.length; i += max) {
      const chunk = ts.slice(i, i + max);
      partial.push(chunk.length === 1 ? chunk[0] : (inner({ inputs: chunk as any, backend, attrs }) as TensorInfo));
    }
    const out = run({ inputs: partial as any, backend, attrs }) as TensorInfo;
    release(backend, partial, ts);
    return out;
  };
  return run;
}

let installed = false;

function wrap(kernelName: string, make: (inner: KernelFn) => KernelFn): void {
  const original = tf.getKernel(kernelName, BACKEND);
  if (!original) return;
  tf.unregisterKernel(kernelName, BACKEND);
  tf.registerKernel({ ...original, kernelFunc: make(original.kernelFunc as unknown as KernelFn) as any });
}

/** Register the overrides (idempotent). Needs tfjs-backend-webgpu loaded. */
export function installWebgpuKernelOverrides(): void {
  if (installed) return;
  installed = true;
  for (const k of BINARY_KERNELS) wrap(k, binaryOverride);
  wrap("Select", selectOverride);
  wrap("PadV2", padOverride);
  wrap("Reverse", reverseOverride);
  wrap("Transpose", transposeOverride);
  for (const k of REDUCE_KERNELS) wrap(k, reduceOverride);
  wrap("AddN", addNOverride);
}
