import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { plainOps } from "../../src/layers/plain_ops";
import { fastOps, OPS_ENV, selectOps } from "../../src/layers/fast_ops";
import { fastConv3d } from "../../src/layers/fast/conv3d";
import { fastGatherRows } from "../../src/layers/fast/gather_rows";
import { transpose2d } from "../../src/layers/fast/common";
import { Ops, WindowAttentionArgs } from "../../src/layers/ops";
import { assertClose, assertNoLeak, CONV_CASES, input, Input, onBackend, valueAndGrads } from "./grad_check";
import type { Vec3 } from "../../src/runtime/math";

type F = (...xs: tf.Tensor[]) => tf.Tensor;

/** fast vs plain on the current backend (values and every gradient). */
function check(label: string, make: (ops: Ops) => F, inputs: Input[], skip: number[] = []): void {
  assertClose(valueAndGrads(make(fastOps), inputs), valueAndGrads(make(plainOps), inputs), label, 1e-4, skip);
}

const attnArgs = (
  nW: number,
  N: number,
  h: number,
  bias: tf.Tensor | null,
  mask: tf.Tensor3D | null,
): WindowAttentionArgs => ({
  numWindows: nW,
  tokens: N,
  heads: h,
  scale: 0.35,
  bias: bias as tf.Tensor3D | null,
  mask,
});

