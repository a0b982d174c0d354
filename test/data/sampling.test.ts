import { strict as assert } from "assert";
import { Vec3 } from "../../src/runtime/math";
import { Grid } from "../../src/data/transforms";
import { extractCrop, foregroundIndex, sampleCropStart } from "../../src/data/sampling";
import { makeRng } from "../../src/runtime/random";

function labelGrid(shape: Vec3, f: (d: number, h: number, w: number) => number): Grid<Uint8Array> {
  const data = new Uint8Array(shape[0] * shape[1] * shape[2]);
  let i = 0;
  for (let d = 0; d < shape[0]; d++)
    for (let h = 0; h < shape[1]; h++) for (let w = 0; w < shape[2]; w++) data[i++] = f(d, h, w);
  return { data, shape, channels: 1 };
}

const inBox = (d: number, h: number, w: number, lo: Vec3, hi: Vec3) =>
  d >= lo[0] && d < hi[0] && h >= lo[1] && h < hi[1] && w >= lo[2] && w < hi[2];

describe("data/sampling", () => {
  // 48^3 case with a 3^3 blob of class 1 near one corner and a 2^3 blob of class 2 near another
  const shape: Vec3 = [48, 48, 48];
  const label = labelGrid(shape, (d, h, w) =>
    inBox(d, h, w, [5, 40, 6], [8, 43, 9]) ? 1 : inBox(d, h, w, [40, 3, 41], [42, 5, 43]) ? 2 : 0,
  );
  const index = foregroundIndex(label);
  const crop: Vec3 = [16, 16, 16];

  function containsClass(start: Vec3, k: number): boolean {
    for (const [cls, lo, hi] of [
      [1, [5, 40, 6], [8, 43, 9]],
      [2, [40, 3, 41], [42, 5, 43]],
    ] as Array<[number, Vec3, Vec3]>) {
      if (cls !== k) continue;
      // boxes overlap on every axis
      if ([0, 1, 2].every((a) => start[a] < hi[a] && start[a] + crop[a] > lo[a])) return true;
    }
    return false;
  }

  it("foregroundIndex lists each class's voxels", () => {
    assert.deepEqual(index.classes, [1, 2]);
    assert.equal(index.locations.get(1)?.length, 27);
    assert.equal(index.locations.get(2)?.length, 8);
    for (const i of index.locations.get(2) ?? []) assert.equal(label.data[i], 2);
    assert.throws(() => foregroundIndex({ data: new Float32Array([0, 1.5]), shape: [1, 1, 2], channels: 1 }), /1\.5/);
  });

  it("forced-foreground crops hit foreground at roughly the requested rate", () => {
    const rng = makeRng(11);
    for (const p of [0, 0.33, 1]) {
      let hits = 0;
      const n = 1500;
      for (let t = 0; t < n; t++) {
        const s = sampleCropStart(rng, shape, crop, { label: index, foregroundProb: p });
        for (let a = 0; a < 3; a++) assert.ok(s[a] >= 0 && s[a] + crop[a] <= shape[a], `crop ${s} leaves the volume`);
        if (containsClass(s, 1) || containsClass(s, 2)) hits++;
      }
      const rate = hits / n;
      // the blobs sit near corners, so a uniform crop rarely contains one (about 2-3% with this seed)
      const lo = p === 1 ? 1 : p * 0.8,
        hi = p + (1 - p) * 0.15;
      assert.ok(rate >= lo && rate <= hi, `foregroundProb ${p}: hit rate ${rate} outside [${lo}, ${hi}]`);
    }
  });

  it("classes restricts the forced class; both classes get picked without it", () => {
    const rng = makeRng(3);
    for (let t = 0; t < 200; t++) {
      assert.ok(containsClass(sampleCropStart(rng, shape, crop, { label: index, foregroundProb: 1, classes: [2] }), 2));
    }
    let c1 = 0,
      c2 = 0;
    for (let t = 0; t < 120; t++) {
      const s = sampleCropStart(rng, shape, crop, { label: label, foregroundProb: 1 }); // a plain label also works
      if (containsClass(s, 1)) c1++;
      if (containsClass(s, 2)) c2++;
    }
    assert.ok(c1 > 35 && c2 > 35, `${c1} ${c2}`);
    // absent class: falls back to uniform crops
    const s = sampleCropStart(rng, shape, crop, { label: index, foregroundProb: 1, classes: [7] });
    assert.ok(s.every((x, a) => x >= 0 && x + crop[a] <= shape[a]));
  });

  it("same seed gives the same crops", () => {
    const draw = (seed: number) => {
      const rng = makeRng(seed);
      return Array.from({ length: 20 }, () => sampleCropStart(rng, shape, crop, { label: index, foregroundProb: 0.5 }));
    };
    assert.deepEqual(draw(5), draw(5));
    assert.notDeepEqual(draw(5), draw(6));
  });

  it("volumes smaller than the crop: the crop sticks out evenly and extractCrop pads", () => {
    const small: Vec3 = [10, 20, 5];
    const rng = makeRng(1);
    const lab = labelGrid(small, (d, h, w) => (d === 9 && h === 0 && w === 4 ? 3 : 0));
    for (let t = 0; t < 50; t++) {
      const s = sampleCropStart(rng, small, [16, 16, 16], { label: foregroundIndex(lab), foregroundProb: 0.5 });
      assert.equal(s[0], -3); // 6 voxels of padding: 3 before, 3 after
      assert.equal(s[2], -5); // 11: 5 before, 6 after
      assert.ok(s[1] >= 0 && s[1] <= 4);
    }
    const img: Grid<Float32Array> = {
      data: new Float32Array(10 * 20 * 5 * 2).map((_, i) => i + 1),
      shape: small,
      channels: 2,
    };
    const c = extractCrop(img, lab, [-3, 2, -5], [16, 16, 16], { imagePad: -7 });
    assert.deepEqual(c.image.shape, [16, 16, 16]);
    assert.equal(c.image.channels, 2);
    assert.ok(c.label && c.label.data instanceof Uint8Array);
    // crop voxel (d, h, w) = source voxel (d - 3, h + 2, w - 5)
    const at = (d: number, h: number, w: number) => (d * 16 + h) * 16 + w;
    assert.equal(c.image.data[2 * at(3, 0, 5) + 1], img.data[2 * ((0 * 20 + 2) * 5 + 0) + 1]);
    assert.equal(c.image.data[2 * at(0, 0, 0)], -7);
    assert.equal(c.label.data[at(12, 0, 9)], 0); // h = 0 + 2 in the source, label sits at h = 0
    const c2 = extractCrop(img, lab, [-3, -2, -5], [16, 16, 16]);
    assert.equal(c2?.label?.data[at(12, 2, 9)], 3);
  });

  it("rejects bad arguments, naming them", () => {
    const rng = makeRng(0);
    assert.throws(() => sampleCropStart(rng, shape, [16, 0, 16], { foregroundProb: 0.3 }), /cropShape.*\[16,0,16\]/);
    assert.throws(() => sampleCropStart(rng, shape, crop, { foregroundProb: 1.5 }), /foregroundProb.*1\.5/);
    assert.throws(
      () => sampleCropStart(rng, [40, 48, 48], crop, { label: index, foregroundProb: 1 }),
      /label shape.*differs/,
    );
    const img: Grid<Float32Array> = { data: new Float32Array(8), shape: [2, 2, 2], channels: 1 };
    const lab: Grid<Uint8Array> = { data: new Uint8Array(12), shape: [2, 2, 3], channels: 1 };
    assert.throws(
      () => extractCrop(img, lab, [0, 0, 0], [2, 2, 2]),
      /label shape \[2,2,3\] differs from image shape \[2,2,2\]/,
    );
  });
});
