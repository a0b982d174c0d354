import { strict as assert } from "assert";
import { Volume, diagonalAffine } from "../../src/data/volume";
import type { Vec3 } from "../../src/runtime/math";
import {
  BODY_THRESHOLD_HU,
  applyPreprocessing,
  computePreprocessing,
  diffPreprocessing,
  nnunetTargetSpacing,
  predictionToSource,
  preprocessCase,
  preprocessLabel,
} from "../../src/data/preprocess";
import { resampleToGrid, resampleToSpacing } from "../../src/data/transforms";

function vol<T extends Float32Array | Uint8Array>(data: T, shape: Vec3, spacing: Vec3, source = "test"): Volume<T> {
  return { data, shape, channels: 1, spacing, affine: diagonalAffine(spacing, [10, -20, 5]), source };
}

const close = (a: number, b: number, tol = 1e-9, msg = "") => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b} ${msg}`);

describe("data/preprocess", () => {
  describe("nnunetTargetSpacing", () => {
    it("median spacing when the data is not anisotropic in both senses", () => {
      // medians [3, 0.8, 0.8]: D is over 3x the others in spacing, but 200 voxels * 3 is not below 256
      const t = nnunetTargetSpacing([
        { spacing: [2.5, 0.7, 0.7], shape: [200, 256, 256] },
        { spacing: [3, 0.8, 0.8], shape: [200, 256, 256] },
        { spacing: [5, 0.9, 0.9], shape: [200, 256, 256] },
      ]);
      assert.deepEqual(t.spacing, [3, 0.8, 0.8]);
      assert.equal(t.anisotropic, false);
      assert.match(t.explanation, /median spacing \[3, 0\.8, 0\.8\] mm of 3 training cases/);
      // an even count takes the mean of the two middle values (numpy's percentile 50)
      const even = nnunetTargetSpacing([
        { spacing: [1, 1, 2], shape: [10, 10, 10] },
        { spacing: [2, 1, 4], shape: [10, 10, 10] },
      ]);
      assert.deepEqual(even.spacing, [1.5, 1, 3]);
    });

    it("the coarse axis takes the 10th percentile of its spacings when anisotropic in spacing and in voxels", () => {
      // D spacings 2.5, 3, 5: median 3 > 3 * 0.8, and 100 * 3 < 512; 10th percentile at position 0.2: 2.5 + 0.2 * 0.5
      const t = nnunetTargetSpacing([
        { spacing: [2.5, 0.7, 0.7], shape: [100, 512, 512] },
        { spacing: [3, 0.8, 0.8], shape: [100, 512, 512] },
        { spacing: [5, 0.9, 0.9], shape: [100, 512, 512] },
      ]);
      close(t.spacing[0], 2.6, 1e-12);
      assert.deepEqual(t.spacing.slice(1), [0.8, 0.8]);
      assert.equal(t.anisotropic, true);
      assert.match(t.explanation, /axis D is anisotropic.*10th percentile of its spacings: 2\.6 mm/);
      // the coarse axis may be any axis (here W), and is raised to just above the others when its 10th percentile
      // falls below them: W spacings 0.6, 0.6, 5, 5, 5 -> median 5, 10th percentile 0.6 < 1 -> 1 + 1e-5
      const w = nnunetTargetSpacing(
        [0.6, 0.6, 5, 5, 5].map((s) => ({ spacing: [1, 1, s] as Vec3, shape: [300, 300, 40] as Vec3 })),
      );
      close(w.spacing[2], 1 + 1e-5, 1e-12);
      assert.deepEqual(w.spacing.slice(0, 2), [1, 1]);
    });

    it("bad input names the case and the field", () => {
      assert.throws(() => nnunetTargetSpacing([]), /no cases/);
      assert.throws(
        () =>
          nnunetTargetSpacing([
            { spacing: [1, 1, 1], shape: [4, 4, 4] },
            { spacing: [1, 0, 1], shape: [4, 4, 4] },
          ]),
        /case 1 needs spacing .* got spacing \[1,0,1\]/,
      );
      assert.throws(() => nnunetTargetSpacing([{ spacing: [1, 1, 1], shape: [4, 4.5, 4] }]), /shape \[4,4\.5,4\]/);
    });
  });

  describe("plans", () => {
    // Case A: every voxel labelled, intensities 1..1000; case B: no label, only air (-1000) and bone (3000). The
    // foreground statistics are those of 1..1000 and can be written down by hand.
    const shape: Vec3 = [10, 10, 10];
    const imgA = vol(
      Float32Array.from({ length: 1000 }, (_, i) => i + 1),
      shape,
      [2, 1, 1],
    );
    const labA = vol(new Uint8Array(1000).fill(3), shape, [2, 1, 1]);
    const imgB = vol(
      Float32Array.from({ length: 1000 }, (_, i) => (i % 2 ? 3000 : -1000)),
      shape,
      [4, 1, 1],
    );
    const labB = vol(new Uint8Array(1000), shape, [4, 1, 1]);

    it("the default plan is unchanged: native spacing, body-voxel statistics, no spacing provenance", () => {
      const p = computePreprocessing([imgA, imgB], "CT");
      assert.equal(p.spacing, null);
      assert.equal(p.spacingFrom, undefined);
      assert.ok(!("spacingFrom" in p));
      assert.equal(p.statsFrom, `body voxels (HU > ${BODY_THRESHOLD_HU}) of 2 volumes`);
      assert.deepEqual(Object.keys(p), ["modality", "channels", "spacing", "axisOrder", "intensity", "statsFrom"]);
    });

    it("the paper plan: statistics from the labelled foreground only, and the nnU-Net target spacing", () => {
      const p = computePreprocessing([imgA, imgB], "CT", { foreground: [labA, labB], stride: 1, spacing: "nnunet" });
      assert.equal(p.intensity.kind, "ct");
      if (p.intensity.kind !== "ct") return;
      // foreground = the values 1..1000 of case A: mean 500.5, population std sqrt((1000^2 - 1) / 12),
      // numpy percentiles 0.5 and 99.5 at positions 4.995 and 994.005 of the sorted values
      close(p.intensity.mean, 500.5);
      close(p.intensity.std, Math.sqrt((1000 ** 2 - 1) / 12), 1e-9);
      close(p.intensity.clip[0], 1 + 4.995, 1e-9);
      close(p.intensity.clip[1], 1 + 994.005, 1e-9);
      assert.match(p.statsFrom!, /labelled foreground \(label > 0\) of 2 training cases/);
      // spacing: median of [2, 1, 1] and [4, 1, 1]
      assert.deepEqual(p.spacing, [3, 1, 1]);
      assert.match(p.spacingFrom!, /median spacing \[3, 1, 1\] mm of 2 training cases/);
      // the body plan of the same images sees the air and bone of case B and is far off
      const body = computePreprocessing([imgA, imgB], "CT", { stride: 1 });
      if (body.intensity.kind !== "ct") return;
      assert.ok(Math.abs(body.intensity.mean - 500.5) > 100, `${body.intensity.mean}`);
      // nnU-Net's default stride 10 keeps every 10th foreground voxel: 1, 11, 21, ...
      const s10 = computePreprocessing([imgA, imgB], "CT", { foreground: [labA, labB] });
      if (s10.intensity.kind !== "ct") return;
      close(s10.intensity.mean, 496, 1e-9);
      // provenance fields do not make two plans differ
      assert.deepEqual(diffPreprocessing(p, { ...p, spacingFrom: "elsewhere", statsFrom: "x" }), []);
      assert.deepEqual(diffPreprocessing(p, { ...p, spacing: [3, 1, 2] }), ["spacing.2: pretraining 1, fine-tuning 2"]);
    });

    it("bad plan options are explained", () => {
      assert.throws(
        () => computePreprocessing([imgA, imgB], "CT", { foreground: [labA] }),
        /1 label maps for 2 volumes/,
      );
      assert.throws(
        () => computePreprocessing([imgA], "CT", { spacing: "median" as never }),
        /options.spacing must be null \(native\), three mm sizes \[D, H, W\] or "nnunet", got "median"/,
      );
      assert.throws(() => computePreprocessing([imgB], "CT", { foreground: [labB] }), /no foreground voxels/);
    });
  });

  describe("resampling cases and predictions", () => {
    // a label map on an anisotropic grid: 8 slices of 3 mm, 12x12 of 1 mm; three organs, one of them one slice thick
    const shape: Vec3 = [8, 12, 12];
    const spacing: Vec3 = [3, 1, 1];
    const lab = new Uint8Array(8 * 12 * 12);
    const img = new Float32Array(lab.length);
    for (let d = 0, i = 0; d < 8; d++)
      for (let h = 0; h < 12; h++)
        for (let w = 0; w < 12; w++, i++) {
          lab[i] = d >= 2 && d <= 5 && h < 6 ? 1 : d === 6 && w > 8 ? 2 : h > 9 && w < 3 ? 3 : 0;
          img[i] = 100 * lab[i] + d; // organ-dependent intensity plus a ramp along D
        }
    const label = vol(lab, shape, spacing, "label");
    const image = vol(img, shape, spacing, "image");
    const plan = computePreprocessing([image], "CT", { foreground: [label], stride: 1, spacing: [1.5, 1, 1] });

    it("image (trilinear) and label (nearest) land on one grid with the target spacing", () => {
      const c = preprocessCase(image, label, plan);
      assert.deepEqual(c.image.shape, [16, 12, 12]);
      assert.deepEqual(c.label!.shape, [16, 12, 12]);
      assert.deepEqual(c.image.spacing, [1.5, 1, 1]);
      assert.deepEqual(c.label!.spacing, [1.5, 1, 1]);
      assert.ok(c.label!.data instanceof Uint8Array);
      assert.deepEqual([...new Set(c.label!.data)].sort(), [0, 1, 2, 3]); // nearest keeps the label set
      assert.deepEqual(c.source, { shape, spacing, affine: image.affine });
      // the same as the transforms on their own
      assert.deepEqual(c.label!.data, resampleToSpacing(label, [1.5, 1, 1], "nearest").data);
      assert.deepEqual(preprocessLabel(label, plan).data, c.label!.data);
      assert.deepEqual(c.image.data, applyPreprocessing(image, plan).data);
      // no target spacing: nothing is resampled
      const native = computePreprocessing([image], "CT", { foreground: [label], stride: 1 });
      assert.equal(preprocessCase(image, label, native).label, label);
      assert.throws(
        () => preprocessCase(image, vol(lab, shape, [3, 1, 2], "other"), plan),
        /label other .* is not on the grid of image image/,
      );
    });

    it("predictions go back to the source grid through the probabilities: a one-hot round trip is exact", () => {
      const c = preprocessCase(image, label, plan);
      const K = 4;
      const n = c.label!.data.length;
      const probs = new Float32Array(n * K);
      for (let i = 0; i < n; i++) probs[i * K + c.label!.data[i]] = 1;
      const back = predictionToSource(probs, K, c.label!, c.source);
      assert.equal(back.length, lab.length);
      assert.deepEqual(Array.from(back), Array.from(lab));
      // soft probabilities: the argmax is taken after resampling (first maximum wins on ties)
      const soft = probs.map((v) => 0.1 + 0.6 * v);
      assert.deepEqual(Array.from(predictionToSource(soft, K, c.label!, c.source)), Array.from(lab));
      // on the same grid it is the argmax
      const flat = new Float32Array(lab.length * K);
      for (let i = 0; i < lab.length; i++) flat[i * K + lab[i]] = 1;
      assert.deepEqual(
        Array.from(predictionToSource(flat, K, { shape, spacing }, { shape, spacing })),
        Array.from(lab),
      );
      assert.throws(() => predictionToSource(probs, 3, c.label!, c.source), /probabilities have .* values but/);
    });

    it("resampleToGrid undoes resampleToSpacing's geometry: shape, spacing, affine and voxel world positions", () => {
      const down = resampleToSpacing(image, [2, 1.5, 1.5], "linear");
      const back = resampleToGrid(down, { shape, spacing }, "linear");
      assert.deepEqual(back.shape, shape);
      assert.deepEqual(back.spacing, spacing);
      back.affine.forEach((row, r) => row.forEach((v, k) => close(v, image.affine[r][k], 1e-9, `affine ${r},${k}`)));
      // the ramp along D (value d inside organ-free columns) survives the round trip in the interior
      const at = (v: Volume, d: number, h: number, w: number) => v.data[(d * 12 + h) * 12 + w];
      for (let d = 1; d < 7; d++) close(at(back, d, 8, 5), d, 1e-4, `d = ${d}`);
      const given = resampleToGrid(down, { shape, spacing, affine: image.affine }, "nearest");
      assert.deepEqual(given.affine, image.affine);
      assert.throws(() => resampleToGrid(down, { shape: [8, 0, 12], spacing }, "linear"), /grid.shape/);
    });
  });
});
