// Convolutional blocks shared by the CNN parts of the baselines, channels-last [B, D, H, W, C]:
// InstanceNorm, LeakyReLU, and MONAI's dynunet/UNETR blocks (monai/networks/blocks/dynunet_block.py,
// unetr_block.py) as (spec, forward) pairs that use MONAI's state_dict names. MONAI builds every conv of these blocks
// with bias=False (get_conv_layer's default) and norm "instance" = nn.InstanceNorm3d without affine parameters.
import * as tf from "@tensorflow/tfjs";
import { Ops } from "./ops";
import type { SpecList } from "./param_specs";
import { cachedConstant, customOp } from "./fast/common";
import type { Vec3 } from "../runtime/math";
import { cube } from "../runtime/math";

/** What a block's forward needs: the ops and the weights by PyTorch name. */
export interface NetContext {
  ops: Ops;
  /** The tensor stored under a PyTorch name (throws on unknown names). */
  p(name: string): tf.Tensor;
  /** Whether a parameter exists (optional biases, affine norms). */
  has(name: string): boolean;
}

export const IN_EPS = 1e-5;
export const LEAKY_SLOPE = 0.01;

/** The activation after a norm: LeakyReLU with this negative slope (0 = ReLU), or none. */
export type NormAct = { slope: number } | null;

/**
 * InstanceNorm3d: per sample and channel, (x − mean) / √(var + eps) over the spatial axes (biased variance, as
 * PyTorch), then γ·x̂ + β when affine weights are given. Plain tf ops and autodiff: the reference formulation (and
 * what plainOps models run); instanceNormAct is the fast one.
 */
export function instanceNorm3dPlain(
  x: tf.Tensor5D,
  gamma: tf.Tensor1D | null = null,
  beta: tf.Tensor1D | null = null,
  eps = IN_EPS,
): tf.Tensor5D {
  const [B, D, H, W, C] = x.shape;
  const x3 = tf.reshape(x, [B, D * H * W, C]); // [B, S, C]
  const mean = tf.mean(x3, 1, true); // [B, 1, C]
  const xc = tf.sub(x3, mean);
  const variance = tf.mean(tf.square(xc), 1, true);
  let y: tf.Tensor = tf.mul(xc, tf.rsqrt(tf.add(variance, eps)));
  if (gamma) y = tf.mul(y, gamma);
  if (beta) y = tf.add(y, beta);
  return tf.reshape(y, x.shape);
}

/** InstanceNorm3d (see instanceNorm3dPlain) with the hand-written gradient of instanceNormAct. */
export function instanceNorm3d(
  x: tf.Tensor5D,
  gamma: tf.Tensor1D | null = null,
  beta: tf.Tensor1D | null = null,
  eps = IN_EPS,
): tf.Tensor5D {
  return instanceNormAct(x, gamma, beta, null, eps);
}

/** Rows per block of spatialSum's first stage. */
const SUM_BLOCK = 64;

/**
 * Sums over the middle axis of x [B, S, C] -> [B, 1, C]. tf.sum over a non-last axis transposes internally on wasm
 * (~3.4 ns per element, docs/wasm-fast-ops.md §8.3); a matMul with a cached ones row needs no transpose. In two stages,
 * ones[1, b] @ [B·S/b, b, C] then ones[1, S/b] @ [B, S/b, C], so neither stage re-packs the big operand.
 */
export function spatialSum(x: tf.Tensor3D): tf.Tensor3D {
  const [B, S, C] = x.shape;
  const b = SUM_BLOCK;
  const ones = (n: number) => cachedConstant(`ones:1x1x${n}`, () => tf.ones([1, 1, n]) as tf.Tensor3D);
  if (S < 8 * b || S % b !== 0) return tf.matMul(ones(S), x);
  const partial = tf.matMul(ones(b), tf.reshape(x, [B * (S / b), b, C]) as tf.Tensor3D); // [B·S/b, 1, C]
  return tf.matMul(ones(S / b), tf.reshape(partial, [B, S / b, C]) as tf.Tensor3D); // [B, 1, C]
}

/**
 * Per-channel γ·x + β on x [..., C] as one depthwise 1×1 conv with a fused bias (XNNPACK on wasm, ~0.5 ns per
 * element; a broadcast tf.mul / tf.add with a [C] operand takes ~6 ns per element there).
 */
function channelAffine(x: tf.Tensor, gamma: tf.Tensor | null, beta: tf.Tensor | null): tf.Tensor {
  if (!gamma && !beta) return x;
  const C = x.shape[x.rank - 1];
  const filter = gamma ? tf.reshape(gamma, [1, 1, C, 1]) : tf.ones([1, 1, C, 1]);
  const y = tf.fused.depthwiseConv2d({
    x: tf.reshape(x, [1, x.size / C, 1, C]) as tf.Tensor4D,
    filter: filter as tf.Tensor4D,
    strides: 1,
    pad: "valid",
    bias: beta ?? undefined,
  });
  return tf.reshape(y, x.shape);
}

