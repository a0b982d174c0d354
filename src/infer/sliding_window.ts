// Sliding-window inference over a whole volume, as nnU-Net v1 does it for nnFormer (docs/nnformer.md §5):
// windows of the training crop, step = crop * (1 - overlap) with the steps spread evenly so the last window is flush
// with the end, a Gaussian importance map (sigma = crop / 8 per axis) weighting each window's softmax, optional mirror
// test-time augmentation (softmax averaged over every flip combination of the chosen axes), zero padding of images
// smaller than the crop, and argmax at the end.
// Differs from nnU-Net: softmax, un-flipping and accumulation happen on the CPU in Float32Arrays (one [D, H, W, K] sum and
// one [D, H, W] weight sum), so only one batch of windows is ever a tensor and the wasm backend is spared K-channel
// softmax/reverse ops on whole batches; no fp16; the caller resamples the probabilities to the original spacing.
import * as tf from "@tensorflow/tfjs";
import { cropOrPad, copyBox } from "../data/transforms";
import { writeNifti } from "../data/nifti";
import { Volume, numVoxels } from "../data/volume";
import { Vec3 } from "../runtime/math";

/**
 * The model as inference sees it: a batch of crops [B, d, h, w, C] -> logits [B, d, h, w, K] (sync or async).
 * It must not dispose its input; slidingWindowPredict disposes the returned logits.
 */
export type Predictor = (batch: tf.Tensor5D) => tf.Tensor5D | Promise<tf.Tensor5D>;

export interface SlidingWindowOptions {
  /** Window size [D, H, W] in voxels: the training crop. */
  cropSize: Vec3;
  /** Number of classes K the predictor outputs (background included). */
  numClasses: number;
  /** Fraction of a window shared with the next one along each axis; 0.5 in nnFormer (nnU-Net step_size 0.5). */
  overlap?: number;
  /** Weight each window by the Gaussian importance map (default true) instead of uniformly. */
  gaussian?: boolean;
  /** Gaussian sigma as a fraction of the crop per axis (default 1/8, nnU-Net). */
  sigmaScale?: number;
  /** Mirror TTA: false (default), true (all three axes: 8 passes, as nnFormer), or spatial axes to flip (0 = D, 1 = H, 2 = W). */
  mirror?: boolean | readonly number[];
  /** Windows per predictor call (default 1). */
  batchSize?: number;
  /** Value for padding images smaller than the crop (default 0: the mean after z-score normalisation). */
  padValue?: number;
  /** Called after each batch with windows done and the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface SlidingWindowResult {
  /** Class probabilities [D, H, W, K], K fastest. */
  probabilities: Float32Array;
  /** Argmax over classes [D, H, W] (first class wins ties); Uint8Array when K <= 256. */
  labels: Uint8Array | Uint16Array;
  /** [D, H, W] of the input image. */
  shape: Vec3;
  numClasses: number;
  /** Number of windows (not counting mirror passes). */
  numWindows: number;
}

/** numpy.round: halves go to the even neighbour (nnU-Net uses it for window starts). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Window starts along one axis (nnU-Net's step computation): n = ceil((size - crop) / (crop * stepSize)) + 1 windows,
 * spaced evenly from 0 to size - crop, rounded half to even. Needs size >= crop (pad first).
 */
export function windowStarts(size: number, crop: number, stepSize: number): number[] {
  if (!(Number.isInteger(size) && Number.isInteger(crop) && crop > 0 && size >= crop)) {
    throw new Error(
      `windowStarts: need integer size >= crop > 0, got size ${size}, crop ${crop}; pad the image to the crop first`,
    );
  }
  if (!(stepSize > 0 && stepSize <= 1)) throw new Error(`windowStarts: stepSize must be in (0, 1], got ${stepSize}`);
  const n = Math.ceil((size - crop) / (crop * stepSize)) + 1;
  if (n === 1) return [0];
  const step = (size - crop) / (n - 1);
  return Array.from({ length: n }, (_, i) => roundHalfEven(step * i));
}

/**
 * nnU-Net's Gaussian importance map [d, h, w]: a unit impulse at floor(crop / 2) smoothed with sigma = crop * sigmaScale
 * per axis (scipy gaussian_filter, truncated at 4 sigma), scaled to max 1, zeros replaced by the smallest non-zero value
 * so every voxel gets some weight.
 */
