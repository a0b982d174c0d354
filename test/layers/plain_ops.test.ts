import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { plainOps } from "../../src/layers/plain_ops";

import { assertClose, CONV_CASES, input, onBackend, randomData, relErr, valueAndGrads } from "./grad_check";
import type { Vec3 } from "../../src/runtime/math";

describe("layers/plain_ops", () => {
  before(async () => {
    await initBackend();
  });

  it("conv3d on wasm (im2col) matches tf.conv3d on cpu, values and gradients", async () => {
    for (const c of CONV_CASES) {
      const inputs = [input(c.x, 1), input(c.w, 2, 0.3), input([c.w[4]], 3)];
      const f = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
        plainOps.conv3d(x as tf.Tensor5D, w as tf.Tensor5D, b as tf.Tensor1D, c.spec);
      const got = valueAndGrads(f, inputs);
      const ref = await onBackend("cpu", () => valueAndGrads(f, inputs)); // plainOps uses tf.conv3d there
      assertClose(got, ref, `plain conv3d ${c.name}`);
    }
  });

  it("convTranspose3d matches tf.conv3dTranspose (values) and conv3d (input gradient) on cpu", async () => {
    const cases: { x: number[]; k: Vec3; co: number; op: Vec3 }[] = [
      { x: [2, 2, 3, 2, 3], k: [2, 2, 2], co: 4, op: [0, 0, 0] },
      { x: [1, 2, 2, 3, 4], k: [2, 4, 4], co: 2, op: [0, 0, 0] },
      { x: [1, 3, 2, 2, 3], k: [2, 2, 2], co: 2, op: [1, 0, 0] },
    ];
    for (const c of cases) {
      const [B, D, H, W, Ci] = c.x;
      const wShape = [...c.k, c.co, Ci];
      const inputs = [input(c.x, 4), input(wShape, 5, 0.5), input([c.co], 6)];
      const f = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
        plainOps.convTranspose3d(x as tf.Tensor5D, w as tf.Tensor5D, b as tf.Tensor1D, c.op);
      const got = valueAndGrads(f, inputs);
      const outShape: Vec3 = [D * c.k[0], H * c.k[1], W * c.k[2]];
      const ref = await onBackend("cpu", () =>
        tf.tidy(() => {
          const x = tf.tensor5d(inputs[0].data as Float32Array, c.x as any);
          const w = tf.tensor5d(inputs[1].data as Float32Array, wShape as any);
          let y: tf.Tensor5D = tf.add(
            tf.conv3dTranspose(x, w, [B, ...outShape, c.co], c.k, "valid"),
            tf.tensor1d(inputs[2].data as Float32Array),
          );
          y = tf.pad(y, [
            [0, 0],
            [0, c.op[0]],
            [0, c.op[1]],
            [0, c.op[2]],
            [0, 0],
          ]);
          if (c.op.some((v) => v)) {
            // trailing output-padding planes carry only the bias
            const m = tf.pad(
              tf.zeros([B, ...outShape, 1]),
              [
                [0, 0],
                [0, c.op[0]],
                [0, c.op[1]],
                [0, c.op[2]],
                [0, 0],
              ],
              1,
            );
            y = tf.add(y, tf.mul(m, tf.tensor1d(inputs[2].data as Float32Array)));
          }
          // dX of Σ y·R is the stride-k conv3d of R (cropped to the unpadded output) with the same weight
          const r = tf.tensor(randomData(y.shape, 99), y.shape) as tf.Tensor5D;
          const rc = tf.slice(r, [0, 0, 0, 0, 0], [B, ...outShape, c.co]);
          const dx = tf.conv3d(rc, w, c.k, "valid"); // w [kD,kH,kW,Co,Ci] read as a Co -> Ci filter
          return [y.dataSync() as Float32Array, dx.dataSync() as Float32Array];
        }),
      );
      assert.ok(relErr(got[0], ref[0]) < 1e-5, `convT values ${JSON.stringify(c)}`);
      assert.ok(relErr(got[1], ref[1]) < 1e-5, `convT dX ${JSON.stringify(c)}`);
    }
  });

  it("windowAttention on wasm matches cpu and a direct per-window computation", async () => {
    const nW = 4,
      N = 5,
      h = 2,
      d = 3,
      C = h * d;
    const inputs = [input([nW * N, C], 7), input([nW * N, C], 8), input([nW * N, C], 9), input([h, N, N], 10)];
    const maskData = new Float32Array(2 * N * N).map((_, i) => (i % 7 === 3 ? -100 : 0));
    const f = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, bias: tf.Tensor) =>
      plainOps.windowAttention(q as tf.Tensor2D, k as tf.Tensor2D, v as tf.Tensor2D, {
        numWindows: nW,
        tokens: N,
        heads: h,
        scale: 0.4,
        bias: bias as tf.Tensor3D,
        mask: tf.tensor3d(maskData, [2, N, N]),
      });
    const got = valueAndGrads(f, inputs);
    assertClose(got, await onBackend("cpu", () => valueAndGrads(f, inputs)), "plain attention wasm vs cpu");
    // direct computation of the value
    const [q, k, v, bias] = inputs.map((i) => i.data as Float32Array);
    const out = new Float32Array(nW * N * C);
    for (let w = 0; w < nW; w++)
      for (let hh = 0; hh < h; hh++)
        for (let i = 0; i < N; i++) {
          const s = Array.from({ length: N }, (_, j) => {
            let dot = 0;
            for (let e = 0; e < d; e++) dot += q[(w * N + i) * C + hh * d + e] * k[(w * N + j) * C + hh * d + e];
            return dot * 0.4 + bias[(hh * N + i) * N + j] + maskData[((w % 2) * N + i) * N + j];
          });
          const mx = Math.max(...s);
          const ex = s.map((t) => Math.exp(t - mx));
          const z = ex.reduce((a, b) => a + b, 0);
          for (let e = 0; e < d; e++) {
            let acc = 0;
            for (let j = 0; j < N; j++) acc += (ex[j] / z) * v[(w * N + j) * C + hh * d + e];
            out[(w * N + i) * C + hh * d + e] = acc;
          }
        }
    assert.ok(relErr(got[0], out) < 1e-5);
  });

  it("gatherRows on wasm (one-hot matMul) matches tf.gather on cpu, with duplicate indices", async () => {
    const index = { data: Int32Array.from([3, 0, 3, 5, 1, 3, 0]), shape: [7] };
    const f = (t: tf.Tensor, i: tf.Tensor) => plainOps.gatherRows(t as tf.Tensor2D, i as tf.Tensor1D);
    const inputs = [input([6, 4], 11), index];
    assertClose(valueAndGrads(f, inputs), await onBackend("cpu", () => valueAndGrads(f, inputs)), "plain gatherRows");
  });

  it("layerNorm, gelu and roll give the textbook values", () => {
    const y = tf.tidy(() =>
      plainOps
        .layerNorm(
          tf.tensor2d([
            [1, 2, 3],
            [0, 0, 3],
          ]),
          tf.tensor1d([1, 2, 1]),
          tf.tensor1d([0, 0, 1]),
          1e-5,
        )
        .dataSync(),
    );
    const s1 = Math.sqrt(2 / 3 + 1e-5);
    const s2 = Math.sqrt(2 + 1e-5);
    assert.ok(relErr(y, [-1 / s1, 0, 1 / s1 + 1, -1 / s2, -2 / s2, 2 / s2 + 1]) < 1e-5);
    const g = tf.tidy(() => plainOps.gelu(tf.tensor1d([1, -1, 0.5, 0])).dataSync());
    assert.ok(relErr(g, [0.8413447460685429, -0.15865525393145707, 0.34573123063700656, 0]) < 1e-6);
    const shape: number[] = [2, 3, 4, 5, 2];
    const shifts: Vec3 = [-1, 2, -7];
    const data = Float32Array.from({ length: 240 }, (_, i) => i);
    const r = tf.tidy(() => plainOps.roll(tf.tensor5d(data, shape as any), shifts).dataSync());
    const mod = (a: number, n: number) => ((a % n) + n) % n;
    let bad = 0;
    for (let b = 0; b < 2; b++)
      for (let z = 0; z < 3; z++)
        for (let yy = 0; yy < 4; yy++)
          for (let x = 0; x < 5; x++)
            for (let c = 0; c < 2; c++) {
              const src =
                (((b * 3 + mod(z - shifts[0], 3)) * 4 + mod(yy - shifts[1], 4)) * 5 + mod(x - shifts[2], 5)) * 2 + c;
              if (r[(((b * 3 + z) * 4 + yy) * 5 + x) * 2 + c] !== src) bad++;
            }
    assert.equal(bad, 0);
  });

  it("linear is x·w + b", () => {
    const y = tf.tidy(() =>
      plainOps
        .linear(
          tf.tensor2d([[1, 2]]),
          tf.tensor2d([
            [1, 0, 2],
            [0, 1, 3],
          ]),
          tf.tensor1d([1, 1, 1]),
        )
        .dataSync(),
    );
    assert.deepEqual(Array.from(y), [2, 3, 9]);
  });
});