/**
 * LeakyReLU as slope·z + (1 − slope)·relu(z): same-shape element-wise ops (~0.2 ns per element each on wasm) instead
 * of tfjs-wasm's scalar LeakyRelu kernel (~8 ns per element). slope 0 is a plain ReLU.
 */
function leakyValue(z: tf.Tensor, slope: number): tf.Tensor {
  if (slope === 0) return tf.relu(z);
  return tf.add(tf.mul(z, slope), tf.mul(tf.relu(z), 1 - slope));
}

/**
 * InstanceNorm3d (+ affine) followed by LeakyReLU / ReLU (act) or nothing (act null), as one custom-gradient op.
 * Saves x̂ and 1/σ (and γ) and, with an activation, the output y (kept anyway as the next conv's input; y > 0 exactly
 * where the pre-activation is), never the input. With dz the gradient at the pre-activation and
 * u = Σ_s dz, t = Σ_s dz·x̂ per (sample, channel):
 *   dx = (γ/σ)·(dz − u/S − x̂·t/S),  dγ = Σ_b t,  dβ = Σ_b u.
 * Same values and gradients as instanceNorm3dPlain + tf.leakyRelu (test/layers/conv_blocks3d.test.ts).
 */
export function instanceNormAct(
  x: tf.Tensor5D,
  gamma: tf.Tensor1D | null,
  beta: tf.Tensor1D | null,
  act: NormAct,
  eps = IN_EPS,
): tf.Tensor5D {
  const [B, D, H, W, C] = x.shape;
  const S = D * H * W;
  if (act && !(act.slope >= 0)) throw new Error(`instanceNormAct: slope ${act.slope} must be >= 0`);
  const inputs: tf.Tensor[] = [x];
  if (gamma) inputs.push(gamma);
  if (beta) inputs.push(beta);
  return customOp<tf.Tensor5D>(inputs, (xs, save) => {
    const g = gamma ? xs[1] : null;
    const b = beta ? xs[gamma ? 2 : 1] : null;
    const x3 = tf.reshape(xs[0], [B, S, C]) as tf.Tensor3D; // [B, S, C]
    const xc = tf.sub(x3, tf.mul(spatialSum(x3), 1 / S)) as tf.Tensor3D;
    const rstd = tf.rsqrt(tf.add(tf.mul(spatialSum(tf.square(xc) as tf.Tensor3D), 1 / S), eps)); // [B, 1, C]
    const xhat = tf.mul(xc, rstd);
    const z = channelAffine(xhat, g, b);
    const y = act === null ? z : leakyValue(z, act.slope);
    save([xhat, rstd, ...(g ? [g] : []), ...(act ? [y] : [])]);
    return {
      value: tf.reshape(y, x.shape) as tf.Tensor5D,
      // tf.tidy: tfjs runs a customGrad's gradFunc outside any tidy, so its temporaries would live until the end of
      // the whole backward pass
      gradFunc: (dy, saved) =>
        tf.tidy(() => {
          const [xh, rs] = saved;
          const gs = g ? saved[2] : null;
          let dz = tf.reshape(dy, [B, S, C]) as tf.Tensor;
          if (act !== null) dz = tf.mul(dz, tf.step(tf.reshape(saved[saved.length - 1], [B, S, C]), act.slope)); // 1 where z > 0, else the slope
          const u = spatialSum(dz as tf.Tensor3D); // [B, 1, C]
          const t = spatialSum(tf.mul(dz, xh) as tf.Tensor3D); // [B, 1, C]
          const k = gs ? tf.mul(rs, gs) : rs;
          const dx = tf.sub(tf.mul(dz, k), tf.add(tf.mul(u, tf.div(k, S)), tf.mul(xh, tf.mul(t, tf.div(k, S)))));
          const grads: tf.Tensor[] = [tf.reshape(dx, x.shape)];
          if (g) grads.push(tf.reshape(tf.sum(t, [0, 1]), [C]));
          if (b) grads.push(tf.reshape(tf.sum(u, [0, 1]), [C]));
          return grads;
        }),
    };
  });
}

/** InstanceNorm + activation in the plain formulation (autodiff): plainOps.instanceNormAct. */
export function instanceNormActPlain(
  x: tf.Tensor5D,
  gamma: tf.Tensor1D | null,
  beta: tf.Tensor1D | null,
  act: NormAct,
): tf.Tensor5D {
  const y = instanceNorm3dPlain(x, gamma, beta);
  return act === null ? y : act.slope === 0 ? tf.relu(y) : tf.leakyRelu(y, act.slope);
}

