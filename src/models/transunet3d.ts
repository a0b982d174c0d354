// TransUNet-3D: OUR 3D adaptation of TransUNet (Chen et al., "TransUNet: Transformers Make Strong Encoders for
// Medical Image Segmentation", arXiv 2102.04306), which is a 2D network (R50-ViT-B/16 on 224² slices). There is no
// official 3D version, so this is a baseline in its spirit, not a reproduction. What we kept: a CNN encoder down to
// 1/16 (or 1/8) whose deepest map is embedded with patch size 1 ("hybrid" ViT) plus a learned position embedding,
// pre-norm ViT blocks and a final LayerNorm, the cascaded upsampler (conv_more 3×3 → [2× up, concat skip,
// (conv3×3-norm-ReLU) × 2] per stage, skips at 1/8, 1/4, 1/2 and none at full resolution), a 3×3 segmentation head.
// What differs from the 2D original:
//   - every conv, up-sampling and position grid is 3D;
//   - the ImageNet ResNet-50 (StdConv + GroupNorm, 7×7 root, bottleneck units) is replaced by a plain conv stem:
//     per stage a stride-2 conv3³ and a conv3³, each with InstanceNorm and ReLU, widths `cnnChannels`;
//   - BatchNorm in the decoder is InstanceNorm (batch 1–2 on CPU);
//   - bilinear (align_corners=True) up-sampling becomes trilinear (align_corners=True), done separably;
//   - no pretrained weights: PyTorch-default init everywhere, the position embedding trunc-normal 0.02 (original:
//     zeros, then loaded from ImageNet-21k); no dropout.
// Parameter names follow our structure (`stem.*`, `transformer.*` as MONAI's ViT, `decoder.*`, `segmentation_head`).
import * as tf from "@tensorflow/tfjs";
import { Ops } from "../layers/ops";
import { SpecList } from "../layers/param_specs";
import { concatChannels, conv, normAct, type NetContext } from "../layers/conv_blocks3d";
import { cachedConstant, customOp } from "../layers/fast/common";
import { tokensToVolume, vitEncode, vitSpec, type VitShape } from "../layers/vit3d";
import { SpecModel, checkCommon, configError } from "./spec_model";
import type { SegmentationForwardOptions } from "./types";
import type { Vec3 } from "../runtime/math";
import { cube } from "../runtime/math";

export interface TransUnet3dConfig {
  inChannels: number;
  numClasses: number;
  /** Training crop [D, H, W]; each side a multiple of 2^cnnChannels.length. */
  cropSize: Vec3;
  /** Widths of the CNN stem stages; each halves the resolution (4 stages → transformer on the 1/16 grid). */
  cnnChannels: number[];
  /** Token width (768 in R50-ViT-B/16). */
  hiddenSize: number;
  /** MLP hidden width (3072). */
  mlpDim: number;
  /** Transformer blocks (12). */
  numLayers: number;
  /** Attention heads (12). */
  numHeads: number;
  /** conv_more output width (512). */
  headChannels: number;
  /** Decoder block widths, deep → shallow, one per stem stage (256, 128, 64, 16). */
  decoderChannels: number[];
}

/** Paper-sized: ViT-B/16 widths on a 1/16 grid of nnFormer's Synapse crop 64×128×128 (4×8×8 = 256 tokens). */
export const TRANSUNET3D_BASE: TransUnet3dConfig = {
  inChannels: 1,
  numClasses: 14,
  cropSize: [64, 128, 128],
  cnnChannels: [64, 128, 256, 512],
  hiddenSize: 768,
  mlpDim: 3072,
  numLayers: 12,
  numHeads: 12,
  headChannels: 512,
  decoderChannels: [256, 128, 64, 16],
};

/** CPU preset for the 64³ phantoms: 4 stem stages to a 4³ grid, 4 blocks of width 192. */
export const TRANSUNET3D_CPU: TransUnet3dConfig = {
  inChannels: 1,
  numClasses: 9,
  cropSize: [64, 64, 64],
  cnnChannels: [16, 32, 64, 128],
  hiddenSize: 192,
  mlpDim: 768,
  numLayers: 4,
  numHeads: 6,
  headChannels: 128,
  decoderChannels: [64, 32, 16, 8],
};

/** Unit-test preset: 16³ crop, 3 stem stages (1/8 grid of 2³ tokens). */
export const TRANSUNET3D_MICRO: TransUnet3dConfig = {
  inChannels: 1,
  numClasses: 3,
  cropSize: [16, 16, 16],
  cnnChannels: [4, 8, 16],
  hiddenSize: 16,
  mlpDim: 32,
  numLayers: 2,
  numHeads: 2,
  headChannels: 16,
  decoderChannels: [16, 8, 4],
};

