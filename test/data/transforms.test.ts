import { strict as assert } from "assert";
import { Affine, Volume, diagonalAffine } from "../../src/data/volume";
import {
  computeCtStats,
  cropBox,
  cropOrPad,
  ctNormalize,
  nonZeroBoundingBox,
  resampleToShape,
  resampleToSpacing,
  uncropOrPad,
  windowCt,
  zScore,
} from "../../src/data/transforms";
import { makeRng, normal } from "../../src/runtime/random";
import type { Vec3 } from "../../src/runtime/math";

function makeVolume(
  shape: Vec3,
  f: (d: number, h: number, w: number) => number,
  spacing: Vec3 = [1, 1, 1],
  affine?: Affine,
): Volume<Float32Array> {
  const data = new Float32Array(shape[0] * shape[1] * shape[2]);
  let i = 0;
  for (let d = 0; d < shape[0]; d++)
    for (let h = 0; h < shape[1]; h++) for (let w = 0; w < shape[2]; w++) data[i++] = f(d, h, w);
  return { data, shape, channels: 1, spacing, affine: affine ?? diagonalAffine(spacing), source: "test" };
}

/** World (x, y, z) of continuous voxel (d, h, w). */
function world(a: Affine, d: number, h: number, w: number): number[] {
  return [0, 1, 2].map((r) => a[r][0] * w + a[r][1] * h + a[r][2] * d + a[r][3]);
}

/** Inverse of a 3x3 + translation affine: world -> continuous voxel [d, h, w]. */
function toVoxel(a: Affine, p: number[]): number[] {
  const m = [
    [a[0][0], a[0][1], a[0][2]],
    [a[1][0], a[1][1], a[1][2]],
    [a[2][0], a[2][1], a[2][2]],
  ];
  const det =
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
    m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
    m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  const inv = [
    [
      m[1][1] * m[2][2] - m[1][2] * m[2][1],
      m[0][2] * m[2][1] - m[0][1] * m[2][2],
      m[0][1] * m[1][2] - m[0][2] * m[1][1],
    ],
    [
      m[1][2] * m[2][0] - m[1][0] * m[2][2],
      m[0][0] * m[2][2] - m[0][2] * m[2][0],
      m[0][2] * m[1][0] - m[0][0] * m[1][2],
    ],
    [
      m[1][0] * m[2][1] - m[1][1] * m[2][0],
      m[0][1] * m[2][0] - m[0][0] * m[2][1],
      m[0][0] * m[1][1] - m[0][1] * m[1][0],
    ],
  ].map((r) => r.map((v) => v / det));
  const q = [p[0] - a[0][3], p[1] - a[1][3], p[2] - a[2][3]];
  const ijk = inv.map((r) => r[0] * q[0] + r[1] * q[1] + r[2] * q[2]);
  return [ijk[2], ijk[1], ijk[0]];
}

/** An oblique affine: rotation about z by 30 degrees times diag(spacing), with an origin. */
function obliqueAffine(spacing: Vec3): Affine {
  const c = Math.cos(Math.PI / 6),
    s = Math.sin(Math.PI / 6);
  const [sd, sh, sw] = spacing;
  return [
    [c * sw, -s * sh, 0, 12.5],
    [s * sw, c * sh, 0, -40],
    [0, 0, sd, 7],
    [0, 0, 0, 1],
  ];
}