/** InstanceNorm + activation for a model, as the context's ops implement it (custom gradient with fast ops). */
export function normAct(
  ctx: NetContext,
  x: tf.Tensor5D,
  gamma: tf.Tensor1D | null,
  beta: tf.Tensor1D | null,
  act: NormAct,
): tf.Tensor5D {
  return ctx.ops.instanceNormAct(x, gamma, beta, act);
}

/** LeakyReLU(0.01), nnU-Net's and MONAI's activation. */
export const LEAKY: NormAct = { slope: LEAKY_SLOPE };

/**
 * LeakyReLU (slope > 0) whose gradient reads the output instead of the input: y > 0 exactly where x > 0, so
 * dx = dy·step(y, slope) and the input need not be kept for the backward (the output is kept anyway by the next layer).
 */
export function leakyRelu<T extends tf.Tensor>(x: T, slope = LEAKY_SLOPE): T {
  if (!(slope > 0))
    throw new Error(`leakyRelu: slope ${slope} must be > 0 (the gradient reads the sign of the output)`);
  return customOp<T>([x], ([xi], save) => {
    const y = leakyValue(xi, slope) as T;
    save([y]);
    return { value: y, gradFunc: (dy, [ys]) => tf.tidy(() => [tf.mul(dy, tf.step(ys, slope))]) };
  });
}

/** MONAI get_padding: (k − s + 1) / 2, floored. */
export function samePadding(k: number, s: number): number {
  return Math.floor((k - s + 1) / 2);
}

/**
 * Conv3d `${name}.weight` [kD, kH, kW, Ci, Co] (+ `${name}.bias` if present). A 1×1×1 stride-1 conv runs as a
 * linear layer on the voxel matrix (same values, much faster on wasm).
 */
export function conv(
  ctx: NetContext,
  x: tf.Tensor5D,
  name: string,
  stride: Vec3,
  padding: Vec3,
  inputGrad = true,
): tf.Tensor5D {
  const w = ctx.p(`${name}.weight`) as tf.Tensor5D;
  const b = ctx.has(`${name}.bias`) ? (ctx.p(`${name}.bias`) as tf.Tensor1D) : null;
  const [kD, kH, kW, ci, co] = w.shape;
  if (kD === 1 && kH === 1 && kW === 1 && stride.every((s) => s === 1) && padding.every((q) => q === 0)) {
    const y = ctx.ops.linear(tf.reshape(x, [-1, ci]), tf.reshape(w, [ci, co]), b); // [B·D·H·W, Co]
    const [B, D, H, W] = x.shape;
    return tf.reshape(y, [B, D, H, W, co]) as tf.Tensor5D;
  }
  return ctx.ops.conv3d(x, w, b, { stride, padding, inputGrad });
}

/** ConvTranspose3d with kernel == stride, `${name}.weight` [kD, kH, kW, Co, Ci] (+ optional bias). */
export function convT(ctx: NetContext, x: tf.Tensor5D, name: string): tf.Tensor5D {
  const b = ctx.has(`${name}.bias`) ? (ctx.p(`${name}.bias`) as tf.Tensor1D) : null;
  return ctx.ops.convTranspose3d(x, ctx.p(`${name}.weight`) as tf.Tensor5D, b);
}

/**
 * Concatenate on channels (torch.cat dim=1 in NCDHW). tfjs's gradient of a last-axis concat is a SplitV that takes
 * seconds on wasm for full-resolution volumes; with fast ops the gradient is instead two matMuls of dY [P, Ca + Cb]
 * with cached 0/1 selection matrices [Ca + Cb, Ca] and [Ca + Cb, Cb] (XNNPACK packs them once).
 */
export function concatChannels(a: tf.Tensor5D, b: tf.Tensor5D, ops?: Ops): tf.Tensor5D {
  if (!ops || ops.name !== "fast") return tf.concat([a, b], 4) as tf.Tensor5D;
  const ca = a.shape[4],
    cb = b.shape[4],
    c = ca + cb;
  const select = (from: number, n: number) =>
    cachedConstant(`select-cols:${c}:${from}:${n}`, () => tf.tensor2d(selectionMatrix(c, from, n), [c, n]));
  return customOp<tf.Tensor5D>([a, b], ([ai, bi]) => ({
    value: tf.concat([ai, bi], 4) as tf.Tensor5D,
    gradFunc: (dy) =>
      tf.tidy(() => {
        const d2 = tf.reshape(dy, [-1, c]) as tf.Tensor2D; // [P, Ca + Cb]
        return [tf.reshape(tf.matMul(d2, select(0, ca)), a.shape), tf.reshape(tf.matMul(d2, select(ca, cb)), b.shape)];
      }),
  }));
}