describe("layers/fast_ops", () => {
  before(async () => {
    await initBackend();
  });

  it("linear: values and dX, dW, db match plain (Cout ≥ Cin and Cout < Cin, with and without bias)", () => {
    // T ≥ 256: blocked transposes; [6, 40, 48] and [6, 48, 40]: few tokens, dX as (W·dYᵀ)ᵀ
    for (const [T, ci, co] of [
      [37, 5, 12],
      [40, 12, 5],
      [512, 8, 20],
      [520, 20, 8],
      [6, 40, 48],
      [6, 48, 40],
    ]) {
      const f = (ops: Ops) => (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
        ops.linear(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D);
      check(`linear ${T}x${ci}->${co}`, f, [input([T, ci], 1), input([ci, co], 2), input([co], 3)]);
      const g = (ops: Ops) => (x: tf.Tensor, w: tf.Tensor) => ops.linear(x as tf.Tensor2D, w as tf.Tensor2D, null);
      check(`linear no bias ${T}x${ci}->${co}`, g, [input([T, ci], 1), input([ci, co], 2)]);
    }
  });

  it("conv3d (both routes) matches plainOps on wasm and tf.conv3d on cpu, values and gradients", async () => {
    for (const c of CONV_CASES) {
      const inputs = [input(c.x, 1), input(c.w, 2, 0.3), input([c.w[4]], 3)];
      const skip = c.spec.inputGrad === false ? [1] : []; // dX is zeros by contract
      const ref = await onBackend("cpu", () =>
        valueAndGrads(
          (x, w, b) => plainOps.conv3d(x as tf.Tensor5D, w as tf.Tensor5D, b as tf.Tensor1D, c.spec),
          inputs,
        ),
      );
      for (const route of ["zsplit", "gather"] as const) {
        const f = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
          fastConv3d(x as tf.Tensor5D, w as tf.Tensor5D, b as tf.Tensor1D, c.spec, route);
        const got = valueAndGrads(f, inputs);
        assertClose(got, ref, `fast conv3d ${route} ${c.name} vs cpu tf.conv3d`, 1e-4, skip);
        if (c.spec.inputGrad === false)
          assert.ok(
            got[1].every((v) => v === 0),
            "inputGrad false gives a zero dX",
          );
      }
      // and the size-rule choice without bias
      const g = (ops: Ops) => (x: tf.Tensor, w: tf.Tensor) =>
        ops.conv3d(x as tf.Tensor5D, w as tf.Tensor5D, null, c.spec);
      check(`fast conv3d no bias ${c.name}`, g, inputs.slice(0, 2), c.spec.inputGrad === false ? [1] : []);
    }
  });

  it("convTranspose3d: kernels (2,2,2), (2,4,4), (1,4,4), (1,2,2) and output padding match plain", () => {
    const cases: { x: number[]; k: Vec3; co: number; op?: Vec3 }[] = [
      { x: [2, 2, 3, 2, 3], k: [2, 2, 2], co: 4 },
      { x: [1, 2, 2, 3, 4], k: [2, 4, 4], co: 3 },
      { x: [1, 3, 2, 2, 2], k: [1, 4, 4], co: 2 },
      { x: [2, 2, 2, 3, 5], k: [1, 2, 2], co: 3 },
      { x: [1, 3, 2, 2, 3], k: [2, 2, 2], co: 2, op: [1, 0, 0] },
      // few voxels, many channels: the weight stays in its stored layout (linearTransposedWeight)
      { x: [1, 1, 2, 2, 12], k: [2, 2, 2], co: 6 },
      { x: [2, 1, 2, 1, 12], k: [2, 2, 2], co: 6, op: [1, 0, 0] },
    ];
    for (const c of cases) {
      const wShape = [...c.k, c.co, c.x[4]];
      const f = (ops: Ops) => (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
        ops.convTranspose3d(x as tf.Tensor5D, w as tf.Tensor5D, b as tf.Tensor1D, c.op);
      check(`convT k${c.k} op${c.op ?? "-"}`, f, [input(c.x, 4), input(wShape, 5), input([c.co], 6)]);
      const g = (ops: Ops) => (x: tf.Tensor, w: tf.Tensor) =>
        ops.convTranspose3d(x as tf.Tensor5D, w as tf.Tensor5D, null, c.op);
      check(`convT no bias k${c.k}`, g, [input(c.x, 4), input(wShape, 5)]);
    }
  });

  it("windowAttention: 75 tokens, several heads, with and without bias and mask", () => {
    const cases = [
      { nW: 2, N: 75, h: 3, d: 4, bias: true, nMask: 0 },
      { nW: 4, N: 8, h: 2, d: 3, bias: true, nMask: 2 },
      { nW: 3, N: 9, h: 4, d: 2, bias: false, nMask: 3 },
      { nW: 2, N: 6, h: 1, d: 5, bias: false, nMask: 0 },
    ];
    for (const c of cases) {
      const C = c.h * c.d;
      const rows = c.nW * c.N;
      const mask = c.nMask
        ? tf.tensor3d(
            new Float32Array(c.nMask * c.N * c.N).map((_, i) => (i % 5 === 2 ? -100 : 0)),
            [c.nMask, c.N, c.N],
          )
        : null;
      const inputs = [input([rows, C], 7), input([rows, C], 8), input([rows, C], 9)];
      if (c.bias) inputs.push(input([c.h, c.N, c.N], 10));
      const f = (ops: Ops) => (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, bias?: tf.Tensor) =>
        ops.windowAttention(
          q as tf.Tensor2D,
          k as tf.Tensor2D,
          v as tf.Tensor2D,
          attnArgs(c.nW, c.N, c.h, bias ?? null, mask),
        );
      check(`attention ${JSON.stringify(c)}`, f, inputs);
      mask?.dispose();
    }
  });

  it("gatherRows: both backward forms match plain, with duplicate indices", () => {
    const index: Input = { data: Int32Array.from([3, 0, 3, 5, 1, 3, 0, 2, 2]), shape: [9] };
    const inputs = [input([6, 4], 11), index];
    const ref = valueAndGrads((t, i) => plainOps.gatherRows(t as tf.Tensor2D, i as tf.Tensor1D), inputs);
    for (const mode of ["oneHot", "scatter"] as const) {
      assertClose(
        valueAndGrads((t, i) => fastGatherRows(t as tf.Tensor2D, i as tf.Tensor1D, mode), inputs),
        ref,
        `gatherRows ${mode}`,
      );
    }
    check("gatherRows default", (ops) => (t, i) => ops.gatherRows(t as tf.Tensor2D, i as tf.Tensor1D), inputs);
  });

  it("layerNorm, gelu and roll (negative shifts) match plain", () => {
    check(
      "layerNorm",
      (ops) => (x, g, b) => ops.layerNorm(x as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5),
      [input([33, 12], 12, 2), input([12], 13), input([12], 14)],
    );
    // 1024 rows: the two-stage column sums of dγ and dβ
    check(
      "layerNorm 1024 rows",
      (ops) => (x, g, b) => ops.layerNorm(x as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5),
      [input([1024, 5], 17, 2), input([5], 18), input([5], 19)],
    );
    check("gelu", (ops) => (x) => ops.gelu(x), [input([5, 7, 3], 15, 4)]);
    check("gelu, wide range (φ underflows)", (ops) => (x) => ops.gelu(x), [input([4, 50], 20, 12)]);
    for (const shifts of [
      [-2, 1, 0],
      [3, -1, -5],
      [0, 0, 0],
    ] as Vec3[]) {
      check(`roll ${shifts}`, (ops) => (x) => ops.roll(x as tf.Tensor5D, shifts), [input([2, 4, 3, 5, 2], 16)]);
    }
  });

  it("fastOps is also correct on the cpu backend", async () => {
    await onBackend("cpu", () => {
      const c = CONV_CASES[1];
      check(
        "cpu conv3d",
        (ops) => (x, w, b) => ops.conv3d(x as tf.Tensor5D, w as tf.Tensor5D, b as tf.Tensor1D, c.spec),
        [input(c.x, 1), input(c.w, 2, 0.3), input([c.w[4]], 3)],
      );
      check("cpu linear", (ops) => (x, w, b) => ops.linear(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D), [
        input([9, 4], 1),
        input([4, 6], 2),
        input([6], 3),
      ]);
      check(
        "cpu convT",
        (ops) => (x, w, b) => ops.convTranspose3d(x as tf.Tensor5D, w as tf.Tensor5D, b as tf.Tensor1D, [1, 0, 0]),
        [input([1, 2, 2, 2, 3], 4), input([2, 2, 2, 2, 3], 5), input([2], 6)],
      );
      check(
        "cpu attention",
        (ops) => (q, k, v, b) =>
          ops.windowAttention(q as tf.Tensor2D, k as tf.Tensor2D, v as tf.Tensor2D, attnArgs(2, 7, 2, b, null)),
        [input([14, 6], 7), input([14, 6], 8), input([14, 6], 9), input([2, 7, 7], 10)],
      );
      check("cpu gatherRows", (ops) => (t, i) => ops.gatherRows(t as tf.Tensor2D, i as tf.Tensor1D), [
        input([5, 3], 11),
        { data: Int32Array.from([4, 4, 0, 2]), shape: [4] },
      ]);
      check(
        "cpu layerNorm",
        (ops) => (x, g, b) => ops.layerNorm(x as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5),
        [input([6, 8], 12), input([8], 13), input([8], 14)],
      );
      check("cpu gelu", (ops) => (x) => ops.gelu(x), [input([20], 15, 3)]);
      check("cpu roll", (ops) => (x) => ops.roll(x as tf.Tensor5D, [-1, 2, 1]), [input([1, 3, 4, 2, 2], 16)]);
    });
  });

  it("no tensor leaks over repeated fwd+bwd of every fast op", () => {
    const t = (shape: number[], seed: number) => tf.tensor(input(shape, seed).data, shape);
    const keep = [
      t([16, 4], 1),
      t([4, 6], 2),
      t([6], 3), // linear
      t([2, 4, 4, 4, 2], 4),
      t([3, 3, 3, 2, 3], 5),
      t([3], 6), // conv
      t([1, 2, 2, 2, 3], 7),
      t([2, 2, 2, 2, 3], 8),
      t([2], 9), // convT
      t([12, 4], 10),
      t([12, 4], 11),
      t([12, 4], 12),
      t([2, 6, 6], 13), // attention
      t([5, 3], 14),
      tf.tensor1d([1, 4, 1], "int32"),
      t([3], 15),
      t([3], 16),
    ];
    const [lx, lw, lb, cx, cw, cb, tx, tw, tb, q, k, v, ab, table, idx, g, b] = keep;
    const mask = tf.zeros([1, 6, 6]) as tf.Tensor3D;
    const o = fastOps;
    assertNoLeak((x, w, bb) => o.linear(x as tf.Tensor2D, w as tf.Tensor2D, bb as tf.Tensor1D), [lx, lw, lb], "linear");
    for (const route of ["zsplit", "gather"] as const)
      assertNoLeak(
        (x, w, bb) =>
          fastConv3d(
            x as tf.Tensor5D,
            w as tf.Tensor5D,
            bb as tf.Tensor1D,
            { stride: [2, 2, 2], padding: [1, 1, 1] },
            route,
          ),
        [cx, cw, cb],
        `conv3d ${route}`,
      );
    assertNoLeak(
      (x, w, bb) => o.convTranspose3d(x as tf.Tensor5D, w as tf.Tensor5D, bb as tf.Tensor1D, [1, 0, 0]),
      [tx, tw, tb],
      "convT",
    );
    assertNoLeak(
      (a, bq, c, d) =>
        o.windowAttention(a as tf.Tensor2D, bq as tf.Tensor2D, c as tf.Tensor2D, attnArgs(2, 6, 2, d, mask)),
      [q, k, v, ab],
      "attention",
    );
    assertNoLeak((tb2) => o.gatherRows(tb2 as tf.Tensor2D, idx as tf.Tensor1D), [table], "gatherRows");
    assertNoLeak(
      (x, gg, bb) => o.layerNorm(x as tf.Tensor2D, gg as tf.Tensor1D, bb as tf.Tensor1D, 1e-5),
      [table, g, b],
      "layerNorm",
    );
    assertNoLeak((x) => o.gelu(x), [lx], "gelu");
    assertNoLeak((x) => o.roll(x as tf.Tensor5D, [1, -1, 2]), [cx], "roll");
    // the few-voxel convT (stored weight layout), the few-token linear and LayerNorm's two-stage column sums
    const extra = [
      t([1, 1, 2, 2, 12], 17),
      t([2, 2, 2, 6, 12], 18),
      t([6], 19),
      t([6, 40], 20),
      t([40, 48], 21),
      t([48], 22),
      t([1024, 5], 23),
      t([5], 24),
    ];
    const [sx, sw, sb, fx, fw, fb, nx, ng] = extra;
    assertNoLeak(
      (x, w, bb) => o.convTranspose3d(x as tf.Tensor5D, w as tf.Tensor5D, bb as tf.Tensor1D),
      [sx, sw, sb],
      "convT few voxels",
    );
    assertNoLeak(
      (x, w, bb) => o.linear(x as tf.Tensor2D, w as tf.Tensor2D, bb as tf.Tensor1D),
      [fx, fw, fb],
      "linear few tokens",
    );
    assertNoLeak(
      (x, gg, bb) => o.layerNorm(x as tf.Tensor2D, gg as tf.Tensor1D, bb as tf.Tensor1D, 1e-5),
      [nx, ng, ng],
      "layerNorm 1024 rows",
    );
    tf.dispose([...keep, ...extra, mask]);
  });

  it("transpose2d (blocked) equals tf.transpose", () => {
    for (const shape of [
      [1000, 9],
      [512, 20],
      [300, 7],
      [257, 16],
    ] as [number, number][]) {
      const x = tf.tensor2d(input(shape, 21).data as Float32Array, shape);
      const d = tf.tidy(() => tf.max(tf.abs(tf.sub(transpose2d(x), tf.transpose(x)))).dataSync()[0]);
      assert.equal(d, 0, `transpose2d ${shape}`);
      x.dispose();
    }
  });

  it("selectOps: fast on wasm and cpu, plain on tensorflow, env override", () => {
    const saved = process.env[OPS_ENV];
    try {
      delete process.env[OPS_ENV];
      assert.equal(selectOps("wasm").name, "fast");
      assert.equal(selectOps("cpu").name, "fast");
      assert.equal(selectOps("tensorflow").name, "plain");
      process.env[OPS_ENV] = "plain";
      assert.equal(selectOps("wasm").name, "plain");
      process.env[OPS_ENV] = "fast";
      assert.equal(selectOps("tensorflow").name, "fast");
      process.env[OPS_ENV] = "quick";
      assert.throws(() => selectOps("wasm"), /plain or fast/);
    } finally {
      if (saved === undefined) delete process.env[OPS_ENV];
      else process.env[OPS_ENV] = saved;
    }
  });
});