/** Throws, naming the field, its value and the fix, when the config cannot build the network. */
export function checkTransUnet3dConfig(c: TransUnet3dConfig): void {
  const bad = configError("TransUNet3D");
  checkCommon(bad, c);
  for (const f of ["hiddenSize", "mlpDim", "numLayers", "numHeads", "headChannels"] as const) {
    if (!Number.isInteger(c[f]) || c[f] < 1) bad(f, c[f], "use a positive integer");
  }
  if (!Array.isArray(c.cnnChannels) || c.cnnChannels.length < 1)
    bad("cnnChannels", c.cnnChannels, "give at least one stem stage (4 reaches 1/16 as in TransUNet)");
  c.cnnChannels.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 1) bad(`cnnChannels[${i}]`, v, "use a positive integer");
  });
  if (!Array.isArray(c.decoderChannels) || c.decoderChannels.length !== c.cnnChannels.length) {
    bad(
      "decoderChannels",
      c.decoderChannels,
      `give one width per stem stage (${c.cnnChannels.length}), deep → shallow`,
    );
  }
  c.decoderChannels.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 1) bad(`decoderChannels[${i}]`, v, "use a positive integer");
  });
  const m = 2 ** c.cnnChannels.length;
  c.cropSize.forEach((n, a) => {
    if (n % m)
      bad(
        "cropSize",
        c.cropSize,
        `each side must be a multiple of 2^${c.cnnChannels.length} = ${m} (one halving per stem stage; axis ${a})`,
      );
  });
  if (c.hiddenSize % c.numHeads) bad("numHeads", c.numHeads, `must divide hiddenSize ${c.hiddenSize}`);
}

function vitShape(c: TransUnet3dConfig): VitShape {
  const m = 2 ** c.cnnChannels.length;
  return {
    inChannels: c.cnnChannels[c.cnnChannels.length - 1],
    patch: [1, 1, 1],
    grid: c.cropSize.map((n) => n / m) as Vec3,
    hidden: c.hiddenSize,
    mlpDim: c.mlpDim,
    numLayers: c.numLayers,
    qkvBias: true,
  };
}

/** All parameters. Does not allocate. */
export function transUnet3dParamSpecs(c: TransUnet3dConfig): SpecList {
  checkTransUnet3dConfig(c);
  const L = new SpecList();
  const S = c.cnnChannels.length;
  L.group = "stem";
  c.cnnChannels.forEach((ch, s) => {
    L.conv(`stem.stages.${s}.conv1.conv`, s === 0 ? c.inChannels : c.cnnChannels[s - 1], ch, cube(3), { bias: false });
    L.conv(`stem.stages.${s}.conv2.conv`, ch, ch, cube(3), { bias: false });
  });
  vitSpec(L, "transformer", vitShape(c));
  L.group = "decoder";
  L.conv("decoder.conv_more.conv", c.hiddenSize, c.headChannels, cube(3), { bias: false });
  for (let i = 0; i < S; i++) {
    const cin = i === 0 ? c.headChannels : c.decoderChannels[i - 1];
    const skip = S - 2 - i >= 0 ? c.cnnChannels[S - 2 - i] : 0;
    L.conv(`decoder.blocks.${i}.conv1.conv`, cin + skip, c.decoderChannels[i], cube(3), { bias: false });
    L.conv(`decoder.blocks.${i}.conv2.conv`, c.decoderChannels[i], c.decoderChannels[i], cube(3), { bias: false });
  }
  L.group = "segmentation_head";
  L.conv("segmentation_head.conv", c.decoderChannels[S - 1], c.numClasses, cube(3), { bias: true });
  return L;
}

/** The [2n, n] matrix of 2× linear interpolation with align_corners=True (src = i·(n−1)/(2n−1)). */
export function upsampleMatrix(n: number): Float32Array {
  const m = 2 * n;
  const a = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    const src = n === 1 ? 0 : (i * (n - 1)) / (m - 1);
    const lo = Math.floor(src),
      hi = Math.min(lo + 1, n - 1),
      t = src - lo;
    a[i * n + lo] += 1 - t;
    a[i * n + hi] += t;
  }
  return a;
}

/**
 * 2× trilinear up-sampling (align_corners=True) of x [B, D, H, W, C], one axis at a time: the axis is moved last by a
 * rank-3 transpose and multiplied by the cached [n, 2n] interpolation matrix (a rank-2 matMul, XNNPACK on wasm).
 * With fast ops it is one custom-gradient op whose backward applies the adjoint the same way (the [2n, n] matrix);
 * tfjs's own matMul gradient uses transpose flags, which take the slow batched-matMul loop on wasm.
 */