/** The [c, n] 0/1 matrix whose product with a [P, c] matrix picks columns from … from + n − 1. */
export function selectionMatrix(c: number, from: number, n: number): Float32Array {
  const m = new Float32Array(c * n);
  for (let j = 0; j < n; j++) m[(from + j) * n + j] = 1;
  return m;
}

// ---------------------------------------------------------------------------------------------------------------
// MONAI blocks. Spec and forward take the same `name` prefix.

/** UnetResBlock: conv-IN-LReLU-conv-IN (+ 1×1 conv-IN on the residual when channels or stride change), add, LReLU. */
export function resBlockSpec(L: SpecList, name: string, cin: number, cout: number, k = 3, stride = 1): void {
  L.conv(`${name}.conv1.conv`, cin, cout, cube(k), { bias: false });
  L.conv(`${name}.conv2.conv`, cout, cout, cube(k), { bias: false });
  if (cin !== cout || stride !== 1) L.conv(`${name}.conv3.conv`, cin, cout, cube(1), { bias: false });
}

export function resBlock(ctx: NetContext, x: tf.Tensor5D, name: string, stride = 1, inputGrad = true): tf.Tensor5D {
  const k = (ctx.p(`${name}.conv1.conv.weight`) as tf.Tensor5D).shape[0];
  let y = conv(ctx, x, `${name}.conv1.conv`, cube(stride), cube(samePadding(k, stride)), inputGrad);
  y = normAct(ctx, y, null, null, LEAKY);
  y = normAct(ctx, conv(ctx, y, `${name}.conv2.conv`, cube(1), cube(samePadding(k, 1))), null, null, null);
  const residual = ctx.has(`${name}.conv3.conv.weight`)
    ? normAct(ctx, conv(ctx, x, `${name}.conv3.conv`, cube(stride), cube(0), inputGrad), null, null, null)
    : x;
  return leakyRelu(tf.add(y, residual));
}

/** UnetrBasicBlock with res_block=True (UNETR's and Swin-UNETR's setting): one UnetResBlock under `${name}.layer`. */
export function unetrBasicBlockSpec(L: SpecList, name: string, cin: number, cout: number): void {
  resBlockSpec(L, `${name}.layer`, cin, cout);
}

export function unetrBasicBlock(ctx: NetContext, x: tf.Tensor5D, name: string, inputGrad = true): tf.Tensor5D {
  return resBlock(ctx, x, `${name}.layer`, 1, inputGrad);
}

/** UnetrUpBlock with res_block=True: ConvTranspose(k2, s2, no bias) → concat skip → UnetResBlock 2·cout → cout. */
export function unetrUpBlockSpec(L: SpecList, name: string, cin: number, cout: number): void {
  L.convT(`${name}.transp_conv.conv`, cin, cout, cube(2), { bias: false });
  resBlockSpec(L, `${name}.conv_block`, 2 * cout, cout);
}

export function unetrUpBlock(ctx: NetContext, x: tf.Tensor5D, skip: tf.Tensor5D, name: string): tf.Tensor5D {
  const up = convT(ctx, x, `${name}.transp_conv.conv`);
  return resBlock(ctx, concatChannels(up, skip, ctx.ops), `${name}.conv_block`);
}

/**
 * UnetrPrUpBlock with conv_block and res_block (UNETR's defaults): ConvTranspose(k2) to cout, then numLayer times
 * [ConvTranspose(k2) → UnetResBlock]. Names: transp_conv_init.conv, blocks.i.0.conv, blocks.i.1.*.
 */
export function unetrPrUpBlockSpec(L: SpecList, name: string, cin: number, cout: number, numLayer: number): void {
  L.convT(`${name}.transp_conv_init.conv`, cin, cout, cube(2), { bias: false });
  for (let i = 0; i < numLayer; i++) {
    L.convT(`${name}.blocks.${i}.0.conv`, cout, cout, cube(2), { bias: false });
    resBlockSpec(L, `${name}.blocks.${i}.1`, cout, cout);
  }
}

export function unetrPrUpBlock(ctx: NetContext, x: tf.Tensor5D, name: string): tf.Tensor5D {
  let y = convT(ctx, x, `${name}.transp_conv_init.conv`);
  for (let i = 0; ctx.has(`${name}.blocks.${i}.0.conv.weight`); i++) {
    y = resBlock(ctx, convT(ctx, y, `${name}.blocks.${i}.0.conv`), `${name}.blocks.${i}.1`);
  }
  return y;
}

/** UnetOutBlock: 1×1×1 conv with bias (`${name}.conv.conv`). */
export function outBlockSpec(L: SpecList, name: string, cin: number, numClasses: number): void {
  L.conv(`${name}.conv.conv`, cin, numClasses, cube(1), { bias: true });
}

export function outBlock(ctx: NetContext, x: tf.Tensor5D, name: string): tf.Tensor5D {
  return conv(ctx, x, `${name}.conv.conv`, cube(1), cube(0));
}
