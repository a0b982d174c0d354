// Foreground-aware random crops, nnU-Net style (docs/nnformer.md §4, "sampling": a third of each batch
// is forced to contain foreground). With probability foregroundProb the crop is centred on a random voxel of a random
// present class, otherwise its start is uniform. When the volume is smaller than the crop along an axis, the crop
// sticks out evenly on both sides and extractCrop pads (nnU-Net v1 get_bbox: need_to_pad split floor/ceil).
// Differs from nnU-Net: the centre is jittered by up to a quarter crop (nnU-Net centres exactly, then clamps), so the
// foreground voxel is not always in the middle; it stays inside the crop either way.
import { Rng, randInt } from "../runtime/random";
import { VoxelArray } from "./volume";
import { Vec3 } from "../runtime/math";
import { Grid, allocLike, checkGrid, checkShape3, copyBox } from "./transforms";

/** Flat voxel indices of each foreground class of one label map; build once per case. */
export interface ForegroundIndex {
  /** [D, H, W] of the label map it was built from. */
  shape: Vec3;
  /** Classes (> 0) present, ascending. */
  classes: number[];
  /** class -> flat indices (d * H + h) * W + w of its voxels, ascending. */
  locations: Map<number, Int32Array>;
}

export interface SampleOptions {
  /** Label map (or its precomputed foregroundIndex, much faster) for foreground sampling; omit for uniform crops. */
  label?: ForegroundIndex | Grid;
  /** Probability of forcing a foreground crop, 0..1 (nnU-Net: 0.33). */
  foregroundProb: number;
  /** Classes to choose among (default: every class > 0 present in the label). */
  classes?: number[];
  /** Max shift of the crop centre from the chosen voxel, as a fraction of the crop size (0..0.5, default 0.25). */
  jitter?: number;
}

/** Indexes the voxels of every class > 0 of a single-channel integer label map (two passes, no per-voxel objects). */
export function foregroundIndex(label: Grid): ForegroundIndex {
  const fn = "foregroundIndex";
  checkGrid(fn, "label", label);
  if (label.channels !== 1)
    throw new Error(`${fn}: label must have 1 channel, got ${label.channels}; pass the label map, not the image`);
  const x = label.data;
  let max = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v > max) max = v;
  }
  if (!Number.isInteger(max) || max > 65535) {
    throw new Error(
      `${fn}: label values must be small non-negative integers (class ids), found ${max}; round or remap the label map`,
    );
  }
  const counts = new Int32Array(max + 1);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v > 0) {
      if (v !== Math.floor(v))
        throw new Error(`${fn}: label value ${v} at flat index ${i} is not an integer; labels must be class ids`);
      counts[v]++;
    }
  }
  const locations = new Map<number, Int32Array>();
  const fill = new Int32Array(max + 1);
  const classes: number[] = [];
  for (let k = 1; k <= max; k++) {
    if (counts[k] > 0) {
      classes.push(k);
      locations.set(k, new Int32Array(counts[k]));
    }
  }
  const arrays: Array<Int32Array | undefined> = new Array(max + 1);
  for (const k of classes) arrays[k] = locations.get(k);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v > 0) (arrays[v] as Int32Array)[fill[v]++] = i;
  }
  return { shape: [label.shape[0], label.shape[1], label.shape[2]], classes, locations };
}

function isIndex(x: ForegroundIndex | Grid): x is ForegroundIndex {
  return (x as ForegroundIndex).locations instanceof Map;
}

/**
 * Start [d, h, w] of a random crop of cropShape inside a volume of shape (may be negative / run past the end when
 * the volume is smaller than the crop; extractCrop pads). See the file header for the foreground rule.
 * All randomness comes from rng, so the same seed and inputs give the same crops.
 */