export function upsampleTrilinear2x(x: tf.Tensor5D, ops?: Ops): tf.Tensor5D {
  const up = (shape: number[], axis: number) => [...shape.slice(0, axis), 2 * shape[axis], ...shape.slice(axis + 1)];
  const outShape = [1, 2, 3].reduce(up, [...x.shape]) as [number, number, number, number, number];
  const interp = (n: number, adjoint: boolean) =>
    cachedConstant(`upsample-align-corners:${n}:${adjoint ? "adj" : "fwd"}`, () => {
      const a = tf.tensor2d(upsampleMatrix(n), [2 * n, n]); // [2n, n]
      return adjoint ? a : (tf.transpose(a) as tf.Tensor2D); // forward multiplies rows by Aᵀ [n, 2n]
    });
  const forward = (t: tf.Tensor) => {
    let y = t,
      shape = [...x.shape];
    for (let axis = 1; axis <= 3; axis++) {
      y = alongAxis(y, shape, axis, interp(shape[axis], false));
      shape = up(shape, axis);
    }
    return tf.reshape(y, outShape) as tf.Tensor5D;
  };
  if (!ops || ops.name !== "fast") return forward(x);
  return customOp<tf.Tensor5D>([x], ([xi]) => ({
    value: forward(xi),
    gradFunc: (dy) =>
      tf.tidy(() => {
        let g: tf.Tensor = dy,
          shape = [...outShape];
        for (let axis = 1; axis <= 3; axis++) {
          const n = shape[axis] / 2;
          g = alongAxis(g, shape, axis, interp(n, true));
          shape[axis] = n;
        }
        return [tf.reshape(g, x.shape)];
      }),
  }));
}

/** t viewed as [P, n, Q] (n = shape[axis]) times m [n, n'] along the axis -> [P, n', Q] (flattened). */
function alongAxis(t: tf.Tensor, shape: number[], axis: number, m: tf.Tensor2D): tf.Tensor {
  const n = shape[axis],
    n2 = m.shape[1];
  const P = shape.slice(0, axis).reduce((p, v) => p * v, 1),
    Q = shape.slice(axis + 1).reduce((p, v) => p * v, 1);
  const moved =
    Q === 1 ? tf.reshape(t, [P, n]) : tf.reshape(tf.transpose(tf.reshape(t, [P, n, Q]), [0, 2, 1]), [P * Q, n]); // [(P, Q), n]
  const out = tf.matMul(moved, m); // [(P, Q), n']
  return Q === 1 ? out : tf.transpose(tf.reshape(out, [P, Q, n2]), [0, 2, 1]); // [P, n', Q]
}

/** Conv3³ (no bias) → InstanceNorm → ReLU. */
function convNormRelu(ctx: NetContext, x: tf.Tensor5D, name: string, stride = 1, inputGrad = true): tf.Tensor5D {
  return normAct(ctx, conv(ctx, x, name, cube(stride), cube(1), inputGrad), null, null, { slope: 0 });
}

/** TransUNet-3D (our adaptation; see the file header). */
export class TransUnet3d extends SpecModel<TransUnet3dConfig> {
  constructor(config: TransUnet3dConfig, opts: { seed?: number; name?: string } = {}) {
    super("transunet3d", opts.name ?? "transunet3d", config, transUnet3dParamSpecs(config).params, opts.seed ?? 0);
  }

  /** Logits [B, D, H, W, K] for x [B, D, H, W, Cin]. */
  forward(x: tf.Tensor5D, opts: SegmentationForwardOptions): tf.Tensor5D {
    this.checkInput(x);
    const c = this.config,
      ctx = this.context(opts.ops),
      B = x.shape[0],
      S = c.cnnChannels.length;
    const shape = vitShape(c);
    return tf.tidy(() => {
      const feats: tf.Tensor5D[] = []; // stem outputs at 1/2, 1/4, ..., 1/2^S
      let h = x;
      for (let s = 0; s < S; s++) {
        h = convNormRelu(ctx, h, `stem.stages.${s}.conv1.conv`, 2, s > 0);
        h = convNormRelu(ctx, h, `stem.stages.${s}.conv2.conv`);
        feats.push(h);
      }
      const vit = vitEncode(ctx, h, "transformer", shape, c.numHeads);
      let d = convNormRelu(ctx, tokensToVolume(vit.last, B, shape.grid), "decoder.conv_more.conv"); // [B, grid, head]
      for (let i = 0; i < S; i++) {
        d = upsampleTrilinear2x(d, ctx.ops);
        if (S - 2 - i >= 0) d = concatChannels(d, feats[S - 2 - i], ctx.ops);
        d = convNormRelu(ctx, d, `decoder.blocks.${i}.conv1.conv`);
        d = convNormRelu(ctx, d, `decoder.blocks.${i}.conv2.conv`);
      }
      return conv(ctx, d, "segmentation_head.conv", cube(1), cube(1)); // 3×3×3 head, padding 1
    });
  }
}
