// Seeded data augmentation for training crops, applied jointly to an image crop [D, H, W, C] and its label [D, H, W].
// Follows nnU-Net's "moreDA" pipeline (docs/nnformer.md §4) with milder defaults and a few parts left out:
//   spatial: rotation about each axis and scaling, as ONE affine resample about the crop centre (trilinear image,
//            nearest label), then 90-degree rotations and mirroring as an exact index permutation;
//   intensity: Gaussian noise, multiplicative brightness, contrast, gamma (optionally inverted).
// Left out on purpose: Gaussian blur and low-resolution simulation (cost more than they help at our crop sizes);
// elastic deformation is off in nnFormer too. Added: rot90 (not in nnU-Net; off by default).
// Rotation and scaling act in voxel coordinates, like nnU-Net; for strongly anisotropic data rotate in-plane only
// (rotateDeg: [angle, 0, 0] rotates about D, i.e. within the H-W plane, nnU-Net's "dummy 2D").
// Every random number comes from the injected rng, in a fixed order, so the same seed gives the same output.
import { Rng, uniform, randInt } from "../runtime/random";
import { VoxelArray } from "./volume";
import { Vec3, addGaussianNoise, axisRotation, matMul3 } from "../runtime/math";
import { Grid, allocLike, checkGrid } from "./transforms";

/** Probabilities are per call (per crop); ranges are [lo, hi] drawn uniformly unless noted. */
export interface AugmentConfig {
  /** Mirror probability per axis [D, H, W] (nnU-Net: 0.5 each). */
  flipProb: [number, number, number];
  /** Probability of one 90-degree rotation, k in {1, 2, 3} uniform, in a plane from rot90Planes (nnU-Net: none). */
  rot90Prob: number;
  /** Candidate planes as axis pairs, e.g. [[1, 2]] = H-W (axial). A plane whose two sizes differ is skipped. */
  rot90Planes: Array<[number, number]>;
  /** Probability of a small rotation (nnU-Net: 0.2). */
  rotateProb: number;
  /** Max |angle| in degrees about the D, H, W axes; each drawn U(-max, max) (nnU-Net: 30 each). */
  rotateDeg: [number, number, number];
  /** Probability of scaling (nnU-Net: 0.2). */
  scaleProb: number;
  /** Sampling-grid scale factor range; > 1 samples a larger region, so anatomy looks smaller (nnU-Net: 0.7-1.4). */
  scaleRange: [number, number];
  /** Image fill where the rotated/scaled grid leaves the crop: "zero" (nnU-Net) or "edge" (clamp). Labels follow: 0 or edge. */
  fill: "zero" | "edge";
  /** Probability of additive Gaussian noise (nnU-Net: 0.1). */
  noiseProb: number;
  /** Noise standard deviation range (nnU-Net: variance U(0, 0.1), i.e. std up to 0.32). */
  noiseStd: [number, number];
  /** Probability of multiplicative brightness, per-channel factor (nnU-Net: 0.15, range 0.75-1.25). */
  brightnessProb: number;
  brightnessRange: [number, number];
  /** Probability of contrast (x - mean) * f + mean, clipped to the old range (nnU-Net: 0.15, range 0.75-1.25). */
  contrastProb: number;
  contrastRange: [number, number];
  /** Probability of gamma x -> x^g on the [min, max]-normalised channel, mean/std kept (nnU-Net: 0.3, 0.7-1.5). */
  gammaProb: number;
  gammaRange: [number, number];
  /** Given gamma is applied: probability it is applied to the inverted image (nnU-Net: a separate p = 0.1 step). */
  gammaInvertProb: number;
}

/**
 * Milder than nnU-Net moreDA: same probabilities for mirroring (0.5), rotation and scaling (0.2 each), but rotation
 * +-15 deg (vs 30), scale 0.85-1.15 (vs 0.7-1.4), noise std <= 0.1 (vs 0.32), brightness/contrast 0.85-1.15
 * (vs 0.75-1.25), gamma p 0.2 in 0.8-1.25 (vs p 0.3, 0.7-1.5). Small data sets and short CPU runs do not
 * profit from nnU-Net's full strength. No rot90 (nnU-Net has none).
 */
