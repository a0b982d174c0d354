// Convolutional blocks shared by the CNN parts of the baselines, channels-last [B, D, H, W, C]:
// InstanceNorm, LeakyReLU, and MONAI's dynunet/UNETR blocks (monai/networks/blocks/dynunet_block.py,
// unetr_block.py) as (spec, forward) pairs that use MONAI's state_dict names. MONAI builds every conv of these blocks
// with bias=False (get_conv_layer's default) and norm "instance" = nn.InstanceNorm3d without affine parameters.
import * as tf from "@tensorflow/tfjs";
import type { Ops, Triple } from "./ops";
import type { SpecList } from "./param_specs";

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
const cube = (n: number): Triple => [n, n, n];

/**
 * InstanceNorm3d: per sample and channel, (x − mean) / √(var + eps) over the spatial axes (biased variance, as
 * PyTorch), then γ·x̂ + β when affine weights are given. Plain tf ops, so autodiff gives the gradient on every backend.
 */
export function instanceNorm3d(x: tf.Tensor5D, gamma: tf.Tensor1D | null = null, beta: tf.Tensor1D | null = null, eps = IN_EPS): tf.Tensor5D {
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

export function leakyRelu<T extends tf.Tensor>(x: T, slope = LEAKY_SLOPE): T {
  return tf.leakyRelu(x, slope);
}

/** MONAI get_padding: (k − s + 1) / 2, floored. */
export function samePadding(k: number, s: number): number {
  return Math.floor((k - s + 1) / 2);
}

/**
 * Conv3d `${name}.weight` [kD, kH, kW, Ci, Co] (+ `${name}.bias` if present). A 1×1×1 stride-1 conv runs as a
 * linear layer on the voxel matrix (same values, much faster on wasm).
 */
export function conv(ctx: NetContext, x: tf.Tensor5D, name: string, stride: Triple, padding: Triple, inputGrad = true): tf.Tensor5D {
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

/** Concatenate on channels (torch.cat dim=1 in NCDHW). */
export function concatChannels(a: tf.Tensor5D, b: tf.Tensor5D): tf.Tensor5D {
  return tf.concat([a, b], 4);
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
  y = leakyRelu(instanceNorm3d(y));
  y = instanceNorm3d(conv(ctx, y, `${name}.conv2.conv`, cube(1), cube(samePadding(k, 1))));
  const residual = ctx.has(`${name}.conv3.conv.weight`)
    ? instanceNorm3d(conv(ctx, x, `${name}.conv3.conv`, cube(stride), cube(0), inputGrad))
    : x;
  return leakyRelu(tf.add(y, residual));
}

/** UnetBasicBlock: (conv-IN-LReLU) twice. */
export function basicBlockSpec(L: SpecList, name: string, cin: number, cout: number, k = 3): void {
  L.conv(`${name}.conv1.conv`, cin, cout, cube(k), { bias: false });
  L.conv(`${name}.conv2.conv`, cout, cout, cube(k), { bias: false });
}

export function basicBlock(ctx: NetContext, x: tf.Tensor5D, name: string, stride = 1, inputGrad = true): tf.Tensor5D {
  const k = (ctx.p(`${name}.conv1.conv.weight`) as tf.Tensor5D).shape[0];
  const y = leakyRelu(instanceNorm3d(conv(ctx, x, `${name}.conv1.conv`, cube(stride), cube(samePadding(k, stride)), inputGrad)));
  return leakyRelu(instanceNorm3d(conv(ctx, y, `${name}.conv2.conv`, cube(1), cube(samePadding(k, 1)))));
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
  return resBlock(ctx, concatChannels(up, skip), `${name}.conv_block`);
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
