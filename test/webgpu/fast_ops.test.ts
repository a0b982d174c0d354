// Every fast op on webgpu against the cpu backend (plain autodiff as the reference): values and gradients.
import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { plainOps } from "../../src/layers/plain_ops";
import { fastOps, selectOps } from "../../src/layers/fast_ops";
import { webgpuOps } from "../../src/layers/webgpu_ops";
import { fastConv3d } from "../../src/layers/fast/conv3d";
import { fastGatherRows } from "../../src/layers/fast/gather_rows";
import { Ops, WindowAttentionArgs } from "../../src/layers/ops";
import { Vec3 } from "../../src/runtime/math";
import { CONV_CASES, input, Input } from "../layers/grad_check";
import { assertMatchesBackend, assertNoGpuErrors, startWebgpuSuite } from "./helpers";

/** webgpuOps.f on webgpu against plainOps.f (autodiff) on cpu. */
async function check(label: string, make: (ops: Ops) => (...xs: tf.Tensor[]) => tf.Tensor, inputs: Input[]) {
  await assertMatchesBackend(label, make(webgpuOps), inputs, 1e-4, "cpu", [], make(plainOps));
}

describe("webgpu/fast ops vs cpu (values and gradients)", () => {
  before(startWebgpuSuite);
  afterEach(function () {
    assertNoGpuErrors(this.currentTest?.title ?? "");
  });

  it("selectOps picks the webgpu set on webgpu", () => {
    assert.equal(selectOps("webgpu"), webgpuOps);
  });

  it("linear", async () => {
    for (const [T, ci, co] of [
      [37, 5, 12],
      [520, 20, 8],
    ]) {
      const f = (ops: Ops) => (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
        ops.linear(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D);
      await check(`linear ${T}x${ci}->${co}`, f, [input([T, ci], 1), input([ci, co], 2), input([co], 3)]);
    }
  });

  it("conv3d, both routes, every nnFormer stride/kernel/padding case", async () => {
    for (const c of CONV_CASES) {
      const inputs = [input(c.x, 1), input(c.w, 2, 0.3), input([c.w[4]], 3)];
      const skip = c.spec.inputGrad === false ? [1] : [];
      for (const route of ["zsplit", "gather"] as const) {
        const f = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
          fastConv3d(x as tf.Tensor5D, w as tf.Tensor5D, b as tf.Tensor1D, c.spec, route);
        const ref = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
          plainOps.conv3d(x as tf.Tensor5D, w as tf.Tensor5D, b as tf.Tensor1D, c.spec);
        await assertMatchesBackend(`conv3d ${route} ${c.name}`, f, inputs, 1e-4, "cpu", skip, ref);
      }
    }
  });

  it("convTranspose3d (kernel == stride, output padding)", async () => {
    const cases: { x: number[]; k: Vec3; co: number; op?: Vec3 }[] = [
      { x: [2, 2, 3, 2, 3], k: [2, 2, 2], co: 4 },
      { x: [1, 3, 2, 2, 3], k: [2, 2, 2], co: 2, op: [1, 0, 0] },
      { x: [1, 1, 2, 2, 12], k: [2, 2, 2], co: 6 },
    ];
    for (const c of cases) {
      const f = (ops: Ops) => (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
        ops.convTranspose3d(x as tf.Tensor5D, w as tf.Tensor5D, b as tf.Tensor1D, c.op);
      await check(`convT k${c.k}`, f, [input(c.x, 4), input([...c.k, c.co, c.x[4]], 5), input([c.co], 6)]);
    }
  });

  it("windowAttention: batched matMul (webgpu) and grouped depthwise (wasm form), bias and shift mask", async () => {
    const cases = [
      { nW: 2, N: 27, h: 3, d: 4, bias: true, nMask: 2 },
      { nW: 3, N: 8, h: 2, d: 3, bias: false, nMask: 0 },
    ];
    for (const c of cases) {
      const C = c.h * c.d;
      const rows = c.nW * c.N;
      const maskData = new Float32Array(Math.max(1, c.nMask) * c.N * c.N).map((_, i) => (i % 5 === 2 ? -100 : 0));
      const inputs = [input([rows, C], 7), input([rows, C], 8), input([rows, C], 9)];
      if (c.bias) inputs.push(input([c.h, c.N, c.N], 10));
      const f =
        (ops: Ops) =>
        (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, bias?: tf.Tensor): tf.Tensor => {
          const args: WindowAttentionArgs = {
            numWindows: c.nW,
            tokens: c.N,
            heads: c.h,
            scale: 0.35,
            bias: (bias ?? null) as tf.Tensor3D | null,
            mask: c.nMask ? tf.tensor3d(maskData, [c.nMask, c.N, c.N]) : null,
          };
          return ops.windowAttention(q as tf.Tensor2D, k as tf.Tensor2D, v as tf.Tensor2D, args);
        };
      await check(`attention ${JSON.stringify(c)}`, f, inputs);
      await assertMatchesBackend(`attention (grouped depthwise) ${JSON.stringify(c)}`, f(fastOps), inputs);
    }
  });

  it("gatherRows (oneHot and scatter backward), layerNorm, gelu, roll", async () => {
    const index: Input = { data: Int32Array.from([3, 0, 3, 5, 1, 3, 0, 2, 2]), shape: [9] };
    for (const mode of ["oneHot", "scatter"] as const)
      await assertMatchesBackend(
        `gatherRows ${mode}`,
        (t, i) => fastGatherRows(t as tf.Tensor2D, i as tf.Tensor1D, mode),
        [input([6, 4], 11), index],
      );
    await check(
      "layerNorm 1024 rows",
      (ops) => (x, g, b) => ops.layerNorm(x as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5),
      [input([1024, 5], 17, 2), input([5], 18), input([5], 19)],
    );
    await check("gelu", (ops) => (x) => ops.gelu(x), [input([4, 50], 20, 6)]);
    await check("roll", (ops) => (x) => ops.roll(x as tf.Tensor5D, [-2, 1, 3]), [input([2, 4, 3, 5, 2], 16)]);
  });
});
