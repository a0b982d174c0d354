import { strict as assert } from "assert";
import { Vec3 } from "../../src/runtime/math";
import { Grid } from "../../src/data/transforms";
import { AUGMENT_DEFAULT, AUGMENT_OFF, AugmentConfig, augment, mirrorRot90, rotateScale } from "../../src/data/augment";
import { makeRng } from "../../src/runtime/random";

/** Label with a few solid blocks (classes 1-3) and the image image = 10 * label (+ channel 2 = -10 * label). */
function blocks(shape: Vec3, channels = 1): { image: Grid<Float32Array>; label: Grid<Uint8Array> } {
  const [D, H, W] = shape;
  const label = new Uint8Array(D * H * W);
  let i = 0;
  for (let d = 0; d < D; d++)
    for (let h = 0; h < H; h++)
      for (let w = 0; w < W; w++, i++) {
        if (d >= 2 && d < D / 2 && h >= 3 && h < H / 2 + 3 && w >= 2 && w < W / 2) label[i] = 1;
        else if (d >= D / 2 && d < D - 3 && h >= 4 && h < H - 2 && w >= W / 2 - 1 && w < W - 3) label[i] = 2;
        else if (d >= D / 2 && h < 4 && w < 5) label[i] = 3;
      }
  const image = new Float32Array(D * H * W * channels);
  for (let v = 0; v < label.length; v++)
    for (let c = 0; c < channels; c++) image[v * channels + c] = (c === 0 ? 10 : -10) * label[v] || 0; // no -0
  return { image: { data: image, shape, channels }, label: { data: label, shape, channels: 1 } };
}

const relationExact = (img: Grid<Float32Array>, lab: Grid) => {
  for (let v = 0; v < lab.data.length; v++) {
    for (let c = 0; c < img.channels; c++)
      assert.equal(img.data[v * img.channels + c], (c === 0 ? 10 : -10) * lab.data[v] || 0);
  }
};

/** Fraction of voxels where the trilinear image agrees with 10 * nearest label to within half a class step. */
const agreement = (img: Grid<Float32Array>, lab: Grid) => {
  let ok = 0;
  for (let v = 0; v < lab.data.length; v++) if (Math.abs(img.data[v * img.channels] - 10 * lab.data[v]) < 5) ok++;
  return ok / lab.data.length;
};