describe("data/transforms", () => {
  describe("resampling", () => {
    const spacing: Vec3 = [2.5, 0.8, 1.2];
    const affine = obliqueAffine(spacing);
    // a linear function of world position: trilinear resampling must reproduce it exactly inside the old grid
    const ramp = (p: number[]) => 0.3 * p[0] - 0.7 * p[1] + 1.9 * p[2] + 5;
    const vol = makeVolume([9, 20, 15], (d, h, w) => ramp(world(affine, d, h, w)), spacing, affine);

    function checkRamp(out: Volume, tol: number) {
      let checked = 0;
      let i = 0;
      for (let d = 0; d < out.shape[0]; d++)
        for (let h = 0; h < out.shape[1]; h++)
          for (let w = 0; w < out.shape[2]; w++, i++) {
            const p = world(out.affine, d, h, w);
            const q = toVoxel(vol.affine, p);
            if (q.some((x, a) => x < -1e-6 || x > vol.shape[a] - 1 + 1e-6)) continue; // outside: edge clamped
            assert.ok(Math.abs(out.data[i] - ramp(p)) < tol, `voxel ${[d, h, w]}: ${out.data[i]} vs ${ramp(p)}`);
            checked++;
          }
      assert.ok(checked > out.data.length * 0.5, `only ${checked} interior voxels checked`);
    }

    it("resampleToSpacing: ramp exact in the interior, spacing and affine updated, centre kept", () => {
      const target: Vec3 = [1.5, 1.1, 0.7];
      const out = resampleToSpacing(vol, target, "linear");
      assert.deepEqual(out.shape, [15, 15, 26]); // round(9*2.5/1.5), round(20*.8/1.1), round(15*1.2/.7)
      assert.deepEqual(out.spacing, target);
      assert.ok(out.data instanceof Float32Array);
      // affine columns have the new voxel sizes (W, H, D columns)
      for (let c = 0; c < 3; c++) {
        const norm = Math.hypot(out.affine[0][c], out.affine[1][c], out.affine[2][c]);
        assert.ok(Math.abs(norm - target[2 - c]) < 1e-9, `column ${c} norm ${norm}`);
      }
      // the grid centre stays at the same world position
      const c0 = world(vol.affine, 4, 9.5, 7),
        c1 = world(out.affine, 7, 7, 12.5);
      c0.forEach((x, k) => assert.ok(Math.abs(x - c1[k]) < 1e-9));
      checkRamp(out, 2e-3);
    });

    it("resampleToShape: ramp exact in the interior, spacing = spacing * old / new", () => {
      const out = resampleToShape(vol, [5, 33, 21], "linear");
      assert.deepEqual(out.shape, [5, 33, 21]);
      out.spacing.forEach((s, a) => assert.ok(Math.abs(s - (spacing[a] * vol.shape[a]) / out.shape[a]) < 1e-12));
      checkRamp(out, 2e-3);
      // same shape is the identity
      const same = resampleToShape(vol, vol.shape, "linear");
      same.data.forEach((v, i) => assert.ok(Math.abs(v - vol.data[i]) < 1e-4));
      assert.deepEqual(same.affine, vol.affine);
    });

    it("nearest keeps the label set and the array type", () => {
      const lab = makeVolume([12, 14, 10], (d, h, w) => ((d >> 2) + (h >> 2) + (w >> 2)) % 4);
      const u8: Volume<Uint8Array> = {
        ...lab,
        data: Uint8Array.from(lab.data),
        spacing: [2, 1, 1],
        affine: diagonalAffine([2, 1, 1]),
      };
      for (const target of [
        [1, 1, 1],
        [3, 2.1, 0.6],
      ] as Vec3[]) {
        const out = resampleToSpacing(u8, target, "nearest");
        assert.ok(out.data instanceof Uint8Array);
        assert.deepEqual([...new Set(out.data)].sort(), [0, 1, 2, 3]);
      }
      // exact factor-2 upsampling repeats each voxel twice
      const up = resampleToShape(u8, [24, 28, 20], "nearest");
      for (let d = 0; d < 24; d++) {
        const a = up.data[(d * 28 + 5) * 20 + 7],
          b = u8.data[((d >> 1) * 14 + 2) * 10 + 3];
        assert.equal(a, b);
      }
    });

    it("downsample then upsample a smooth field stays close", () => {
      const f = (d: number, h: number, w: number) => Math.sin(d / 6) * Math.cos(h / 8) + 0.5 * Math.sin(w / 7 + 1);
      const v = makeVolume([32, 32, 32], f, [1, 1, 1]);
      const down = resampleToSpacing(v, [2, 2, 2], "linear");
      assert.deepEqual(down.shape, [16, 16, 16]);
      const back = resampleToShape(down, [32, 32, 32], "linear");
      let maxErr = 0,
        sum = 0;
      let i = 0;
      for (let d = 0; d < 32; d++)
        for (let h = 0; h < 32; h++)
          for (let w = 0; w < 32; w++, i++) {
            const e = Math.abs(back.data[i] - v.data[i]);
            sum += e;
            if (d > 1 && d < 30 && h > 1 && h < 30 && w > 1 && w < 30) maxErr = Math.max(maxErr, e);
          }
      assert.ok(maxErr < 0.03, `interior max error ${maxErr}`);
      assert.ok(sum / v.data.length < 0.02, `mean error ${sum / v.data.length}`);
      // world positions: the resampled grid's world centre equals the original one
      const c0 = world(v.affine, 15.5, 15.5, 15.5),
        c1 = world(down.affine, 7.5, 7.5, 7.5);
      c0.forEach((x, k) => assert.ok(Math.abs(x - c1[k]) < 1e-9));
    });

    it("multichannel volumes resample per channel", () => {
      const data = new Float32Array(4 * 4 * 4 * 2);
      for (let v = 0; v < 64; v++) {
        data[2 * v] = v;
        data[2 * v + 1] = -v;
      }
      const vol2: Volume = {
        data,
        shape: [4, 4, 4],
        channels: 2,
        spacing: [1, 1, 1],
        affine: diagonalAffine([1, 1, 1]),
        source: "two",
      };
      const out = resampleToShape(vol2, [8, 8, 8], "linear");
      assert.equal(out.data.length, 8 * 8 * 8 * 2);
      for (let v = 0; v < 512; v++) assert.ok(Math.abs(out.data[2 * v] + out.data[2 * v + 1]) < 1e-5);
    });

    it("rejects bad spacing, shape, mode and data length, naming the argument", () => {
      assert.throws(() => resampleToSpacing(vol, [1, 0, 1], "linear"), /targetSpacing.*\[1,0,1\]/);
      assert.throws(
        () => resampleToSpacing({ ...vol, spacing: [1, -2, 1] }, [1, 1, 1], "linear"),
        /vol\.spacing.*test.*-2/,
      );
      assert.throws(() => resampleToSpacing(vol, [1, 1, 1], "cubic" as never), /mode.*"cubic"/);
      assert.throws(() => resampleToShape(vol, [4, 0, 4], "nearest"), /shape.*\[4,0,4\]/);
      assert.throws(
        () => resampleToShape({ ...vol, shape: [9, 20, 16] }, [4, 4, 4], "linear"),
        /vol.*2700 values.*needs 2880/,
      );
    });
  });

  describe("cropping", () => {
    const vol = makeVolume([7, 10, 5], (d, h, w) => 100 * d + 10 * h + w + 1, [2, 1, 1], obliqueAffine([2, 1, 1]));

    it("cropOrPad then uncropOrPad puts every kept voxel back; affine keeps world positions", () => {
      const { volume: out, offset } = cropOrPad(vol, [10, 6, 5], { padValue: -1 });
      assert.deepEqual(out.shape, [10, 6, 5]);
      assert.deepEqual(offset, [-1, 2, 0]); // pad 3 on D (1 before), crop 4 on H (2 before)
      // new voxel p is old voxel p + offset: value and world position agree
      const at = (v: Volume, d: number, h: number, w: number) => v.data[(d * v.shape[1] + h) * v.shape[2] + w];
      assert.equal(at(out, 0, 0, 0), -1);
      assert.equal(at(out, 1, 0, 0), at(vol, 0, 2, 0));
      assert.equal(at(out, 9, 0, 0), -1);
      const p0 = world(out.affine, 3, 4, 2),
        p1 = world(vol.affine, 2, 6, 2);
      p0.forEach((x, k) => assert.ok(Math.abs(x - p1[k]) < 1e-9));
      const back = uncropOrPad(out, vol.shape, offset, 0);
      assert.deepEqual(back.shape, vol.shape);
      assert.deepEqual(
        back.affine.map((r) => r.map((x) => +x.toFixed(9))),
        vol.affine.map((r) => r.map((x) => +x.toFixed(9))),
      );
      for (let d = 0; d < 7; d++)
        for (let h = 0; h < 10; h++)
          for (let w = 0; w < 5; w++) {
            const kept = h >= 2 && h < 8;
            assert.equal(at(back, d, h, w), kept ? at(vol, d, h, w) : 0);
          }
      // not centred: origin fixed, crop/pad at the far end
      const far = cropOrPad(vol, [8, 4, 5], { center: false });
      assert.deepEqual(far.offset, [0, 0, 0]);
      assert.equal(far.volume.data[0], vol.data[0]);
    });

    it("cropBox pads outside; padValue null forbids it", () => {
      const box = cropBox(vol, [-2, 8, 3], [4, 4, 4], 0);
      assert.equal(box.data[0], 0);
      assert.equal(box.data[(2 * 4 + 0) * 4 + 0], vol.data[(0 * 10 + 8) * 5 + 3]);
      assert.equal(box.data[(2 * 4 + 0) * 4 + 2], 0); // w = 5 is outside
      assert.throws(() => cropBox(vol, [-2, 8, 3], [4, 4, 4], null), /padValue is null.*padValue/);
      assert.throws(() => cropOrPad(vol, [8, 4, 4], { allowPad: false }), /larger than volume.*axis D.*allowPad/);
      assert.throws(() => cropBox(vol, [0.5, 0, 0] as Vec3, [2, 2, 2]), /start.*0\.5/);
    });

    it("nonZeroBoundingBox finds the box over all channels; null when empty", () => {
      const v = makeVolume([6, 7, 8], () => 0);
      assert.equal(nonZeroBoundingBox(v), null);
      v.data[(1 * 7 + 2) * 8 + 3] = 5;
      v.data[(4 * 7 + 5) * 8 + 1] = -1;
      assert.deepEqual(nonZeroBoundingBox(v), { start: [1, 2, 1], size: [4, 4, 3] });
    });
  });

  describe("intensity", () => {
    it("computeCtStats: foreground percentiles, mean and std across cases", () => {
      // foreground values 0..200 split over two cases, background voxels are ignored
      const mk = (vals: number[], bg: number) => {
        const n = vals.length + 10;
        const img = makeVolume([1, 1, n], (_d, _h, w) => (w < vals.length ? vals[w] : bg));
        const lab = makeVolume([1, 1, n], (_d, _h, w) => (w < vals.length ? 1 + (w % 2) : 0));
        return { img, lab };
      };
      const a = mk(
        Array.from({ length: 101 }, (_, i) => i),
        -1000,
      );
      const b = mk(
        Array.from({ length: 100 }, (_, i) => 101 + i),
        3000,
      );
      const s = computeCtStats([a.img, b.img], [a.lab, b.lab]);
      assert.equal(s.count, 201);
      assert.ok(Math.abs(s.clip[0] - 1) < 1e-9 && Math.abs(s.clip[1] - 199) < 1e-9, `${s.clip}`);
      assert.ok(Math.abs(s.mean - 100) < 1e-9);
      assert.ok(Math.abs(s.std - Math.sqrt((201 * 201 - 1) / 12)) < 1e-9);
      assert.throws(() => computeCtStats([a.img], [a.lab, b.lab]), /same length.*1 images and 2 labels/);
      assert.throws(() => computeCtStats([a.img], [b.lab]), /shape.*differs/);
    });

    it("ctNormalize clips then z-scores; windowCt maps to [0, 1]", () => {
      const v = makeVolume([1, 1, 5], (_d, _h, w) => [-1000, 0, 50, 100, 2000][w]);
      const n = ctNormalize(v, { clip: [-100, 200], mean: 50, std: 25 });
      assert.deepEqual(Array.from(n.data), [-6, -2, 0, 2, 6]);
      const wdw = windowCt(v, 50, 100);
      assert.deepEqual(Array.from(wdw.data), [0, 0, 0.5, 1, 1]);
      assert.throws(() => ctNormalize(v, { clip: [-100, 200], mean: 50, std: 0 }), /stats\.std.*0/);
      assert.throws(() => ctNormalize(v, { clip: [200, -100], mean: 50, std: 1 }), /stats\.clip.*\[200,-100\]/);
      assert.throws(() => windowCt(v, 40, -5), /width.*-5/);
    });

    it("zScore: mean 0, std 1 per channel; nonZeroOnly leaves the outside at 0", () => {
      const rng = makeRng(7);
      const n = 10 * 10 * 10;
      const data = new Float32Array(n * 2);
      for (let v = 0; v < n; v++) {
        data[2 * v] = normal(rng, 300, 40);
        data[2 * v + 1] = normal(rng, -5, 2);
      }
      const vol: Volume = {
        data,
        shape: [10, 10, 10],
        channels: 2,
        spacing: [1, 1, 1],
        affine: diagonalAffine([1, 1, 1]),
        source: "mri",
      };
      const stats = (x: Float32Array, c: number, keep: (v: number) => boolean) => {
        const xs: number[] = [];
        for (let v = 0; v < n; v++) if (keep(v)) xs.push(x[2 * v + c]);
        const m = xs.reduce((s, y) => s + y, 0) / xs.length;
        return { m, s: Math.sqrt(xs.reduce((s, y) => s + (y - m) ** 2, 0) / xs.length) };
      };
      const z = zScore(vol);
      for (const c of [0, 1]) {
        const { m, s } = stats(z.data, c, () => true);
        assert.ok(Math.abs(m) < 1e-5 && Math.abs(s - 1) < 1e-4, `channel ${c}: ${m} ${s}`);
      }
      // a "brain" in the first half of D; outside every channel is 0
      const masked = Float32Array.from(data);
      for (let v = n / 2; v < n; v++) {
        masked[2 * v] = 0;
        masked[2 * v + 1] = 0;
      }
      const zm = zScore({ ...vol, data: masked }, { nonZeroOnly: true });
      for (let v = n / 2; v < n; v++) assert.ok(zm.data[2 * v] === 0 && zm.data[2 * v + 1] === 0);
      for (const c of [0, 1]) {
        const { m, s } = stats(zm.data, c, (v) => v < n / 2);
        assert.ok(Math.abs(m) < 1e-5 && Math.abs(s - 1) < 1e-4, `masked channel ${c}: ${m} ${s}`);
      }
    });
  });
});
