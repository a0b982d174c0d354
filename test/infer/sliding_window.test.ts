import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { Volume, diagonalAffine } from "../../src/data/volume";
import { Vec3 } from "../../src/runtime/math";
import { readNifti } from "../../src/data/nifti";
import {
  Predictor,
  gaussianImportanceMap,
  predictToNifti,
  slidingWindowPredict,
  windowStarts,
} from "../../src/infer/sliding_window";

const K = 4;
const SCALE = 3; // logit of the true class
const P_TRUE = Math.exp(SCALE) / (Math.exp(SCALE) + K - 1);

/** A deterministic label map with all K classes, and an image whose channel 0 is that label (channel 1 is noise). */
function labelImage(shape: Vec3, channels = 1): { image: Volume<Float32Array>; labels: Uint8Array } {
  const n = shape[0] * shape[1] * shape[2];
  const labels = new Uint8Array(n);
  const data = new Float32Array(n * channels);
  let i = 0;
  for (let d = 0; d < shape[0]; d++)
    for (let h = 0; h < shape[1]; h++)
      for (let w = 0; w < shape[2]; w++, i++) {
        labels[i] = (d * 7 + h * 3 + ((w * w) >> 1)) % K;
        data[i * channels] = labels[i];
        for (let c = 1; c < channels; c++) data[i * channels + c] = Math.sin(i * 1.7 + c);
      }
  return {
    image: { data, shape, channels, spacing: [2, 1, 1], affine: diagonalAffine([2, 1, 1]), source: "test" },
    labels,
  };
}

/** Voxelwise (hence flip-equivariant) predictor: logits = SCALE * one-hot(channel 0). */
const voxelwise: Predictor = (x) =>
  tf.tidy(() => {
    const lab = tf.cast(tf.round(tf.squeeze(tf.slice(x, [0, 0, 0, 0, 0], [-1, -1, -1, -1, 1]), [4])), "int32");
    return tf.mul(tf.oneHot(lab, K), SCALE) as tf.Tensor5D;
  });

function checkReproduces(
  labels: Uint8Array,
  r: { probabilities: Float32Array; labels: Uint8Array | Uint16Array },
): void {
  assert.equal(r.labels.length, labels.length);
  for (let i = 0; i < labels.length; i++) {
    if (r.labels[i] !== labels[i]) assert.fail(`voxel ${i}: predicted ${r.labels[i]}, want ${labels[i]}`);
    for (let k = 0; k < K; k++) {
      const want = k === labels[i] ? P_TRUE : (1 - P_TRUE) / (K - 1);
      if (Math.abs(r.probabilities[i * K + k] - want) > 1e-5)
        assert.fail(`voxel ${i} class ${k}: p ${r.probabilities[i * K + k]}, want ${want}`);
    }
  }
}