export const AUGMENT_DEFAULT: AugmentConfig = {
  flipProb: [0.5, 0.5, 0.5],
  rot90Prob: 0,
  rot90Planes: [[1, 2]],
  rotateProb: 0.2,
  rotateDeg: [15, 15, 15],
  scaleProb: 0.2,
  scaleRange: [0.85, 1.15],
  fill: "zero",
  noiseProb: 0.1,
  noiseStd: [0, 0.1],
  brightnessProb: 0.15,
  brightnessRange: [0.85, 1.15],
  contrastProb: 0.15,
  contrastRange: [0.85, 1.15],
  gammaProb: 0.2,
  gammaRange: [0.8, 1.25],
  gammaInvertProb: 0.1,
};

/** No augmentation: augment() then returns copies of its inputs (still draws from rng). */
export const AUGMENT_OFF: AugmentConfig = {
  ...AUGMENT_DEFAULT,
  flipProb: [0, 0, 0],
  rot90Prob: 0,
  rotateProb: 0,
  scaleProb: 0,
  noiseProb: 0,
  brightnessProb: 0,
  contrastProb: 0,
  gammaProb: 0,
  gammaInvertProb: 0,
};

/** Throws, naming the field, its value and the fix, unless every AugmentConfig field is valid. */
export function checkAugmentConfig(config: AugmentConfig): void {
  const bad = (field: string, v: unknown, fix: string): never => {
    throw new Error(`augment: config.${field} is ${JSON.stringify(v)}; ${fix}`);
  };
  if (!config || typeof config !== "object") bad("", config, "pass an AugmentConfig, e.g. { ...AUGMENT_DEFAULT }");
  const prob = (f: keyof AugmentConfig) => {
    const v = config[f];
    if (!(typeof v === "number" && v >= 0 && v <= 1)) bad(f, v, "use a probability in [0, 1]");
  };
  const range = (f: keyof AugmentConfig, min: number, positive = false) => {
    const v = config[f] as unknown;
    const ok =
      Array.isArray(v) &&
      v.length === 2 &&
      v.every((x) => typeof x === "number" && Number.isFinite(x)) &&
      v[0] <= v[1] &&
      v[0] >= min &&
      (!positive || v[0] > 0);
    if (!ok) bad(f, v, `use [lo, hi] with ${positive ? "0 <" : `${min} <=`} lo <= hi`);
  };
  const flip = config.flipProb as unknown;
  if (!(Array.isArray(flip) && flip.length === 3 && flip.every((p) => typeof p === "number" && p >= 0 && p <= 1))) {
    bad("flipProb", flip, "use three probabilities [pD, pH, pW], e.g. [0.5, 0.5, 0.5]");
  }
  for (const f of [
    "rot90Prob",
    "rotateProb",
    "scaleProb",
    "noiseProb",
    "brightnessProb",
    "contrastProb",
    "gammaProb",
    "gammaInvertProb",
  ] as const)
    prob(f);
  const planes = config.rot90Planes as unknown;
  if (
    !(
      Array.isArray(planes) &&
      planes.every(
        (p) => Array.isArray(p) && p.length === 2 && p.every((a) => a === 0 || a === 1 || a === 2) && p[0] !== p[1],
      )
    )
  ) {
    bad("rot90Planes", planes, "use pairs of two different axes from 0 (D), 1 (H), 2 (W), e.g. [[1, 2]]");
  }
  if (config.rot90Prob > 0 && (planes as unknown[]).length === 0)
    bad("rot90Planes", planes, "give at least one plane when rot90Prob > 0");
  const deg = config.rotateDeg as unknown;
  if (!(Array.isArray(deg) && deg.length === 3 && deg.every((x) => typeof x === "number" && x >= 0 && x <= 180))) {
    bad("rotateDeg", deg, "use three max angles in degrees [0, 180] about D, H, W, e.g. [15, 15, 15]");
  }
  range("scaleRange", 0, true);
  if (config.fill !== "zero" && config.fill !== "edge") bad("fill", config.fill, 'use "zero" or "edge"');
  range("noiseStd", 0);
  range("brightnessRange", 0, true);
  range("contrastRange", 0, true);
  range("gammaRange", 0, true);
}

