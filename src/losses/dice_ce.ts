// Cross-entropy + soft Dice, the nnU-Net v1 DC_and_CE_loss used by nnFormer (soft_dice_kwargs
// {batch_dice, smooth: 1e-5, do_bg: False}), with a closed-form gradient.
// Differs from the reference: nnU-Net returns CE − Dice; we return CE + (1 − Dice), which has the same gradient and
// reads as "0 when perfect". Logits are channels-last [B, D, H, W, K] (or flattened [P, K]); softmax is applied here.
//
// With p = softmax(x), y the one-hot target, P voxels, groups g (each batch item, or the whole batch with
// batchDice) and the Dice classes c (all, or 1..K-1 without background), n = #groups · #classes:
//   CE   = −(1/P) Σ_v log p[v, label_v]                       dCE/dx = (p − y) / P
//   dc_gc = (2 I_gc + s) / (S_gc + Y_gc + s),  I = Σ_v p·y, S = Σ_v p, Y = Σ_v y
//   Dice = (1/n) Σ dc_gc                                      dDice/dp_vc = (2 y_vc·den − num) / (n·den²)
//   dLoss/dx = (p − y)/P + p ⊙ (γ − Σ_c γ·p), γ = −dDice/dp  (the softmax Jacobian applied to γ)
// Voxel sums are a blocked transpose + a sum over the last axis (tf.sum over axis 0 is slow on wasm).
import * as tf from "@tensorflow/tfjs";
import { cachedConstant, r2, r3, transpose2d } from "../layers/fast/common";
import { customOp } from "../layers/op_helpers";
import type { Vec3 } from "../runtime/math";

export interface DiceCeOptions {
  /** Dice statistics pooled over the whole batch (nnU-Net batch_dice) instead of per batch item. */
  batchDice: boolean;
  /** Added to the Dice numerator and denominator (nnU-Net: 1e-5). */
  smooth?: number;
  /** Leave class 0 out of the Dice mean (nnU-Net do_bg: False). */
  excludeBackground?: boolean;
}

/** nnU-Net v1 adds 1e-8 to the Dice denominator on top of the smoothing term. */
const DEN_EPS = 1e-8;
/** log of p[label] is taken of max(p, this): caps a voxel's CE near 87 (float32 softmax underflow); value only. */
const MIN_PROB = 1e-38;

interface Prepared {
  x: tf.Tensor2D; // logits [P, K]
  y: tf.Tensor2D; // one-hot [P, K] float32
  groups: number;
  k: number;
  firstClass: number;
  smooth: number;
}

/** The one-hot [P, K] of a target given as int labels ([P], [B,D,H,W], [B,D,H,W,1]) or as a one-hot / soft map. */
export function targetOneHot(target: tf.Tensor, p: number, k: number): tf.Tensor2D {
  if (target.size === p * k && k > 1) return r2(tf.cast(target, "float32"), [p, k]);
  if (target.size !== p) {
    throw new Error(
      `dice_ce: target of shape [${target.shape}] matches neither ${p} labels nor a [${p}, ${k}] one-hot map`,
    );
  }
  const labels = tf.cast(target.reshape([p]), "int32") as tf.Tensor1D;
  return tf.oneHot(labels, k).toFloat() as tf.Tensor2D;
}

function prepare(logits: tf.Tensor, target: tf.Tensor, opts: DiceCeOptions): Prepared {
  if (logits.rank !== 2 && logits.rank !== 5)
    throw new Error(`dice_ce: logits must be [B,D,H,W,K] or [P,K], got [${logits.shape}]`);
  const k = logits.shape[logits.rank - 1];
  const p = logits.size / k;
  const excl = opts.excludeBackground ?? true;
  if (excl && k < 2) throw new Error("dice_ce: excludeBackground needs at least 2 classes");
  const b = logits.rank === 5 ? logits.shape[0] : 1;
  return {
    x: r2(logits, [p, k]),
    y: targetOneHot(target, p, k),
    groups: opts.batchDice ? 1 : b,
    k,
    firstClass: excl ? 1 : 0,
    smooth: opts.smooth ?? 1e-5,
  };
}

/**
 * Per-group voxel sums [G, K] of m [P, K] (groups are P/G consecutive rows): a blocked transpose to [K, P] and a sum
 * over the last axis. On wasm this beat both tf.sum over axis 0 and ones[1, P] @ m (which re-packs m) by ~2x.
 */
