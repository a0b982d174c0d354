// A plain 3D U-Net in the nnU-Net style: Isensee et al., "nnU-Net: a self-configuring method for deep
// learning-based biomedical image segmentation", Nature Methods 2021. Structure of nnU-Net v2's PlainConvUNet
// (dynamic_network_architectures): per stage (conv3³ → InstanceNorm(affine) → LeakyReLU(0.01)) × 2, the first conv
// strided for down-sampling; decoder ConvTranspose (kernel = stride) → concat skip → the same two convs; 1×1×1 heads
// at every decoder stage under deep supervision. Weights drawn as nnU-Net's InitWeights_He(1e-2) (He normal, zero
// biases); parameters named as its state_dict.
// Differs from nnU-Net: every conv is 3×3×3 (nnU-Net plans may use 1×3×3 on anisotropic axes); no plan search —
// features, strides and crop are the config; without deep supervision we build only the full-resolution head (nnU-Net
// builds the unused ones too, numClasses·(f+1) parameters each).
// Conv biases directly followed by InstanceNorm get no gradient (the norm subtracts their constant); nnU-Net keeps
// them and so do we (ParamSpec.zeroGrad marks them).
import * as tf from "@tensorflow/tfjs";

import { SpecList } from "../layers/param_specs";
import { LEAKY, concatChannels, conv, convT, normAct, type NetContext } from "../layers/conv_blocks3d";
import { SpecModel, checkCommon, configError } from "./spec_model";
import type { SegmentationForwardOptions } from "./types";
import type { Vec3 } from "../runtime/math";
import { cube } from "../runtime/math";

export interface Unet3dConfig {
  inChannels: number;
  numClasses: number;
  /** Training crop [D, H, W]; each side divisible by the product of the strides on that axis. */
  cropSize: Vec3;
  /** Channels per stage, shallow → deep (nnU-Net 32, 64, 128, 256, 320, 320). */
  features: number[];
  /** Down-sampling stride of each stage's first conv; strides[0] must be [1, 1, 1]. */
  strides: Vec3[];
  /** Conv-norm-act units per stage (2). */
  convsPerStage: number;
  /** Return logits at every decoder stage, full resolution first (nnU-Net trains with it). */
  deepSupervision: boolean;
}

/** nnU-Net-sized network (6 stages to 320 channels) on nnFormer's Synapse crop 64×128×128. */
export const UNET3D_NNUNET: Unet3dConfig = {
  inChannels: 1,
  numClasses: 14,
  cropSize: [64, 128, 128],
  features: [32, 64, 128, 256, 320, 320],
  strides: [cube(1), cube(2), cube(2), cube(2), cube(2), [1, 2, 2]],
  convsPerStage: 2,
  deepSupervision: true,
};

/** CPU preset for the 64³ phantoms: 4 stages of 8, 16, 32, 64 channels (bottleneck 8³). */
export const UNET3D_CPU: Unet3dConfig = {
  inChannels: 1,
  numClasses: 9,
  cropSize: [64, 64, 64],
  features: [8, 16, 32, 64],
  strides: [cube(1), cube(2), cube(2), cube(2)],
  convsPerStage: 2,
  deepSupervision: true,
};

/** Unit-test preset: 16³ crop, 3 stages of 4, 8, 16 channels. */
export const UNET3D_MICRO: Unet3dConfig = {
  ...UNET3D_CPU,
  numClasses: 3,
  cropSize: [16, 16, 16],
  features: [4, 8, 16],
  strides: [cube(1), cube(2), cube(2)],
};

/** Throws, naming the field, its value and the fix, when the config cannot build the U-Net. */
export function checkUnet3dConfig(c: Unet3dConfig): void {
  const bad = configError("UNet3D");
  checkCommon(bad, c);
  if (!Array.isArray(c.features) || c.features.length < 2)
    bad("features", c.features, "give at least 2 stages, shallow → deep");
  c.features.forEach((f, i) => {
    if (!Number.isInteger(f) || f < 1) bad(`features[${i}]`, f, "use a positive integer");
  });
  if (!Array.isArray(c.strides) || c.strides.length !== c.features.length)
    bad("strides", c.strides, `give one stride per stage (${c.features.length})`);
  c.strides.forEach((s, i) => {
    if (!Array.isArray(s) || s.length !== 3 || !s.every((v) => Number.isInteger(v) && v >= 1))
      bad(`strides[${i}]`, s, "give three positive integers");
  });
  if (c.strides[0].some((v) => v !== 1))
    bad("strides[0]", c.strides[0], "use [1, 1, 1]: the first stage works at full resolution");
  for (let a = 0; a < 3; a++) {
    const total = c.strides.reduce((n, s) => n * s[a], 1);
    if (c.cropSize[a] % total)
      bad("cropSize", c.cropSize, `axis ${a} must be a multiple of the product of the strides (${total})`);
  }
  if (!Number.isInteger(c.convsPerStage) || c.convsPerStage < 1)
    bad("convsPerStage", c.convsPerStage, "use a positive integer (2)");
  if (typeof c.deepSupervision !== "boolean") bad("deepSupervision", c.deepSupervision, "use true or false");
}