export function sampleCropStart(rng: Rng, shape: Vec3, cropShape: Vec3, options: SampleOptions): Vec3 {
  const fn = "sampleCropStart";
  checkShape3(fn, "shape", shape);
  checkShape3(fn, "cropShape", cropShape);
  if (typeof rng !== "function")
    throw new Error(`${fn}: rng must be a generator from makeRng(seed), got ${typeof rng}`);
  const { label, foregroundProb, classes, jitter = 0.25 } = options ?? ({} as SampleOptions);
  if (!(typeof foregroundProb === "number" && foregroundProb >= 0 && foregroundProb <= 1)) {
    throw new Error(
      `${fn}: options.foregroundProb must be a probability in [0, 1], got ${foregroundProb}; nnU-Net uses 0.33`,
    );
  }
  if (!(typeof jitter === "number" && jitter >= 0 && jitter <= 0.5)) {
    throw new Error(`${fn}: options.jitter must be in [0, 0.5] (fraction of the crop), got ${jitter}`);
  }
  if (classes !== undefined && !(Array.isArray(classes) && classes.every((k) => Number.isInteger(k) && k > 0))) {
    throw new Error(
      `${fn}: options.classes must be a list of class ids > 0, got ${JSON.stringify(classes)}; e.g. [1, 2]`,
    );
  }
  // allowed start range per axis: [lo, hi]; lo < 0 when the crop is larger than the volume (even padding)
  const lo = [0, 0, 0],
    hi = [0, 0, 0];
  for (let a = 0; a < 3; a++) {
    const need = Math.max(cropShape[a] - shape[a], 0);
    lo[a] = -Math.floor(need / 2);
    hi[a] = shape[a] + Math.floor(need / 2) + (need % 2) - cropShape[a];
  }
  const forced = rng() < foregroundProb;
  if (forced && label !== undefined) {
    const index = isIndex(label) ? label : foregroundIndex(label);
    if (index.shape.some((n, a) => n !== shape[a])) {
      throw new Error(
        `${fn}: label shape ${JSON.stringify(index.shape)} differs from shape ${JSON.stringify(shape)}; pass the label of this case`,
      );
    }
    const pool = (classes ?? index.classes).filter((k) => (index.locations.get(k)?.length ?? 0) > 0);
    if (pool.length > 0) {
      const k = pool[randInt(rng, 0, pool.length - 1)];
      const locs = index.locations.get(k) as Int32Array;
      const flat = locs[randInt(rng, 0, locs.length - 1)];
      const [, H, W] = shape;
      const voxel = [Math.floor(flat / (H * W)), Math.floor(flat / W) % H, flat % W];
      const start = [0, 0, 0] as Vec3;
      for (let a = 0; a < 3; a++) {
        const j = Math.floor(cropShape[a] * jitter);
        const s = voxel[a] - Math.floor(cropShape[a] / 2) + randInt(rng, -j, j);
        start[a] = Math.min(Math.max(s, lo[a]), hi[a]);
      }
      return start;
    }
    // no voxel of the requested classes in this case: fall back to a uniform crop, like nnU-Net
  }
  return [randInt(rng, lo[0], hi[0]), randInt(rng, lo[1], hi[1]), randInt(rng, lo[2], hi[2])];
}

/** An image crop (float32, channels fastest) with its label crop. */
export interface CropPair {
  image: Grid<Float32Array>;
  label: Grid | null;
}

/**
 * Cuts the box [start, start + cropShape) out of an image and its label map (same [D, H, W]), padding what lies
 * outside: image with imagePad (default 0, the mean after z-scoring), label with labelPad (default 0, background).
 */
export function extractCrop(
  image: Grid,
  label: Grid | null,
  start: Vec3,
  cropShape: Vec3,
  options: { imagePad?: number; labelPad?: number } = {},
): CropPair {
  const fn = "extractCrop";
  checkGrid(fn, "image", image);
  checkShape3(fn, "cropShape", cropShape);
  if (!(Array.isArray(start) && start.length === 3 && start.every((n) => Number.isInteger(n)))) {
    throw new Error(`${fn}: start must be three integers [d, h, w], got ${JSON.stringify(start)}; use sampleCropStart`);
  }
  const { imagePad = 0, labelPad = 0 } = options;
  const n = cropShape[0] * cropShape[1] * cropShape[2];
  const img = new Float32Array(n * image.channels);
  copyBox(image.data, image.shape, image.channels, start, cropShape, imagePad, img);
  let lab: Grid | null = null;
  if (label) {
    checkGrid(fn, "label", label);
    if (label.channels !== 1) throw new Error(`${fn}: label must have 1 channel, got ${label.channels}`);
    if (label.shape.some((s, a) => s !== image.shape[a])) {
      throw new Error(
        `${fn}: label shape ${JSON.stringify(label.shape)} differs from image shape ${JSON.stringify(image.shape)}; ` +
          `resample the label onto the image grid (nearest)`,
      );
    }
    const out: VoxelArray = allocLike(label.data, n);
    copyBox(label.data, label.shape, 1, start, cropShape, labelPad, out);
    lab = { data: out, shape: [cropShape[0], cropShape[1], cropShape[2]], channels: 1 };
  }
  return {
    image: { data: img, shape: [cropShape[0], cropShape[1], cropShape[2]], channels: image.channels },
    label: lab,
  };
}
