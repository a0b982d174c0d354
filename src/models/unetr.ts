// UNETR: Hatamizadeh et al., "UNETR: Transformers for 3D Medical Image Segmentation", WACV 2022 (arXiv 2103.10504).
// Reference: MONAI's monai/networks/nets/unetr.py (1.5.0) with its defaults proj_type "conv", norm_name "instance",
// conv_block True, res_block True, qkv_bias False, dropout 0; we count, name and initialise parameters as it does.
// Differs from the reference (no numeric effect): channels-last tensors; the patch-embedding conv runs as a linear
// layer on flattened patches; MONAI ≥ 1.4's unused per-block cross-attention modules are not built (see vit3d.ts).
// Configurable where MONAI hard-codes: numLayers (12) and which block outputs feed the skips (3, 6, 9), so a CPU
// preset can use 4 layers.
// Like MONAI, the skips take hidden_states_out[3], [6], [9] (outputs of blocks 4, 7, 10; the paper says z3, z6, z9)
// and the bottleneck is the LayerNorm'd output of the last block.
import * as tf from "@tensorflow/tfjs";

import { SpecList } from "../layers/param_specs";
import {
  outBlock,
  outBlockSpec,
  unetrBasicBlock,
  unetrBasicBlockSpec,
  unetrPrUpBlock,
  unetrPrUpBlockSpec,
  unetrUpBlock,
  unetrUpBlockSpec,
} from "../layers/conv_blocks3d";
import { tokensToVolume, vitEncode, vitSpec, type VitShape } from "../layers/vit3d";
import { SpecModel, checkCommon, configError } from "./spec_model";
import type { SegmentationForwardOptions } from "./types";
import type { Vec3 } from "../runtime/math";

export interface UnetrConfig {
  inChannels: number;
  numClasses: number;
  /** Training crop [D, H, W]; each side a multiple of patchSize. */
  cropSize: Vec3;
  /** ViT patch (16 in the paper and fixed in MONAI: the decoder up-samples the token grid 4 times by 2). */
  patchSize: number;
  /** Token width E (768). */
  hiddenSize: number;
  /** MLP hidden width (3072). */
  mlpDim: number;
  /** Transformer blocks (12). */
  numLayers: number;
  /** Attention heads (12); must divide hiddenSize. */
  numHeads: number;
  /** Decoder width at full resolution (16); the skips use 2×, 4×, 8×. */
  featureSize: number;
  /** 0-based blocks whose outputs feed encoder2, encoder3, encoder4 (MONAI 3, 6, 9). */
  skipBlocks: [number, number, number];
  /** Bias on the qkv Linear (MONAI default false). */
  qkvBias: boolean;
}

/** The paper's BTCV network (MONAI UNETR(1, 14, 96, feature_size=16)): 92,784,046 parameters. */
export const UNETR_BTCV: UnetrConfig = {
  inChannels: 1,
  numClasses: 14,
  cropSize: [96, 96, 96],
  patchSize: 16,
  hiddenSize: 768,
  mlpDim: 3072,
  numLayers: 12,
  numHeads: 12,
  featureSize: 16,
  skipBlocks: [3, 6, 9],
  qkvBias: false,
};

/** CPU preset for the 64³ phantoms: 4 blocks of width 192, decoder width 8 (4³ token grid). */
export const UNETR_CPU: UnetrConfig = {
  ...UNETR_BTCV,
  numClasses: 9,
  cropSize: [64, 64, 64],
  hiddenSize: 192,
  mlpDim: 768,
  numLayers: 4,
  numHeads: 6,
  featureSize: 8,
  skipBlocks: [0, 1, 2],
};

/** Unit-test preset: 32³ crop (2³ tokens), width 24, 3 blocks. */
export const UNETR_MICRO: UnetrConfig = {
  ...UNETR_CPU,
  numClasses: 3,
  cropSize: [32, 32, 32],
  hiddenSize: 24,
  mlpDim: 48,
  numLayers: 3,
  numHeads: 2,
  featureSize: 4,
};