// ---------------------------------------------------------------------------------------------------------------
// Spatial: exact permutations (mirroring, rot90)

/** A 90-degree rotation by k quarter turns in plane [a, b], from axis a towards axis b like numpy.rot90(x, k, (a, b)). */
export interface Rot90 {
  plane: [number, number];
  k: number;
}

/**
 * Mirrors the axes flagged in `flips` ([D, H, W]) after an optional rot90, as one exact index permutation.
 * The rotated plane must have equal sizes (the shape is kept). Works on any number of channels.
 */
export function mirrorRot90<T extends VoxelArray>(
  grid: Grid<T>,
  flips: [boolean, boolean, boolean],
  rot90: Rot90 | null = null,
): Grid<T> {
  const fn = "mirrorRot90";
  checkGrid(fn, "grid", grid);
  const shape = grid.shape;
  // output axis j reads input axis srcAxis[j], reversed if rev[j]
  const srcAxis = [0, 1, 2];
  const rev = [false, false, false];
  if (rot90) {
    const [a, b] = rot90.plane ?? [];
    if (![a, b].every((x) => x === 0 || x === 1 || x === 2) || a === b) {
      throw new Error(`${fn}: rot90.plane must be two different axes from 0, 1, 2, got ${JSON.stringify(rot90.plane)}`);
    }
    if (!Number.isInteger(rot90.k))
      throw new Error(`${fn}: rot90.k must be an integer number of quarter turns, got ${rot90.k}`);
    if (shape[a] !== shape[b]) {
      throw new Error(
        `${fn}: rot90 plane ${JSON.stringify([a, b])} has sizes ${shape[a]} and ${shape[b]}; it needs equal sizes (square in-plane crop)`,
      );
    }
    const k = ((rot90.k % 4) + 4) % 4;
    if (k === 1) {
      srcAxis[a] = b;
      rev[a] = true;
      srcAxis[b] = a;
    } else if (k === 2) {
      rev[a] = true;
      rev[b] = true;
    } else if (k === 3) {
      srcAxis[a] = b;
      srcAxis[b] = a;
      rev[b] = true;
    }
  }
  for (let j = 0; j < 3; j++) if (flips[j]) rev[j] = !rev[j];
  const C = grid.channels;
  const inStride = [shape[1] * shape[2] * C, shape[2] * C, C];
  const outShape: Vec3 = [shape[srcAxis[0]], shape[srcAxis[1]], shape[srcAxis[2]]];
  let base = 0;
  const step = [0, 0, 0];
  for (let j = 0; j < 3; j++) {
    const s = inStride[srcAxis[j]];
    if (rev[j]) {
      base += (outShape[j] - 1) * s;
      step[j] = -s;
    } else step[j] = s;
  }
  const src = grid.data;
  const out = allocLike(src, src.length);
  const [n0, n1, n2] = outShape;
  const [s0, s1, s2] = step;
  let o = 0;
  for (let i0 = 0; i0 < n0; i0++) {
    const p0 = base + i0 * s0;
    for (let i1 = 0; i1 < n1; i1++) {
      let p = p0 + i1 * s1;
      if (C === 1) {
        for (let i2 = 0; i2 < n2; i2++, p += s2) out[o++] = src[p];
      } else {
        for (let i2 = 0; i2 < n2; i2++, p += s2) for (let c = 0; c < C; c++) out[o++] = src[p + c];
      }
    }
  }
  return { data: out, shape: outShape, channels: C };
}

// ---------------------------------------------------------------------------------------------------------------
// Spatial: rotation + scaling as one affine resample about the crop centre

