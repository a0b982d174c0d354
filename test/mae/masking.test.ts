import { strict as assert } from "assert";

import { NNFORMER_E12_16X32X32, NNFORMER_E48_64X64X64, planNnFormer } from "../../src/models/nnformer";
import { partitionIndex } from "../../src/layers/window_attention3d";
import { makeRng } from "../../src/runtime/random";
import {
  checkMaskConfig,
  compactCrop,
  compactGather,
  compactScatterIndex,
  defaultMaskConfig,
  defaultMaskUnit,
  drawMask,
  maskVolume,
  randomMasking,
  visibilityAt,
  voxelVisibility,
} from "../../src/mae/masking";
import type { Vec3 } from "../../src/runtime/math";

const sum = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0);

describe("mae/masking", () => {
  it("keeps exactly round((1 − r)·N) units visible per sample", () => {
    for (const [grid, r] of [
      [[2, 4, 4], 0.75],
      [[8, 4, 4], 0.6],
      [[3, 5, 7], 0.9],
      [[2, 2, 2], 0.5],
    ] as Array<[Vec3, number]>) {
      const N = grid[0] * grid[1] * grid[2];
      for (let seed = 0; seed < 5; seed++) {
        const v = randomMasking(makeRng(seed), grid, r, 3);
        for (let b = 0; b < 3; b++)
          assert.equal(sum(v.subarray(b * N, (b + 1) * N)), Math.round((1 - r) * N), `${grid} r ${r}`);
      }
    }
    // same seed, same mask; another seed, another mask
    assert.deepEqual(randomMasking(makeRng(7), [8, 4, 4], 0.75), randomMasking(makeRng(7), [8, 4, 4], 0.75));
    assert.notDeepEqual(randomMasking(makeRng(7), [8, 4, 4], 0.75), randomMasking(makeRng(8), [8, 4, 4], 0.75));
  });

  it("defaults the unit to patch × stage-0 window, so unshifted stage-0 windows are all visible or all masked", () => {
    assert.deepEqual(defaultMaskUnit(NNFORMER_E48_64X64X64), [8, 16, 16]);
    assert.deepEqual(defaultMaskUnit(NNFORMER_E12_16X32X32), [8, 16, 16]);
    const c = NNFORMER_E48_64X64X64;
    const s = drawMask(makeRng(1), defaultMaskConfig(c), c.cropSize, 2);
    const g = planNnFormer(c).encoder[0].blocks[0];
    const vis = visibilityAt(s, g.grid);
    const idx = partitionIndex(g, 2, -1);
    for (let w = 0; w < idx.length / g.tokens; w++) {
      const vals = new Set(Array.from(idx.subarray(w * g.tokens, (w + 1) * g.tokens), (r) => vis[r]));
      assert.equal(vals.size, 1, `window ${w} mixes visible and masked tokens`);
    }
  });

  it("aligns mask cubes: voxels, embedding grids and stage grids agree; coarse cells are active if any child is", () => {
    const c = NNFORMER_E12_16X32X32;
    const unit: Vec3 = [4, 8, 8];
    const s = drawMask(makeRng(3), { mode: "sparse", ratio: 0.75, unit }, c.cropSize, 2);
    const vox = voxelVisibility(s);
    const [D, H, W] = c.cropSize;
    for (let b = 0; b < 2; b++)
      for (let d = 0; d < D; d++)
        for (let h = 0; h < H; h++)
          for (let w = 0; w < W; w++) {
            const u =
              (Math.floor(d / unit[0]) * s.unitGrid[1] + Math.floor(h / unit[1])) * s.unitGrid[2] +
              Math.floor(w / unit[2]);
            assert.equal(vox[((b * D + d) * H + h) * W + w], s.visible[b * 64 + u]);
          }
    assert.equal(sum(vox), 2 * 16 * unit[0] * unit[1] * unit[2]);
    const grids = planNnFormer(c).encoder.map((st) => st.grid);
    for (let i = 1; i < 4; i++) {
      const fine = visibilityAt(s, grids[i - 1]),
        coarse = visibilityAt(s, grids[i]);
      const [gd, gh, gw] = grids[i],
        [fd, fh, fw] = grids[i - 1];
      for (let b = 0; b < 2; b++)
        for (let d = 0; d < gd; d++)
          for (let h = 0; h < gh; h++)
            for (let w = 0; w < gw; w++) {
              let any = 0;
              for (let x = 2 * d; x < Math.min(fd, 2 * d + 2); x++)
                for (let y = 2 * h; y < Math.min(fh, 2 * h + 2); y++)
                  for (let z = 2 * w; z < Math.min(fw, 2 * w + 2); z++) {
                    any |= fine[((b * fd + x) * fh + y) * fw + z];
                  }
              assert.equal(coarse[((b * gd + d) * gh + h) * gw + w], any, `stage ${i}`);
            }
    }
    const x = Float32Array.from({ length: 2 * D * H * W }, (_, i) => i + 1);
    const xm = maskVolume(x, s);
    for (let i = 0; i < x.length; i++) assert.equal(xm[i], vox[i] ? x[i] : 0);
  });

  it("compact mode keeps one unit per group, packs them, and scatters back exactly", () => {
    const crop: Vec3 = [16, 64, 64],
      unit: Vec3 = [8, 16, 16];
    for (const [ratio, group] of [
      [0.75, [1, 2, 2]],
      [0.875, [2, 2, 2]],
    ] as Array<[number, Vec3]>) {
      const s = drawMask(makeRng(5), { mode: "compact", ratio, unit }, crop, 2);
      const N = s.unitGrid[0] * s.unitGrid[1] * s.unitGrid[2];
      for (let b = 0; b < 2; b++)
        assert.equal(sum(s.visible.subarray(b * N, (b + 1) * N)), N / (group[0] * group[1] * group[2]));
      const cc = compactCrop(crop, group);
      const x = Float32Array.from({ length: 2 * crop[0] * crop[1] * crop[2] }, (_, i) => i);
      const xc = compactGather(x, s);
      assert.equal(xc.length, 2 * cc[0] * cc[1] * cc[2]);
      const idx = compactScatterIndex(s, crop, cc); // voxel level: every visible voxel comes back from its packed copy
      const vox = voxelVisibility(s);
      for (let i = 0; i < x.length; i++) assert.equal(idx[i] >= 0 ? xc[idx[i]] : -1, vox[i] ? x[i] : -1);
    }
  });

  it("rejects bad settings with errors that name the value and the fix", () => {
    const c = NNFORMER_E12_16X32X32;
    const unit: Vec3 = [8, 16, 16];
    for (const ratio of [0, 1, 1.2, -0.1, NaN]) {
      assert.throws(
        () => checkMaskConfig({ mode: "sparse", ratio, unit }, c),
        /mask\.ratio = .*strictly between 0 and 1/,
      );
    }
    assert.throws(() => checkMaskConfig({ mode: "sparse", ratio: 0.95, unit }, c), /keeps 0 visible/);
    assert.throws(
      () => checkMaskConfig({ mode: "sparse", ratio: 0.75, unit: [8, 12, 16] }, c),
      /mask\.unit = \[8,12,16\].*does not divide the crop/,
    );
    assert.throws(
      () => checkMaskConfig({ mode: "sparse", ratio: 0.75, unit: [8, 16, 2] }, c),
      /not a multiple of the embedding patch \[2,4,4\]/,
    );
    assert.throws(() => checkMaskConfig({ mode: "compact", ratio: 0.6, unit }, c), /ratio must be 0\.75.*or 0\.875/);
    assert.throws(
      () => checkMaskConfig({ mode: "bogus" as never, ratio: 0.75, unit }, c),
      /mask\.mode = "bogus": use one of sparse, simmim, compact/,
    );
  });
});