function groupSums(m: tf.Tensor2D, g: number): tf.Tensor2D {
  const [p, k] = m.shape;
  const s = tf.sum(r3(transpose2d(m), [k, g, p / g]), -1); // [K, G]
  return (g === 1 ? r2(s, [1, k]) : tf.transpose(s)) as tf.Tensor2D;
}

/** γ = y ⊙ a[group] + c[group] for per-group rows a, c [G, K] (broadcast, never tiled: wasm's Tile is slow). */
function diceGamma(a: tf.Tensor2D, c: tf.Tensor2D, y: tf.Tensor2D, g: number): tf.Tensor2D {
  const [p, k] = y.shape;
  if (g === 1) return tf.add(tf.mul(y, a), c) as tf.Tensor2D;
  return r2(tf.add(tf.mul(r3(y, [g, p / g, k]), r3(a, [g, 1, k])), r3(c, [g, 1, k])), [p, k]);
}

/** Dice-class mask [1, K]: 1 for the classes in the Dice mean. */
function classMask(k: number, first: number): tf.Tensor2D {
  return cachedConstant(`diceClasses:${k}:${first}`, () =>
    tf.tensor2d(
      Array.from({ length: k }, (_, c) => (c >= first ? 1 : 0)),
      [1, k],
    ),
  );
}

/** CE + (1 − soft Dice) with a closed-form gradient w.r.t. the logits (the target gets none). */
export function diceCeLoss(logits: tf.Tensor, target: tf.Tensor, opts: DiceCeOptions): tf.Scalar {
  return tf.tidy(() => {
    const { x, y, groups: G, k: K, firstClass, smooth } = prepare(logits, target, opts);
    const P = x.shape[0];
    const n = G * (K - firstClass);
    const out = customOp<tf.Scalar>([x], ([xi], save) => {
      const p = tf.softmax(xi) as tf.Tensor2D;
      const py = tf.mul(p, y) as tf.Tensor2D;
      const ce = tf.neg(tf.mean(tf.log(tf.maximum(tf.sum(py, -1), MIN_PROB))));
      const num = tf.add(tf.mul(groupSums(py, G), 2), smooth); // [G, K]
      const den = tf.add(tf.add(groupSums(p, G), groupSums(y, G)), smooth + DEN_EPS);
      const mask = classMask(K, firstClass);
      const dice = tf.div(tf.sum(tf.mul(tf.div(num, den), mask)), n);
      save([p, num, den, y]); // y too: it was made outside this node and the surrounding tidy disposes it
      return {
        value: tf.add(ce, tf.sub(1, dice)) as tf.Scalar,
        gradFunc: (dl, [ps, nm, dn, ys]) => {
          // γ = −dDice/dp = a·y + c with a = −2/(n·den), c = num/(n·den²), per group and Dice class
          const a = tf.mul(tf.div(mask, dn), -2 / n) as tf.Tensor2D;
          const c = tf.mul(tf.div(tf.div(nm, dn), dn), tf.div(mask, n)) as tf.Tensor2D;
          const gamma = diceGamma(a, c, ys as tf.Tensor2D, G);
          const jac = tf.mul(ps, tf.sub(gamma, tf.sum(tf.mul(gamma, ps), -1, true)));
          const dx = tf.add(tf.div(tf.sub(ps, ys), P), jac);
          return [tf.mul(dx, dl)];
        },
      };
    });
    return out;
  });
}

/** The same loss with plain tfjs ops and autodiff (reference for tests, baseline for the benchmark). */
export function diceCeLossPlain(logits: tf.Tensor, target: tf.Tensor, opts: DiceCeOptions): tf.Scalar {
  return tf.tidy(() => {
    const { x, y, groups: G, k: K, firstClass, smooth } = prepare(logits, target, opts);
    const P = x.shape[0];
    const lp = tf.logSoftmax(x);
    const ce = tf.neg(tf.mean(tf.sum(tf.mul(lp, y), -1)));
    const p3 = r3(tf.exp(lp), [G, P / G, K]);
    const y3 = r3(y, [G, P / G, K]);
    const num = tf.add(tf.mul(tf.sum(tf.mul(p3, y3), 1), 2), smooth); // [G, K]
    const den = tf.add(tf.add(tf.sum(p3, 1), tf.sum(y3, 1)), smooth + DEN_EPS);
    const dc = tf.slice(tf.div(num, den), [0, firstClass], [G, K - firstClass]);
    return tf.add(ce, tf.sub(1, tf.mean(dc))) as tf.Scalar;
  });
}