export function gaussianImportanceMap(cropSize: Vec3, sigmaScale = 1 / 8): Float32Array {
  if (!(sigmaScale > 0)) throw new Error(`gaussianImportanceMap: sigmaScale must be positive, got ${sigmaScale}`);
  const axes = cropSize.map((n) => {
    const c = Math.floor(n / 2),
      sigma = n * sigmaScale;
    const radius = Math.floor(4 * sigma + 0.5); // scipy's kernel half-width at truncate = 4
    return Float64Array.from({ length: n }, (_, i) =>
      Math.abs(i - c) > radius ? 0 : Math.exp(-((i - c) ** 2) / (2 * sigma * sigma)),
    );
  });
  const [gd, gh, gw] = axes;
  const out = new Float32Array(numVoxels(cropSize));
  let i = 0,
    minNonZero = Infinity;
  for (let d = 0; d < cropSize[0]; d++) {
    for (let h = 0; h < cropSize[1]; h++) {
      for (let w = 0; w < cropSize[2]; w++, i++) {
        const v = gd[d] * gh[h] * gw[w]; // max is exactly 1 at the centre: no rescaling needed
        out[i] = v;
        if (v > 0 && v < minNonZero) minNonZero = v;
      }
    }
  }
  for (let k = 0; k < out.length; k++) if (out[k] === 0) out[k] = minNonZero;
  return out;
}

function mirrorAxes(mirror: SlidingWindowOptions["mirror"]): number[] {
  if (mirror === undefined || mirror === false) return [];
  if (mirror === true) return [0, 1, 2];
  const axes = Array.from(mirror);
  if (!axes.every((a) => a === 0 || a === 1 || a === 2) || new Set(axes).size !== axes.length) {
    throw new Error(
      `slidingWindowPredict: mirror must be false, true, or distinct spatial axes from 0 (D), 1 (H), 2 (W), got ${JSON.stringify(mirror)}`,
    );
  }
  return axes;
}

/** Every subset of `axes` (2^k flip combinations, the empty one first). */
function flipCombos(axes: number[]): number[][] {
  let combos: number[][] = [[]];
  for (const a of axes) combos = combos.concat(combos.map((c) => [...c, a]));
  return combos;
}

function checkOptions(image: Volume, o: SlidingWindowOptions): void {
  const fn = "slidingWindowPredict";
  if (!image || !ArrayBuffer.isView(image.data))
    throw new Error(`${fn}: image must be a Volume with a typed-array data`);
  if (
    !(Array.isArray(o.cropSize) && o.cropSize.length === 3 && o.cropSize.every((n) => Number.isInteger(n) && n > 0))
  ) {
    throw new Error(
      `${fn}: cropSize must be three positive integers [D, H, W] (the training crop), got ${JSON.stringify(o.cropSize)}`,
    );
  }
  if (!(Number.isInteger(o.numClasses) && o.numClasses >= 1 && o.numClasses <= 65536)) {
    throw new Error(`${fn}: numClasses must be an integer in 1..65536 (background included), got ${o.numClasses}`);
  }
  const overlap = o.overlap ?? 0.5;
  if (!(overlap >= 0 && overlap < 1))
    throw new Error(`${fn}: overlap must be in [0, 1) (0.5 in nnFormer), got ${overlap}`);
  const bs = o.batchSize ?? 1;
  if (!(Number.isInteger(bs) && bs >= 1)) throw new Error(`${fn}: batchSize must be a positive integer, got ${bs}`);
  const want = numVoxels(image.shape) * image.channels;
  if (image.data.length !== want) {
    throw new Error(
      `${fn}: image (${image.source}) has ${image.data.length} values but shape [${image.shape}] x ${image.channels} channel(s) needs ${want}`,
    );
  }
}

/**
 * Predict a whole volume window by window. Returns class probabilities [D, H, W, K] and the argmax label map [D, H, W]
 * on the image's grid. The predictor returns logits; softmax is applied here. Leaves no tensors behind.
 */