/** Conv → InstanceNorm(affine) → LeakyReLU units as nnU-Net's StackedConvBlocks under `name.convs.j`. */
function stackSpec(L: SpecList, name: string, cin: number, cout: number, n: number): void {
  for (let j = 0; j < n; j++) {
    L.conv(`${name}.convs.${j}.conv`, j === 0 ? cin : cout, cout, cube(3), {
      bias: true,
      init: "he_normal",
      zeroGradBias: true,
    });
    L.norm(`${name}.convs.${j}.norm`, cout);
  }
}

function stack(ctx: NetContext, x: tf.Tensor5D, name: string, n: number, stride: Vec3, inputGrad = true): tf.Tensor5D {
  let h = x;
  for (let j = 0; j < n; j++) {
    const u = `${name}.convs.${j}`;
    h = conv(ctx, h, `${u}.conv`, j === 0 ? stride : cube(1), cube(1), inputGrad || j > 0);
    h = normAct(ctx, h, ctx.p(`${u}.norm.weight`) as tf.Tensor1D, ctx.p(`${u}.norm.bias`) as tf.Tensor1D, LEAKY);
  }
  return h;
}

/** All parameters with nnU-Net state_dict names. Does not allocate. */
export function unet3dParamSpecs(c: Unet3dConfig): SpecList {
  checkUnet3dConfig(c);
  const L = new SpecList();
  const F = c.features,
    S = F.length;
  L.group = "encoder";
  F.forEach((f, s) => stackSpec(L, `encoder.stages.${s}.0`, s === 0 ? c.inChannels : F[s - 1], f, c.convsPerStage));
  L.group = "decoder";
  for (let i = 0; i < S - 1; i++) {
    const s = S - 2 - i; // decoder stage i works at encoder level s
    L.convT(`decoder.transpconvs.${i}`, F[s + 1], F[s], c.strides[s + 1], { bias: true, init: "he_normal" });
    stackSpec(L, `decoder.stages.${i}`, 2 * F[s], F[s], c.convsPerStage);
  }
  L.group = "heads";
  for (let i = 0; i < S - 1; i++) {
    if (c.deepSupervision || i === S - 2)
      L.conv(`decoder.seg_layers.${i}`, F[S - 2 - i], c.numClasses, cube(1), { bias: true, init: "he_normal" });
  }
  return L;
}

/** nnU-Net-style plain conv U-Net. */
export class Unet3d extends SpecModel<Unet3dConfig> {
  constructor(config: Unet3dConfig, opts: { seed?: number; name?: string } = {}) {
    super("unet3d", opts.name ?? "unet3d", config, unet3dParamSpecs(config).params, opts.seed ?? 0);
  }

  /** Logits [B, D, H, W, K]; with deep supervision the logits of every decoder stage, full resolution first. */
  forward(x: tf.Tensor5D, opts: SegmentationForwardOptions): tf.Tensor5D | tf.Tensor5D[] {
    this.checkInput(x);
    const c = this.config,
      ctx = this.context(opts.ops),
      S = c.features.length,
      n = c.convsPerStage;
    return tf.tidy(() => {
      const skips: tf.Tensor5D[] = [];
      let h = x;
      for (let s = 0; s < S; s++) {
        h = stack(ctx, h, `encoder.stages.${s}.0`, n, c.strides[s], s > 0);
        skips.push(h);
      }
      const outs: tf.Tensor5D[] = [];
      for (let i = 0; i < S - 1; i++) {
        const s = S - 2 - i;
        const up = convT(ctx, h, `decoder.transpconvs.${i}`); // [B, ·, ·, ·, F[s]] at level s
        h = stack(ctx, concatChannels(up, skips[s], ctx.ops), `decoder.stages.${i}`, n, cube(1));
        if (c.deepSupervision || s === 0) outs.push(conv(ctx, h, `decoder.seg_layers.${i}`, cube(1), cube(0)));
      }
      return c.deepSupervision ? outs.reverse() : outs[0]; // full resolution first
    });
  }
}
