import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { permuteRows } from "../../src/layers/nnformer_blocks";

import {
  blockGeometry,
  keyMaskFromVisibility,
  mergeIndex,
  officialRelativePositionIndex,
  partitionIndex,
  rpbTableRows,
  shiftMask,
} from "../../src/layers/window_attention3d";
import type { Vec3 } from "../../src/runtime/math";

const distinct = (a: Int32Array) => new Set(a).size;
const max = (a: Int32Array) => a.reduce((m, v) => Math.max(m, v), 0);

describe("layers/window_attention3d", () => {
  it("replicates the official relative-position index quirk (reachable rows per spec §2.4)", () => {
    const cases: Array<[Vec3, number, number]> = [
      [[4, 4, 4], 115, 343],
      [[8, 8, 8], 547, 3375],
      [[3, 5, 5], 137, 405],
      [[7, 10, 10], 709, 4693],
    ];
    for (const [w, reachable, rows] of cases) {
      const idx = officialRelativePositionIndex(w);
      assert.equal(rpbTableRows(w), rows);
      assert.equal(max(idx) + 1, reachable, `max index for ${w}`);
      assert.equal(distinct(idx), reachable, `distinct indices for ${w}`);
    }
    // w=4: offsets (−3,−2,1) and (−2,−3,−3) share a bias; index of offset δ: (δs+3)·11 + (δh+3)·7 + (δw+3)
    const idx = officialRelativePositionIndex([4, 4, 4]);
    const tok = (s: number, h: number, w: number) => (s * 4 + h) * 4 + w;
    const at = (i: number, j: number) => idx[i * 64 + j];
    assert.equal(at(tok(0, 0, 1), tok(3, 2, 0)), at(tok(0, 0, 0), tok(2, 3, 3)));
    assert.equal(at(0, 0), 3 * 11 + 3 * 7 + 3);
  });

  it("builds the −100 shift mask from 27 regions", () => {
    const g = blockGeometry([8, 8, 8], [4, 4, 4], true, "min", true);
    assert.deepEqual(g.shift, [2, 2, 2]);
    assert.ok(g.masked && g.rolled);
    const m = shiftMask(g);
    assert.equal(m.length, 8 * 64 * 64);
    assert.ok(m.every((v) => v === 0 || v === -100));
    assert.ok(
      m.subarray(0, 64 * 64).every((v) => v === 0),
      "the first window lies in one region",
    );
    // last window: 8 regions of 8 tokens → 8·8·8 = 512 zero entries of 4096
    assert.equal(m.subarray(7 * 4096).filter((v) => v === 0).length, 512);
  });

  it("applies the global rules: min (Synapse/Tumor) and equal (ACDC)", () => {
    const a = blockGeometry([8, 4, 4], [8, 8, 8], true, "min", true);
    assert.deepEqual(a.window, [4, 4, 4]);
    assert.deepEqual(a.shift, [0, 0, 0]);
    assert.equal(a.numWindows, 2);
    const b = blockGeometry([7, 10, 10], [7, 10, 10], true, "equal", false);
    assert.ok(!b.rolled);
    const c = blockGeometry([14, 40, 40], [3, 5, 5], true, "equal", false);
    assert.deepEqual(c.padded, [15, 40, 40]);
    assert.deepEqual(c.shift, [1, 2, 2]);
    assert.ok(c.rolled && !c.masked);
    assert.equal(c.numWindows, 5 * 8 * 8);
  });

  it("partition/merge gathers equal pad → roll(−shift) → window partition done by hand", () => {
    const G: Vec3 = [5, 4, 6],
      w: Vec3 = [3, 2, 3],
      B = 2;
    const g = blockGeometry(G, w, true, "equal", false); // padded 6×4×6, shift (1,1,1)
    const L = 5 * 4 * 6;
    const part = partitionIndex(g, B, B * L);
    // explicit reference
    const P = g.padded;
    const ref: number[] = [];
    for (let b = 0; b < B; b++)
      for (let bs = 0; bs < P[0] / w[0]; bs++)
        for (let bh = 0; bh < P[1] / w[1]; bh++)
          for (let bw = 0; bw < P[2] / w[2]; bw++)
            for (let i = 0; i < w[0]; i++)
              for (let j = 0; j < w[1]; j++)
                for (let k = 0; k < w[2]; k++) {
                  const p = [bs * w[0] + i, bh * w[1] + j, bw * w[2] + k];
                  const q = p.map((v, a) => (v + g.shift[a]) % P[a]); // torch.roll(x, −shift)[p] = x[p + shift]
                  ref.push(
                    q[0] < G[0] && q[1] < G[1] && q[2] < G[2] ? b * L + (q[0] * G[1] + q[1]) * G[2] + q[2] : B * L,
                  );
                }
    assert.deepEqual(Array.from(part), ref);
    const merge = mergeIndex(g, B);
    for (let r = 0; r < B * L; r++) assert.equal(part[merge[r]], r, `merge∘partition is the identity at ${r}`);
  });

  it("builds key masks from token visibility", () => {
    const g = blockGeometry([4, 4, 4], [2, 2, 2], false, "min", true);
    const vis = new Float32Array(64).fill(1);
    vis[0] = 0; // token (0,0,0) sits in window 0 at position 0
    const m = keyMaskFromVisibility(g, 1, vis, -7);
    assert.equal(m.length, 8 * 8 * 8);
    for (let i = 0; i < 8; i++) for (let j = 0; j < 8; j++) assert.equal(m[i * 8 + j], j === 0 ? -7 : 0);
    assert.ok(m.subarray(64).every((v) => v === 0));
    assert.throws(() => keyMaskFromVisibility(g, 2, vis), /expected B·S·H·W = 128/);
  });
});

describe("layers/nnformer_blocks permuteRows", () => {
  it("window gathers: forward = pad/roll/partition, gradient = exact scatter of dy (checked by hand)", async () => {
    await initBackend();
    const g = blockGeometry([5, 4, 6], [3, 2, 3], true, "equal", false);
    const B = 2,
      L = 120,
      C = 3;
    const part = partitionIndex(g, B, B * L),
      merge = mergeIndex(g, B);
    const x = tf.randomNormal([B * L, C], 0, 1, "float32", 1) as tf.Tensor2D;
    const R = tf.randomNormal([part.length, C], 0, 1, "float32", 2);
    const xv = x.dataSync(),
      rv = R.dataSync();
    const { value, grad } = tf.valueAndGrad(
      (t: tf.Tensor2D) => tf.sum(tf.mul(permuteRows(t, part, true, merge, false), R)) as tf.Scalar,
    )(x);
    const dx = grad.dataSync();
    let expectValue = 0;
    const expectDx = new Float64Array(B * L * C);
    part.forEach((r, m) => {
      if (r === B * L) return;
      for (let c = 0; c < C; c++) {
        expectValue += xv[r * C + c] * rv[m * C + c];
        expectDx[r * C + c] += rv[m * C + c];
      }
    });
    assert.ok(Math.abs(value.dataSync()[0] - expectValue) < 1e-3);
    dx.forEach((v, i) => assert.ok(Math.abs(v - expectDx[i]) < 1e-6, `dx[${i}]`));
    // and back: merge(partition(x)) = x, with the gradient through both
    const back = permuteRows(permuteRows(x, part, true, merge, false), merge, false, part, true);
    assert.deepEqual(Array.from(back.dataSync()), Array.from(xv));
    tf.dispose([x, R, value, back, grad]);
  });
});