export async function slidingWindowPredict(
  image: Volume,
  predictor: Predictor,
  options: SlidingWindowOptions,
): Promise<SlidingWindowResult> {
  checkOptions(image, options);
  const {
    cropSize,
    numClasses: K,
    overlap = 0.5,
    gaussian = true,
    sigmaScale = 1 / 8,
    batchSize = 1,
    padValue = 0,
  } = options;
  const flips = flipCombos(mirrorAxes(options.mirror));
  const C = image.channels;
  const shape: Vec3 = [image.shape[0], image.shape[1], image.shape[2]];

  // Pad (centred, as nnU-Net's pad_nd_image) up to the crop where the image is smaller; crop back at the end.
  const padShape = shape.map((n, a) => Math.max(n, cropSize[a])) as Vec3;
  const padded = padShape.some((n, a) => n !== shape[a]);
  const work = padded ? cropOrPad(image, padShape, { padValue }) : { volume: image, offset: [0, 0, 0] as Vec3 };
  const [, PH, PW] = padShape;
  const [cd, ch, cw] = cropSize;
  const winVox = cd * ch * cw;

  const starts = padShape.map((n, a) => windowStarts(n, cropSize[a], 1 - overlap));
  const windows: Vec3[] = [];
  for (const d of starts[0]) for (const h of starts[1]) for (const w of starts[2]) windows.push([d, h, w]);

  const weight = gaussian ? gaussianImportanceMap(cropSize, sigmaScale) : new Float32Array(winVox).fill(1);
  const acc = new Float32Array(numVoxels(padShape) * K); // sum of weight * softmax
  const wsum = new Float32Array(numVoxels(padShape)); // sum of weight

  const input = new Float32Array(batchSize * winVox * C);
  const flipped = flips.length > 1 ? new Float32Array(batchSize * winVox * C) : input;
  for (let b0 = 0; b0 < windows.length; b0 += batchSize) {
    const batch = windows.slice(b0, b0 + batchSize);
    const B = batch.length;
    batch.forEach((start, b) => {
      copyBox(
        work.volume.data,
        padShape,
        C,
        start,
        cropSize,
        padValue,
        input.subarray(b * winVox * C, (b + 1) * winVox * C),
      );
      // the weight sum does not depend on the flips: each window counts once
      for (let d = 0, g = 0; d < cd; d++) {
        for (let h = 0; h < ch; h++) {
          const row = ((start[0] + d) * PH + start[1] + h) * PW + start[2];
          for (let w = 0; w < cw; w++, g++) wsum[row + w] += weight[g];
        }
      }
    });
    for (const combo of flips) {
      const flip: [boolean, boolean, boolean] = [combo.includes(0), combo.includes(1), combo.includes(2)];
      if (combo.length) flipWindows(input, flipped, B, cropSize, C, flip);
      const logits = await runPredictor(combo.length ? flipped : input, [B, cd, ch, cw, C], predictor, K);
      accumulate(logits, batch, cropSize, padShape, K, flip, weight, 1 / flips.length, acc);
    }
    options.onProgress?.(b0 + B, windows.length);
  }

  // normalise by the weight sum (every voxel is covered by at least one window), then crop the padding away
  for (let v = 0; v < wsum.length; v++) {
    const inv = 1 / wsum[v];
    for (let k = 0, o = v * K; k < K; k++) acc[o + k] *= inv;
  }
  let probabilities = acc;
  if (padded) {
    probabilities = new Float32Array(numVoxels(shape) * K);
    // cropOrPad: padded voxel p is original voxel p + offset, so the original grid starts at -offset
    const start = work.offset.map((o) => -o) as Vec3;
    copyBox(acc, padShape, K, start, shape, 0, probabilities);
  }
  return { probabilities, labels: argmax(probabilities, K), shape, numClasses: K, numWindows: windows.length };
}

/** One predictor call on a [B, d, h, w, C] batch; returns the logits [B, d, h, w, K] downloaded. Disposes both tensors. */
async function runPredictor(
  data: Float32Array,
  shape: [number, number, number, number, number],
  predictor: Predictor,
  K: number,
): Promise<ArrayLike<number>> {
  const x = tf.tensor5d(data.subarray(0, shape[0] * shape[1] * shape[2] * shape[3] * shape[4]), shape);
  let logits: tf.Tensor5D | undefined;
  try {
    logits = await predictor(x);
    checkLogits(logits, shape, K);
    return await logits.data();
  } finally {
    if (logits instanceof tf.Tensor && logits !== x) logits.dispose();
    x.dispose();
  }
}

/**
 * Mirror a batch of windows [B, d, h, w, C] along the flagged spatial axes, src -> dst. We flip on the CPU rather than
 * with tf.reverse: the input has few channels, and undoing the flip on the K-channel output is free in accumulate().
 */