/** Flat source voxel of every output voxel, by input shape and output size (a few deep-supervision shapes). */
const downsampleIndex = new Map<string, Int32Array>();

function nearestIndex(b: number, inSize: Vec3, factors: Vec3): Int32Array {
  const key = `${b}|${inSize}|${factors}`;
  let idx = downsampleIndex.get(key);
  if (!idx) {
    const [D, H, W] = inSize;
    const [fz, fy, fx] = factors;
    const [d, h, w] = [D / fz, H / fy, W / fx];
    idx = new Int32Array(b * d * h * w);
    let n = 0;
    for (let i = 0; i < b; i++)
      for (let z = 0; z < d; z++)
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++) {
            idx[n++] = ((i * D + fz * z + (fz >> 1)) * H + fy * y + (fy >> 1)) * W + fx * x + (fx >> 1);
          }
    downsampleIndex.set(key, idx);
  }
  return idx;
}

/**
 * Nearest-neighbour downsampling of a label map [B, D, H, W] or [B, D, H, W, C] to spatial size `size` (integer
 * factors). We take voxel f·o + floor(f/2) of each block; nnU-Net's order-0 skimage resize samples the block centre
 * f·o + (f−1)/2, so for even f the two differ by half a voxel. One row gather with a cached index (strided slices of
 * the innermost axis cost one copy call per voxel on wasm).
 */
export function nearestDownsample(target: tf.Tensor, size: Vec3): tf.Tensor {
  return tf.tidy(() => {
    const factors = [0, 0, 0] as Vec3;
    for (let a = 0; a < 3; a++) {
      const f = target.shape[a + 1] / size[a];
      if (!Number.isInteger(f) || f < 1)
        throw new Error(`nearestDownsample: ${target.shape[a + 1]} -> ${size[a]} is not an integer factor`);
      factors[a] = f;
    }
    if (factors.every((f) => f === 1)) return target;
    const [b, D, H, W] = target.shape as number[];
    const c = target.rank === 5 ? (target.shape[4] as number) : 1;
    const idx = nearestIndex(b, [D, H, W], factors);
    const rows = tf.gather(target.reshape([b * D * H * W, c]), tf.tensor1d(idx, "int32"));
    return rows.reshape(target.rank === 5 ? [b, ...size, c] : [b, ...size]);
  });
}

/** nnFormer's deep-supervision weights: 1/2^i, normalised (3 outputs: 4/7, 2/7, 1/7). */
export function deepSupervisionWeights(n: number): number[] {
  const w = Array.from({ length: n }, (_, i) => 1 / 2 ** i);
  const s = w.reduce((a, b) => a + b, 0);
  return w.map((v) => v / s);
}

export interface DeepSupervisionOptions extends DiceCeOptions {
  /** Per-output weights; default deepSupervisionWeights(outputs.length). */
  weights?: number[];
  /** The per-output loss; default diceCeLoss (closed-form gradient). */
  loss?: (logits: tf.Tensor, target: tf.Tensor, opts: DiceCeOptions) => tf.Scalar;
}

/**
 * Σ_i w_i · loss(outputs[i], targets[i]), outputs full resolution first. Give one target per output, or a single
 * full-resolution label map (rank 4 or 5), which is nearest-downsampled to each output's size.
 */
export function deepSupervisionLoss(
  outputs: tf.Tensor[],
  targets: tf.Tensor[],
  opts: DeepSupervisionOptions,
): tf.Scalar {
  const weights = opts.weights ?? deepSupervisionWeights(outputs.length);
  if (weights.length !== outputs.length)
    throw new Error(`deepSupervisionLoss: ${weights.length} weights for ${outputs.length} outputs`);
  if (targets.length !== outputs.length && targets.length !== 1) {
    throw new Error(`deepSupervisionLoss: give 1 target or one per output (${outputs.length}), got ${targets.length}`);
  }
  const loss = opts.loss ?? diceCeLoss;
  return tf.tidy(() => {
    const terms = outputs.map((o, i) => {
      let t = targets.length === 1 ? targets[0] : targets[i];
      if (targets.length === 1 && i > 0) t = nearestDownsample(t, [o.shape[1], o.shape[2], o.shape[3]] as Vec3);
      return tf.mul(loss(o, t, opts), weights[i]);
    });
    return tf.addN(terms) as tf.Scalar;
  });
}
