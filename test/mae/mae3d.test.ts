import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { selectOps } from "../../src/layers/fast_ops";

import { NNFORMER_E12_16X32X32, NNFORMER_E48_64X64X64, type NnFormerConfig } from "../../src/models/nnformer";
import { makeRng, normal } from "../../src/runtime/random";
import { MaeNnFormer, maskedMse, normPixTargets, subWindowRows } from "../../src/mae/mae3d";
import { visibilityAt, voxelVisibility } from "../../src/mae/masking";
import { pretrainMae } from "../../src/mae/pretrain";
import { AUGMENT_OFF } from "../../src/data/augment";
import { officialRelativePositionIndex } from "../../src/layers/window_attention3d";
import type { Vec3 } from "../../src/runtime/math";

const MICRO: NnFormerConfig = { ...NNFORMER_E12_16X32X32, dropPathRate: 0 };
/** Micro widths on a crop wide enough for compact mode (the compact crop 16×32×32 must still hold the encoder). */
const MICRO_WIDE: NnFormerConfig = { ...MICRO, cropSize: [16, 64, 64] };

function randomCrops(seed: number, n: number): Float32Array {
  const rng = makeRng(seed);
  return Float32Array.from({ length: n }, () => normal(rng));
}

describe("mae/mae3d", function () {
  let ops: ReturnType<typeof selectOps>;
  before(async () => {
    await initBackend();
    ops = selectOps(tf.getBackend());
  });

  it("sparse mode does not leak: changing masked voxels leaves every stage's visible outputs unchanged", () => {
    const mae = new MaeNnFormer(MICRO, { mask: { mode: "sparse", ratio: 0.75, unit: [4, 8, 8] } }, { seed: 1 });
    try {
      const B = 2,
        shape: [number, number, number, number, number] = [B, ...MICRO.cropSize, 1];
      const n = B * 16 * 32 * 32;
      const x = randomCrops(1, n);
      const s = mae.drawMask(makeRng(2), B);
      const vox = voxelVisibility(s);
      const x2 = x.map((v, i) => (vox[i] ? v : v + 5 * normal(makeRng(i))));
      const x3 = x.map((v, i) => (vox[i] ? v + 0.5 : v)); // a visible change must show
      const run = (data: Float32Array) =>
        tf.tidy(() => {
          const { enc } = mae.encode(tf.tensor5d(data, shape), s, ops, data);
          return enc.skips.map((t) => t.arraySync() as number[][]);
        });
      const [a, b, c] = [run(x), run(x2), run(x3)];
      let checked = 0,
        changed = 0;
      mae.encoder.plan.encoder.forEach((st, i) => {
        const vis = visibilityAt(s, st.grid);
        let scale = 0;
        a[i].forEach((row) => row.forEach((v) => (scale = Math.max(scale, Math.abs(v)))));
        vis.forEach((v, r) => {
          if (!v) return;
          a[i][r].forEach((val, k) => {
            assert.ok(Math.abs(val - b[i][r][k]) <= 1e-5 * scale, `stage ${i} row ${r}: ${val} vs ${b[i][r][k]}`);
            if (Math.abs(val - c[i][r][k]) > 1e-3) changed++;
            checked++;
          });
        });
      });
      assert.ok(checked > 1000 && changed > checked / 4, `checked ${checked}, changed by a visible edit ${changed}`);
    } finally {
      mae.dispose();
    }
  });

  it("loss is zero for a perfect prediction of masked voxels and ignores unmasked predictions", () => {
    tf.tidy(() => {
      const shape: [number, number, number, number, number] = [2, 4, 4, 4, 1];
      const target = tf.randomNormal(shape, 0, 1, "float32", 1) as tf.Tensor5D;
      const masked = tf.cast(tf.greater(tf.randomUniform(shape, 0, 1, "float32", 2), 0.5), "float32") as tf.Tensor5D;
      const noise = tf.randomNormal(shape, 0, 3, "float32", 3);
      const perfectOnMasked = tf.add(target, tf.mul(noise, tf.sub(1, masked))) as tf.Tensor5D;
      assert.equal(maskedMse(perfectOnMasked, target, masked).dataSync()[0], 0);
      const wrong = tf.add(target, tf.mul(tf.onesLike(target), 0.5)) as tf.Tensor5D;
      const wrongMaskedOnly = tf.add(target, tf.mul(masked, 0.5)) as tf.Tensor5D;
      assert.ok(Math.abs(maskedMse(wrong, target, masked).dataSync()[0] - 0.25) < 1e-6);
      assert.equal(
        maskedMse(wrong, target, masked).dataSync()[0],
        maskedMse(wrongMaskedOnly, target, masked).dataSync()[0],
      );
    });
  });

  it("normPix targets stay finite on flat (air) blocks, and eps below 1e-2 is refused", () => {
    const x = new Float32Array(4 * 8 * 8).fill(-2.5);
    x[3] = -2.4;
    const t = normPixTargets(x, 1, [4, 8, 8], 1, [2, 4, 4], 1e-2);
    assert.ok(t.every((v) => Number.isFinite(v) && Math.abs(v) < 2));
    assert.throws(
      () => new MaeNnFormer(MICRO, { normPix: "patch", normPixEps: 1e-6 }),
      /normPixEps = 0.000001: use at least 1e-2/,
    );
  });

  it("compact mode reads shrunken windows' RPB rows out of the full tables (same offsets)", () => {
    const rows = subWindowRows([2, 2, 2], [4, 4, 4], 27);
    const small = officialRelativePositionIndex([2, 2, 2]);
    assert.equal(rows[small[0]], officialRelativePositionIndex([4, 4, 4])[0]); // offset (0,0,0) maps to the centre row
    const mae = new MaeNnFormer(
      { ...NNFORMER_E48_64X64X64, dropPathRate: 0 },
      { mask: { mode: "compact", ratio: 0.75 } },
    );
    try {
      assert.deepEqual(mae.compactEncoder!.config.cropSize, [64, 32, 32]);
      // every compact parameter is the encoder's own variable (shared, not copied), except per-step derived RPB tables
      let shared = 0;
      for (const [n, v] of mae.compactEncoder!.params) if (mae.encoder.params.get(n) === v) shared++;
      assert.equal(shared, mae.compactEncoder!.params.size);
      assert.ok(shared > 0);
    } finally {
      mae.dispose();
    }
    assert.throws(
      () => new MaeNnFormer(MICRO, { mask: { mode: "compact", ratio: 0.75 } }),
      /compact crop \[16,16,16\].*cannot hold this encoder/,
    );
  });

  for (const [mode, config, unit] of [
    ["sparse", MICRO, [4, 8, 8]],
    ["simmim", MICRO, [4, 8, 8]],
    ["compact", MICRO_WIDE, [8, 16, 16]],
  ] as Array<["sparse" | "simmim" | "compact", NnFormerConfig, Vec3]>) {
    it(`${mode}: pretraining steps keep tf.memory().numTensors flat and the loss finite`, async () => {
      const counts: number[] = [];
      const before = tf.memory().numTensors;
      const r = await pretrainMae({
        model: config,
        mae: { mask: { mode, ratio: mode === "simmim" ? 0.6 : 0.75, unit } },
        data: { kind: "phantom", seed: 0, count: 2, shape: config.cropSize },
        maxSteps: 5,
        batchSize: 1,
        evalCrops: 1,
        augment: AUGMENT_OFF,
        onStep: () => {
          counts.push(tf.memory().numTensors);
        },
      });
      assert.ok(r.losses.every(Number.isFinite));
      assert.equal(counts[1], counts[2], `tensors per step: ${counts}`);
      assert.equal(counts[2], counts[3], `tensors per step: ${counts}`);
      r.mae.dispose();
      assert.ok(
        tf.memory().numTensors - before <= 40,
        `left behind ${tf.memory().numTensors - before} tensors (op caches only)`,
      );
    });
  }
});