describe("data/augment", () => {
  const { image, label } = blocks([12, 16, 16], 2);

  it("flips and rot90 are exact permutations: flip twice and four quarter turns are the identity", () => {
    const f = mirrorRot90(image, [true, false, true]);
    assert.notDeepEqual(Array.from(f.data), Array.from(image.data));
    assert.deepEqual(Array.from(mirrorRot90(f, [true, false, true]).data), Array.from(image.data));
    let r = image;
    for (let k = 0; k < 4; k++) r = mirrorRot90(r, [false, false, false], { plane: [1, 2], k: 1 });
    assert.deepEqual(Array.from(r.data), Array.from(image.data));
    const r1 = mirrorRot90(image, [false, false, false], { plane: [1, 2], k: 1 });
    const back = mirrorRot90(r1, [false, false, false], { plane: [1, 2], k: 3 });
    assert.deepEqual(Array.from(back.data), Array.from(image.data));
    assert.throws(() => mirrorRot90(image, [false, false, false], { plane: [0, 1], k: 1 }), /sizes 12 and 16.*equal/);
  });

  it("rot90 follows numpy.rot90 on a hand-made 1x2x2 grid", () => {
    // [[1, 2], [3, 4]] in the H-W plane -> np.rot90 -> [[2, 4], [1, 3]]
    const g: Grid<Float32Array> = { data: Float32Array.from([1, 2, 3, 4]), shape: [1, 2, 2], channels: 1 };
    assert.deepEqual(Array.from(mirrorRot90(g, [false, false, false], { plane: [1, 2], k: 1 }).data), [2, 4, 1, 3]);
    assert.deepEqual(Array.from(mirrorRot90(g, [false, false, false], { plane: [1, 2], k: 2 }).data), [4, 3, 2, 1]);
    assert.deepEqual(Array.from(mirrorRot90(g, [false, true, false]).data), [3, 4, 1, 2]);
  });

  it("rotateScale: identity is exact; 90 degrees about D equals rot90; labels stay aligned", () => {
    const id = rotateScale(image, label, [0, 0, 0], 1);
    assert.deepEqual(Array.from(id.image.data), Array.from(image.data));
    assert.deepEqual(Array.from(id.label?.data ?? []), Array.from(label.data));
    const turned = rotateScale(image, label, [90, 0, 0], 1);
    const ref = mirrorRot90(image, [false, false, false], { plane: [1, 2], k: 3 });
    const refLab = mirrorRot90(label, [false, false, false], { plane: [1, 2], k: 3 });
    turned.image.data.forEach((v, i) => assert.ok(Math.abs(v - ref.data[i]) < 1e-3, `${i}: ${v} vs ${ref.data[i]}`));
    assert.deepEqual(Array.from(turned.label?.data ?? []), Array.from(refLab.data));
    // scale > 1 samples a larger region, so the corners come from outside the crop: zero fill
    const out = rotateScale(image, label, [0, 0, 0], 1.5, "zero");
    assert.ok(out.label && out.label.data[0] === 0 && out.image.data[0] === 0);
  });

  it("label and image stay aligned under every augmentation (exact for permutations, approximate for resampling)", () => {
    const perm: AugmentConfig = {
      ...AUGMENT_OFF,
      flipProb: [0.5, 0.5, 0.5],
      rot90Prob: 1,
      rot90Planes: [
        [1, 2],
        [0, 1],
      ],
    };
    const cube = blocks([16, 16, 16], 2);
    for (let seed = 0; seed < 8; seed++) {
      const out = augment(makeRng(seed), cube.image, cube.label, perm);
      relationExact(out.image, out.label as Grid);
    }
    const spatial: AugmentConfig = {
      ...AUGMENT_OFF,
      rotateProb: 1,
      rotateDeg: [30, 30, 30],
      scaleProb: 1,
      scaleRange: [0.7, 1.4],
    };
    const big = blocks([24, 32, 32]);
    for (let seed = 0; seed < 6; seed++) {
      for (const fill of ["zero", "edge"] as const) {
        const out = augment(makeRng(seed), big.image, big.label, { ...spatial, fill });
        const a = agreement(out.image, out.label as Grid);
        assert.ok(a > 0.95, `seed ${seed} ${fill}: only ${a} of voxels agree`);
        assert.ok(Array.from(new Set(out.label?.data)).every((k) => [0, 1, 2, 3].includes(k)));
      }
    }
  });

  it("intensity augmentations change the image only; gamma keeps mean and std", () => {
    const intensity: AugmentConfig = { ...AUGMENT_OFF, noiseProb: 1, brightnessProb: 1, contrastProb: 1, gammaProb: 1 };
    const out = augment(makeRng(4), image, label, intensity);
    assert.deepEqual(Array.from(out.label?.data ?? []), Array.from(label.data));
    assert.notDeepEqual(Array.from(out.image.data), Array.from(image.data));
    const stats = (x: Float32Array, c: number) => {
      const xs = x.filter((_, i) => i % 2 === c);
      const m = xs.reduce((s, y) => s + y, 0) / xs.length;
      return { m, s: Math.sqrt(xs.reduce((s, y) => s + (y - m) ** 2, 0) / xs.length) };
    };
    const g = augment(makeRng(9), image, label, { ...AUGMENT_OFF, gammaProb: 1, gammaInvertProb: 0.5 });
    for (const c of [0, 1]) {
      const before = stats(image.data, c),
        after = stats(g.image.data, c);
      assert.ok(
        Math.abs(before.m - after.m) < 1e-3 && Math.abs(before.s - after.s) < 1e-3,
        `${JSON.stringify([before, after])}`,
      );
    }
    const noisy = augment(makeRng(2), image, null, { ...AUGMENT_OFF, noiseProb: 1, noiseStd: [0.2, 0.2] });
    const diff = noisy.image.data.map((v, i) => v - image.data[i]);
    const d = stats(diff, 0);
    assert.ok(Math.abs(d.m) < 0.02 && Math.abs(d.s - 0.2) < 0.01, `${d.m} ${d.s}`);
    assert.equal(noisy.label, null);
  });

  it("same seed gives identical output, different seeds differ; AUGMENT_OFF copies", () => {
    const cfg: AugmentConfig = { ...AUGMENT_DEFAULT, noiseProb: 1, rotateProb: 0.5, rot90Prob: 0.5 };
    const a = augment(makeRng(21), image, label, cfg),
      b = augment(makeRng(21), image, label, cfg);
    assert.deepEqual(Array.from(a.image.data), Array.from(b.image.data));
    assert.deepEqual(Array.from(a.label?.data ?? []), Array.from(b.label?.data ?? []));
    const c = augment(makeRng(22), image, label, cfg);
    assert.notDeepEqual(Array.from(a.image.data), Array.from(c.image.data));
    const off = augment(makeRng(1), image, label, AUGMENT_OFF);
    assert.notEqual(off.image.data, image.data);
    assert.deepEqual(Array.from(off.image.data), Array.from(image.data));
    assert.deepEqual(Array.from(off.label?.data ?? []), Array.from(label.data));
  });

  it("rejects bad configs and inputs, naming the field", () => {
    assert.throws(
      () => augment(makeRng(0), image, label, { ...AUGMENT_DEFAULT, rotateProb: 2 }),
      /config\.rotateProb is 2.*\[0, 1\]/,
    );
    assert.throws(
      () => augment(makeRng(0), image, label, { ...AUGMENT_DEFAULT, scaleRange: [1.2, 0.8] }),
      /config\.scaleRange.*\[1\.2,0\.8\]/,
    );
    assert.throws(
      () => augment(makeRng(0), image, label, { ...AUGMENT_DEFAULT, rot90Planes: [[1, 1]] }),
      /rot90Planes/,
    );
    assert.throws(
      () => augment(makeRng(0), image, label, { ...AUGMENT_DEFAULT, fill: "reflect" as never }),
      /config\.fill.*"reflect"/,
    );
    const small: Grid<Uint8Array> = { data: new Uint8Array(8), shape: [2, 2, 2], channels: 1 };
    assert.throws(
      () => augment(makeRng(0), image, small, AUGMENT_DEFAULT),
      /label shape \[2,2,2\] differs from image shape \[12,16,16\]/,
    );
    const u8img = {
      data: new Uint8Array(12 * 16 * 16 * 2),
      shape: [12, 16, 16],
      channels: 2,
    } as unknown as Grid<Float32Array>;
    assert.throws(() => augment(makeRng(0), u8img, label, AUGMENT_DEFAULT), /Float32Array.*Uint8Array/);
    assert.throws(() => rotateScale(image, label, [0, 0, 0], -1), /scale.*-1/);
  });
});