/** Throws, naming the field, its value and the fix, when the config cannot build a UNETR. */
export function checkUnetrConfig(c: UnetrConfig): void {
  const bad = configError("UNETR");
  checkCommon(bad, c);
  for (const f of ["hiddenSize", "mlpDim", "numLayers", "numHeads", "featureSize"] as const) {
    if (!Number.isInteger(c[f]) || c[f] < 1) bad(f, c[f], "use a positive integer");
  }
  if (c.patchSize !== 16)
    bad(
      "patchSize",
      c.patchSize,
      "use 16: the UNETR decoder up-samples the token grid four times by 2 to full resolution",
    );
  c.cropSize.forEach((n, a) => {
    if (n % c.patchSize)
      bad("cropSize", c.cropSize, `each side must be a multiple of patchSize ${c.patchSize} (axis ${a})`);
  });
  if (c.hiddenSize % c.numHeads) bad("numHeads", c.numHeads, `must divide hiddenSize ${c.hiddenSize}`);
  if (!Array.isArray(c.skipBlocks) || c.skipBlocks.length !== 3)
    bad("skipBlocks", c.skipBlocks, "give three 0-based block indices");
  c.skipBlocks.forEach((b, i) => {
    if (!Number.isInteger(b) || b < 0 || b >= c.numLayers)
      bad("skipBlocks", c.skipBlocks, `entry ${i} must be a block index in [0, numLayers ${c.numLayers})`);
    if (i > 0 && b <= c.skipBlocks[i - 1]) bad("skipBlocks", c.skipBlocks, "use increasing indices (shallow → deep)");
  });
  if (typeof c.qkvBias !== "boolean") bad("qkvBias", c.qkvBias, "use true or false");
}

function vitShape(c: UnetrConfig): VitShape {
  const p = c.patchSize;
  return {
    inChannels: c.inChannels,
    patch: [p, p, p],
    grid: c.cropSize.map((n) => n / p) as Vec3,
    hidden: c.hiddenSize,
    mlpDim: c.mlpDim,
    numLayers: c.numLayers,
    qkvBias: c.qkvBias,
  };
}

/** All parameters with MONAI state_dict names, in module order. Does not allocate. */
export function unetrParamSpecs(c: UnetrConfig): SpecList {
  checkUnetrConfig(c);
  const L = new SpecList();
  const f = c.featureSize,
    E = c.hiddenSize;
  vitSpec(L, "vit", vitShape(c));
  L.group = "encoders";
  unetrBasicBlockSpec(L, "encoder1", c.inChannels, f);
  unetrPrUpBlockSpec(L, "encoder2", E, 2 * f, 2);
  unetrPrUpBlockSpec(L, "encoder3", E, 4 * f, 1);
  unetrPrUpBlockSpec(L, "encoder4", E, 8 * f, 0);
  L.group = "decoders";
  unetrUpBlockSpec(L, "decoder5", E, 8 * f);
  unetrUpBlockSpec(L, "decoder4", 8 * f, 4 * f);
  unetrUpBlockSpec(L, "decoder3", 4 * f, 2 * f);
  unetrUpBlockSpec(L, "decoder2", 2 * f, f);
  L.group = "out";
  outBlockSpec(L, "out", f, c.numClasses);
  return L;
}

/** UNETR with weights as tf.Variables under MONAI's names. */
export class Unetr extends SpecModel<UnetrConfig> {
  constructor(config: UnetrConfig, opts: { seed?: number; name?: string } = {}) {
    super("unetr", opts.name ?? "unetr", config, unetrParamSpecs(config).params, opts.seed ?? 0);
  }

  /** Logits [B, D, H, W, K] for x [B, D, H, W, Cin]. */
  forward(x: tf.Tensor5D, opts: SegmentationForwardOptions): tf.Tensor5D {
    this.checkInput(x);
    const c = this.config,
      ctx = this.context(opts.ops),
      B = x.shape[0];
    const shape = vitShape(c);
    return tf.tidy(() => {
      const vit = vitEncode(ctx, x, "vit", shape, c.numHeads);
      const vol = (t: tf.Tensor2D) => tokensToVolume(t, B, shape.grid); // [B, gD, gH, gW, E]
      const enc1 = unetrBasicBlock(ctx, x, "encoder1", false); // full resolution, f
      const enc2 = unetrPrUpBlock(ctx, vol(vit.hidden[c.skipBlocks[0]]), "encoder2"); // ½, 2f
      const enc3 = unetrPrUpBlock(ctx, vol(vit.hidden[c.skipBlocks[1]]), "encoder3"); // ¼, 4f
      const enc4 = unetrPrUpBlock(ctx, vol(vit.hidden[c.skipBlocks[2]]), "encoder4"); // ⅛, 8f
      const dec3 = unetrUpBlock(ctx, vol(vit.last), enc4, "decoder5"); // ⅛, 8f
      const dec2 = unetrUpBlock(ctx, dec3, enc3, "decoder4"); // ¼, 4f
      const dec1 = unetrUpBlock(ctx, dec2, enc2, "decoder3"); // ½, 2f
      const out = unetrUpBlock(ctx, dec1, enc1, "decoder2"); // 1, f
      return outBlock(ctx, out, "out"); // [B, D, H, W, K]
    });
  }
}