describe("infer/sliding_window", () => {
  before(async () => {
    await initBackend();
  });

  it("window starts follow nnU-Net's step computation", () => {
    assert.deepEqual(windowStarts(100, 64, 0.5), [0, 18, 36]);
    assert.deepEqual(windowStarts(64, 64, 0.5), [0]);
    assert.deepEqual(windowStarts(65, 64, 0.5), [0, 1]);
    assert.deepEqual(windowStarts(13, 8, 0.5), [0, 2, 5]); // step 2.5: numpy rounds half to even
    assert.deepEqual(windowStarts(128, 64, 1), [0, 64]);
    assert.deepEqual(windowStarts(160, 64, 0.5), [0, 32, 64, 96]);
    assert.throws(() => windowStarts(10, 16, 0.5), /pad/);
  });

  it("the Gaussian importance map peaks at 1 in the (floor) centre with sigma = crop / 8", () => {
    const g = gaussianImportanceMap([8, 16, 5]);
    const at = (d: number, h: number, w: number) => g[(d * 16 + h) * 5 + w];
    assert.equal(at(4, 8, 2), 1);
    assert.ok(Math.abs(at(5, 8, 2) - Math.exp(-0.5)) < 1e-6); // sigma 1 along D
    assert.ok(Math.abs(at(4, 10, 2) - Math.exp(-0.5)) < 1e-6); // sigma 2 along H
    assert.ok(Math.abs(at(3, 8, 2) - at(5, 8, 2)) < 1e-7);
    assert.ok(g.every((v) => v > 0 && v <= 1));
  });

  const cases: [string, Vec3, Vec3, Partial<Parameters<typeof slidingWindowPredict>[2]>][] = [
    ["larger than the crop, odd sizes", [13, 17, 11], [8, 8, 8], {}],
    ["equal to the crop", [8, 8, 8], [8, 8, 8], {}],
    ["smaller than the crop on some axes (zero padding)", [5, 9, 3], [8, 8, 8], {}],
    ["no overlap, uniform weights", [16, 12, 9], [8, 6, 4], { overlap: 0, gaussian: false }],
    ["overlap 0.75, batchSize 3", [11, 10, 12], [6, 4, 8], { overlap: 0.75, batchSize: 3 }],
    ["mirror TTA on all axes, batchSize 2", [10, 9, 7], [6, 6, 4], { mirror: [0, 1, 2], batchSize: 2 }],
    ["smaller than the crop, mirror on D and W, batchSize 4", [5, 13, 3], [6, 8, 4], { mirror: [0, 2], batchSize: 4 }],
  ];
  for (const [name, shape, cropSize, extra] of cases) {
    it(`reproduces a label map: ${name}`, async () => {
      const { image, labels } = labelImage(shape, 2);
      const before = tf.memory().numTensors;
      const r = await slidingWindowPredict(image, voxelwise, { cropSize, numClasses: K, ...extra });
      assert.equal(tf.memory().numTensors, before);
      assert.deepEqual(r.shape, shape);
      assert.equal(r.probabilities.length, labels.length * K);
      checkReproduces(labels, r);
    });
  }

  for (const mirror of [false, [0, 2]] as const)
    it(`weights overlapping windows by the Gaussian map (brute-force check, mirror ${JSON.stringify(mirror)})`, async () => {
      // Each window predicts one constant distribution computed from the mean of its input, so the result at a voxel
      // is sum_w g_w(v) p_w / sum_w g_w(v), which we compute here directly.
      const shape: Vec3 = [9, 7, 10];
      const crop: Vec3 = [4, 4, 6];
      const n = 9 * 7 * 10;
      const data = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.37));
      const image: Volume<Float32Array> = {
        data,
        shape,
        channels: 1,
        spacing: [1, 1, 1],
        affine: diagonalAffine([1, 1, 1]),
        source: "t",
      };
      const perWindow: Predictor = async (x) =>
        tf.tidy(() => {
          const m = tf.mean(x, [1, 2, 3, 4]); // [B]
          const logits = tf.stack([tf.zerosLike(m), tf.mul(m, 8)], 1); // [B, 2]
          return tf.tile(tf.reshape(logits, [-1, 1, 1, 1, 2]), [1, ...crop, 1]) as tf.Tensor5D;
        });
      const before = tf.memory().numTensors;
      // the window mean is flip-invariant, so mirroring must not change the result (even crop: asymmetric weights)
      const r = await slidingWindowPredict(image, perWindow, { cropSize: crop, numClasses: 2, batchSize: 4, mirror });
      assert.equal(tf.memory().numTensors, before);

      const g = gaussianImportanceMap(crop);
      const num = new Float64Array(n),
        den = new Float64Array(n);
      const starts = shape.map((s, a) => windowStarts(s, crop[a], 0.5));
      for (const sd of starts[0])
        for (const sh of starts[1])
          for (const sw of starts[2]) {
            let mean = 0;
            for (let d = 0; d < crop[0]; d++)
              for (let h = 0; h < crop[1]; h++)
                for (let w = 0; w < crop[2]; w++) mean += data[((sd + d) * 7 + sh + h) * 10 + sw + w];
            mean /= crop[0] * crop[1] * crop[2];
            const p1 = 1 / (1 + Math.exp(-8 * mean));
            for (let d = 0; d < crop[0]; d++)
              for (let h = 0; h < crop[1]; h++)
                for (let w = 0; w < crop[2]; w++) {
                  const v = ((sd + d) * 7 + sh + h) * 10 + sw + w;
                  const gw = g[(d * crop[1] + h) * crop[2] + w];
                  num[v] += gw * p1;
                  den[v] += gw;
                }
          }
      for (let v = 0; v < n; v++) {
        const want = num[v] / den[v];
        assert.ok(
          Math.abs(r.probabilities[v * 2 + 1] - want) < 1e-5,
          `voxel ${v}: ${r.probabilities[v * 2 + 1]} vs ${want}`,
        );
        assert.ok(Math.abs(r.probabilities[v * 2] + r.probabilities[v * 2 + 1] - 1) < 1e-5);
        assert.equal(r.labels[v], want > 0.5 ? 1 : 0);
      }
    });

  it("mirror TTA averages softmax over flips and undoes each flip", async () => {
    // Ignores the input: class-1 logit grows along W. Flipping W and flipping back gives the mirrored ramp, so the
    // average at w is (sigmoid(a w) + sigmoid(a (cw - 1 - w))) / 2; flips along D, H change nothing.
    const crop: Vec3 = [3, 4, 5];
    const ramp: Predictor = (x) =>
      tf.tidy(() => {
        const w = tf.reshape(tf.range(0, 5, 1, "float32"), [1, 1, 1, 5, 1]);
        const one = tf.mul(tf.add(tf.zerosLike(tf.slice(x, [0, 0, 0, 0, 0], [-1, -1, -1, -1, 1])), w), 0.7);
        return tf.concat([tf.zerosLike(one), one], 4) as tf.Tensor5D;
      });
    const { image } = labelImage(crop);
    const sig = (z: number) => 1 / (1 + Math.exp(-z));
    for (const mirror of [[2], [0, 1, 2], false] as const) {
      const before = tf.memory().numTensors;
      const r = await slidingWindowPredict(image, ramp, { cropSize: crop, numClasses: 2, mirror, gaussian: false });
      assert.equal(tf.memory().numTensors, before);
      for (let v = 0; v < 3 * 4 * 5; v++) {
        const w = v % 5;
        const want = mirror ? (sig(0.7 * w) + sig(0.7 * (4 - w))) / 2 : sig(0.7 * w);
        assert.ok(Math.abs(r.probabilities[v * 2 + 1] - want) < 1e-6, `mirror ${JSON.stringify(mirror)} w ${w}`);
      }
    }
  });

  it("a bad predictor output throws a clear error and leaks nothing", async () => {
    const { image } = labelImage([6, 6, 6]);
    const before = tf.memory().numTensors;
    const wrongK: Predictor = (x) => tf.tidy(() => tf.concat([x, x], 4) as tf.Tensor5D);
    await assert.rejects(
      slidingWindowPredict(image, wrongK, { cropSize: [4, 4, 4], numClasses: 3 }),
      /logits \[1,4,4,4,3\].*\[1,4,4,4,2\]/,
    );
    assert.equal(tf.memory().numTensors, before);
    const throws: Predictor = () => {
      throw new Error("model exploded");
    };
    await assert.rejects(
      slidingWindowPredict(image, throws, { cropSize: [4, 4, 4], numClasses: 3, mirror: true }),
      /model exploded/,
    );
    assert.equal(tf.memory().numTensors, before);
    await assert.rejects(
      slidingWindowPredict(image, voxelwise, { cropSize: [4, 4, 4], numClasses: K, overlap: 1 }),
      /overlap/,
    );
    await assert.rejects(
      slidingWindowPredict(image, voxelwise, { cropSize: [4, 4, 4], numClasses: K, mirror: [3] }),
      /mirror/,
    );
  });

  it("writes the label map with the reference grid", async () => {
    const { image, labels } = labelImage([5, 6, 7]);
    image.affine = [
      [0, 0, -1.5, 10],
      [0, 0.8, 0, -3],
      [2, 0, 0, 4],
      [0, 0, 0, 1],
    ];
    image.spacing = [1.5, 0.8, 2];
    const r = await slidingWindowPredict(image, voxelwise, { cropSize: [4, 4, 4], numClasses: K });
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sw-test-"));
    try {
      const file = path.join(tmp, "pred.nii.gz");
      predictToNifti(file, r.labels, image);
      const back = await readNifti(file, { as: "label" });
      assert.deepEqual(back.shape, [5, 6, 7]);
      assert.deepEqual(Array.from(back.data), Array.from(labels));
      for (let i = 0; i < 4; i++)
        for (let j = 0; j < 4; j++) assert.ok(Math.abs(back.affine[i][j] - image.affine[i][j]) < 1e-5);
      assert.throws(() => predictToNifti(file, r.labels.subarray(1), image), /reference/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