/** 3x3 matrix (rows) mapping an output offset from the centre to the input offset: scale * Rd * Rh * Rw. */
function rotationScaleMatrix(anglesDeg: [number, number, number], scale: number): number[] {
  const [a, b, g] = anglesDeg.map((x) => (x * Math.PI) / 180);
  // about D turns the H-W plane, about H the D-W plane, about W the D-H plane
  return matMul3(matMul3(axisRotation(0, a), axisRotation(1, b)), axisRotation(2, g)).map((v) => v * scale);
}

/**
 * Rotates (degrees about the D, H, W axes) and scales (sampling-grid factor) an image crop and its label about the
 * crop centre in one pass: output voxel p samples input position c + scale * R (p - c), trilinear for the image and
 * nearest for the label, so both stay aligned. Outside the input: fill "zero" (image 0, label 0) or "edge" (clamp).
 * Angles 0 and scale 1 reproduce the input exactly.
 */
export function rotateScale<L extends VoxelArray>(
  image: Grid<Float32Array>,
  label: Grid<L> | null,
  anglesDeg: [number, number, number],
  scale: number,
  fill: "zero" | "edge" = "zero",
): { image: Grid<Float32Array>; label: Grid<L> | null } {
  const fn = "rotateScale";
  checkGrid(fn, "image", image);
  if (label) checkPair(fn, image, label);
  if (!(Array.isArray(anglesDeg) && anglesDeg.length === 3 && anglesDeg.every((x) => Number.isFinite(x)))) {
    throw new Error(
      `${fn}: anglesDeg must be three finite angles in degrees [aD, aH, aW], got ${JSON.stringify(anglesDeg)}`,
    );
  }
  if (!(Number.isFinite(scale) && scale > 0))
    throw new Error(`${fn}: scale must be a positive number, got ${scale}; e.g. 1.1`);
  if (fill !== "zero" && fill !== "edge")
    throw new Error(`${fn}: fill must be "zero" or "edge", got ${JSON.stringify(fill)}`);
  const m = rotationScaleMatrix(anglesDeg, scale);
  const [D, H, W] = image.shape;
  const C = image.channels;
  const cd = (D - 1) / 2,
    ch = (H - 1) / 2,
    cw = (W - 1) / 2;
  const src = image.data;
  const out = new Float32Array(src.length);
  const lab = label ? label.data : null;
  const labOut = lab ? allocLike(lab, lab.length) : null;
  const edge = fill === "edge";
  const HWC = H * W * C,
    WC = W * C;
  const wk = new Float64Array(8);
  const ik = new Int32Array(8);
  let o = 0,
    lo = 0;
  for (let d = 0; d < D; d++) {
    for (let h = 0; h < H; h++) {
      // input position of (d, h, w = 0); each step in w adds the matrix's third column
      let x = cd + m[0] * (d - cd) + m[1] * (h - ch) - m[2] * cw;
      let y = ch + m[3] * (d - cd) + m[4] * (h - ch) - m[5] * cw;
      let z = cw + m[6] * (d - cd) + m[7] * (h - ch) - m[8] * cw;
      for (let w = 0; w < W; w++, x += m[2], y += m[5], z += m[8]) {
        let xd = x,
          yh = y,
          zw = z;
        if (edge) {
          xd = xd < 0 ? 0 : xd > D - 1 ? D - 1 : xd;
          yh = yh < 0 ? 0 : yh > H - 1 ? H - 1 : yh;
          zw = zw < 0 ? 0 : zw > W - 1 ? W - 1 : zw;
        }
        // label: nearest
        if (labOut && lab) {
          const rd = Math.floor(xd + 0.5),
            rh = Math.floor(yh + 0.5),
            rw = Math.floor(zw + 0.5);
          labOut[lo++] = rd >= 0 && rd < D && rh >= 0 && rh < H && rw >= 0 && rw < W ? lab[(rd * H + rh) * W + rw] : 0;
        }
        // image: trilinear
        const fd = Math.floor(xd),
          fh = Math.floor(yh),
          fw = Math.floor(zw);
        const td = xd - fd,
          th = yh - fh,
          tw = zw - fw;
        if (fd >= 0 && fd < D - 1 && fh >= 0 && fh < H - 1 && fw >= 0 && fw < W - 1) {
          const p = fd * HWC + fh * WC + fw * C;
          for (let c = 0; c < C; c++) {
            const q = p + c;
            const a0 = src[q] + (src[q + C] - src[q]) * tw;
            const a1 = src[q + WC] + (src[q + WC + C] - src[q + WC]) * tw;
            const b0 = src[q + HWC] + (src[q + HWC + C] - src[q + HWC]) * tw;
            const b1 = src[q + HWC + WC] + (src[q + HWC + WC + C] - src[q + HWC + WC]) * tw;
            const a = a0 + (a1 - a0) * th;
            const b = b0 + (b1 - b0) * th;
            out[o++] = a + (b - a) * td;
          }
          continue;
        }
        // border: corners outside the input count as 0 (zero fill); in edge mode they are clamped inside
        let k = 0;
        for (let dd = 0; dd < 2; dd++) {
          const id = fd + dd,
            wd = dd ? td : 1 - td;
          for (let hh = 0; hh < 2; hh++) {
            const ih = fh + hh,
              wh = hh ? th : 1 - th;
            for (let ww = 0; ww < 2; ww++, k++) {
              const iw = fw + ww,
                wgt = wd * wh * (ww ? tw : 1 - tw);
              if (id >= 0 && id < D && ih >= 0 && ih < H && iw >= 0 && iw < W && wgt !== 0) {
                wk[k] = wgt;
                ik[k] = id * HWC + ih * WC + iw * C;
              } else {
                wk[k] = 0;
                ik[k] = 0;
              }
            }
          }
        }
        for (let c = 0; c < C; c++) {
          let v = 0;
          for (let j = 0; j < 8; j++) if (wk[j] !== 0) v += wk[j] * src[ik[j] + c];
          out[o++] = v;
        }
      }
    }
  }
  return {
    image: { data: out, shape: [D, H, W], channels: C },
    label: label && labOut ? { data: labOut, shape: [D, H, W], channels: 1 } : null,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Intensity (in place, per channel)

/** A factor from [lo, hi]: when the range straddles 1, half the draws go below 1 and half above (batchgenerators). */
function drawFactor(rng: Rng, [lo, hi]: [number, number]): number {
  if (lo < 1 && hi > 1) return rng() < 0.5 ? uniform(rng, lo, 1) : uniform(rng, 1, hi);
  return uniform(rng, lo, hi);
}

function channelStats(x: Float32Array, C: number, c: number) {
  let sum = 0,
    min = Infinity,
    max = -Infinity;
  const n = x.length / C;
  for (let i = c; i < x.length; i += C) {
    const v = x[i];
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = sum / n;
  let ss = 0;
  for (let i = c; i < x.length; i += C) ss += (x[i] - mean) * (x[i] - mean);
  return { mean, std: Math.sqrt(ss / n), min, max };
}

function contrast(x: Float32Array, C: number, c: number, f: number): void {
  const { mean, min, max } = channelStats(x, C, c);
  for (let i = c; i < x.length; i += C) {
    const v = (x[i] - mean) * f + mean;
    x[i] = v < min ? min : v > max ? max : v; // preserve_range, as nnU-Net
  }
}

function gamma(x: Float32Array, C: number, c: number, g: number, invert: boolean): void {
  const sign = invert ? -1 : 1;
  if (invert) for (let i = c; i < x.length; i += C) x[i] = -x[i];
  const before = channelStats(x, C, c);
  const range = before.max - before.min + 1e-7;
  for (let i = c; i < x.length; i += C) x[i] = Math.pow((x[i] - before.min) / range, g) * range + before.min;
  const after = channelStats(x, C, c);
  // retain_stats: put the mean and std back
  const k = before.std / (after.std + 1e-8);
  for (let i = c; i < x.length; i += C) x[i] = sign * ((x[i] - after.mean) * k + before.mean);
}

function checkPair(fn: string, image: Grid, label: Grid): void {
  checkGrid(fn, "label", label);
  if (label.channels !== 1)
    throw new Error(`${fn}: label must have 1 channel, got ${label.channels}; pass the label map`);
  if (label.shape.some((n, a) => n !== image.shape[a])) {
    throw new Error(
      `${fn}: label shape ${JSON.stringify(label.shape)} differs from image shape ${JSON.stringify(image.shape)}; pass crops of the same box`,
    );
  }
}

/**
 * Augments an image crop (float32, [D, H, W, C]) and its label crop ([D, H, W], or null) with the given config.
 * Returns new arrays; the inputs are not changed. Order: rotate/scale, intensity, then rot90 and mirroring.
 */
export function augment<L extends VoxelArray>(
  rng: Rng,
  image: Grid<Float32Array>,
  label: Grid<L> | null,
  config: AugmentConfig,
): { image: Grid<Float32Array>; label: Grid<L> | null } {
  const fn = "augment";
  if (typeof rng !== "function")
    throw new Error(`${fn}: rng must be a generator from makeRng(seed), got ${typeof rng}`);
  checkGrid(fn, "image", image);
  if (!(image.data instanceof Float32Array)) {
    throw new Error(
      `${fn}: image.data must be a Float32Array, got ${(image.data as VoxelArray).constructor.name}; use extractCrop (float32 crops)`,
    );
  }
  if (label) checkPair(fn, image, label);
  checkAugmentConfig(config);
  const C = image.channels;

  // 1. rotation + scaling, one resample
  const rotate = rng() < config.rotateProb;
  const angles: [number, number, number] = [0, 0, 0];
  if (rotate) for (let a = 0; a < 3; a++) angles[a] = uniform(rng, -config.rotateDeg[a], config.rotateDeg[a]);
  const scaled = rng() < config.scaleProb;
  const scale = scaled ? uniform(rng, config.scaleRange[0], config.scaleRange[1]) : 1;
  let img: Grid<Float32Array>;
  let lab: Grid<L> | null;
  if (rotate || scaled) {
    ({ image: img, label: lab } = rotateScale(image, label, angles, scale, config.fill));
  } else {
    img = { data: image.data.slice(), shape: [...image.shape], channels: C };
    lab = label ? { data: label.data.slice() as L, shape: [...label.shape], channels: 1 } : null;
  }
  const x = img.data;

  // 2. intensity, in nnU-Net's order: noise, brightness, contrast, gamma
  if (rng() < config.noiseProb) addGaussianNoise(x, rng, uniform(rng, config.noiseStd[0], config.noiseStd[1]));
  if (rng() < config.brightnessProb) {
    for (let c = 0; c < C; c++) {
      const f = uniform(rng, config.brightnessRange[0], config.brightnessRange[1]);
      for (let i = c; i < x.length; i += C) x[i] *= f;
    }
  }
  if (rng() < config.contrastProb) for (let c = 0; c < C; c++) contrast(x, C, c, drawFactor(rng, config.contrastRange));
  if (rng() < config.gammaProb) {
    const invert = rng() < config.gammaInvertProb;
    for (let c = 0; c < C; c++) gamma(x, C, c, drawFactor(rng, config.gammaRange), invert);
  }

  // 3. rot90 (planes with equal sizes only) and mirroring, one exact permutation
  let rot: Rot90 | null = null;
  if (rng() < config.rot90Prob) {
    const planes = config.rot90Planes.filter(([a, b]) => image.shape[a] === image.shape[b]);
    if (planes.length > 0) {
      const plane = planes[randInt(rng, 0, planes.length - 1)];
      rot = { plane: [plane[0], plane[1]], k: randInt(rng, 1, 3) };
    }
  }
  const flips: [boolean, boolean, boolean] = [
    rng() < config.flipProb[0],
    rng() < config.flipProb[1],
    rng() < config.flipProb[2],
  ];
  if (rot || flips.some((f) => f)) {
    img = mirrorRot90(img, flips, rot);
    if (lab) lab = mirrorRot90(lab, flips, rot);
  }
  return { image: img, label: lab };
}