function flipWindows(
  src: Float32Array,
  dst: Float32Array,
  B: number,
  crop: Vec3,
  C: number,
  flip: [boolean, boolean, boolean],
): void {
  const [cd, ch, cw] = crop;
  const rowLen = cw * C;
  for (let b = 0; b < B; b++) {
    for (let d = 0; d < cd; d++) {
      const sd = flip[0] ? cd - 1 - d : d;
      for (let h = 0; h < ch; h++) {
        const sh = flip[1] ? ch - 1 - h : h;
        const o = ((b * cd + d) * ch + h) * rowLen;
        const i = ((b * cd + sd) * ch + sh) * rowLen;
        if (!flip[2]) dst.set(src.subarray(i, i + rowLen), o);
        else
          for (let w = 0; w < cw; w++) for (let c = 0; c < C; c++) dst[o + w * C + c] = src[i + (cw - 1 - w) * C + c];
      }
    }
  }
}

/**
 * Softmax over K of each voxel's logits, then acc[voxel] += scale * importance * softmax at the window position the
 * voxel came from (undoing the mirror flip of this pass). acc is the padded [D, H, W, K] sum.
 */
function accumulate(
  logits: ArrayLike<number>,
  batch: Vec3[],
  crop: Vec3,
  grid: Vec3,
  K: number,
  flip: [boolean, boolean, boolean],
  weight: Float32Array,
  scale: number,
  acc: Float32Array,
): void {
  const [cd, ch, cw] = crop;
  const [, PH, PW] = grid;
  const e = new Float64Array(K);
  let src = 0; // voxel index into the logits batch
  batch.forEach(([sd, sh, sw]) => {
    for (let d = 0; d < cd; d++) {
      const od = flip[0] ? cd - 1 - d : d; // position in the un-flipped window
      for (let h = 0; h < ch; h++) {
        const oh = flip[1] ? ch - 1 - h : h;
        for (let w = 0; w < cw; w++, src++) {
          const ow = flip[2] ? cw - 1 - w : w;
          const g = scale * weight[(od * ch + oh) * cw + ow];
          const dst = (((sd + od) * PH + sh + oh) * PW + sw + ow) * K;
          const p = src * K;
          let max = -Infinity;
          for (let k = 0; k < K; k++) if (logits[p + k] > max) max = logits[p + k];
          let sum = 0;
          for (let k = 0; k < K; k++) sum += e[k] = Math.exp(logits[p + k] - max);
          const f = g / sum;
          for (let k = 0; k < K; k++) acc[dst + k] += f * e[k];
        }
      }
    }
  });
}

function checkLogits(t: unknown, shape: number[], K: number): asserts t is tf.Tensor5D {
  const want = [...shape.slice(0, 4), K];
  if (
    !(t instanceof tf.Tensor) ||
    t.rank !== 5 ||
    !(t.shape as number[]).every((n: number, a: number) => n === want[a])
  ) {
    const got = t instanceof tf.Tensor ? `a tensor of shape [${t.shape}]` : String(t);
    throw new Error(
      `slidingWindowPredict: the predictor must return logits [${want}] ([B, d, h, w, numClasses]), got ${got}; ` +
        `check numClasses and that the model keeps the crop size`,
    );
  }
}

/** Argmax over the fastest axis of [N, K] probabilities (first maximum wins). */
function argmax(p: Float32Array, K: number): Uint8Array | Uint16Array {
  const n = p.length / K;
  const out = K <= 256 ? new Uint8Array(n) : new Uint16Array(n);
  for (let v = 0, o = 0; v < n; v++, o += K) {
    let best = 0,
      bv = p[o];
    for (let k = 1; k < K; k++) {
      if (p[o + k] > bv) {
        bv = p[o + k];
        best = k;
      }
    }
    out[v] = best;
  }
  return out;
}

/**
 * Write a predicted label map [D, H, W] as NIfTI with the reference volume's grid (shape, spacing, affine), e.g. the
 * image it was predicted from. The labels must already be on that grid (uncropped / resampled back).
 */
export function predictToNifti(file: string, labels: Uint8Array | Uint16Array, reference: Volume): void {
  const n = numVoxels(reference.shape);
  if (labels.length !== n) {
    throw new Error(
      `predictToNifti ${file}: labels have ${labels.length} voxels but the reference (${reference.source}) grid ` +
        `[${reference.shape}] has ${n}; put the prediction back on the reference grid first`,
    );
  }
  writeNifti(
    file,
    {
      data: labels,
      shape: [reference.shape[0], reference.shape[1], reference.shape[2]],
      channels: 1,
      spacing: [reference.spacing[0], reference.spacing[1], reference.spacing[2]],
      affine: reference.affine.map((row) => [...row]),
      source: `prediction for ${reference.source}`,
    },
    { description: "mae-nnformer prediction" },
  );
}
