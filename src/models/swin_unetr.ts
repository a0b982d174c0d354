// Swin UNETR: Hatamizadeh et al., "Swin UNETR: Swin Transformers for Semantic Segmentation of Brain Tumors in MRI
// Images", BrainLes 2021 (arXiv 2201.01266); as MONAI's monai/networks/nets/swin_unetr.py (1.5.0) with use_v2 False,
// normalize True, downsample "merging", patch_norm False, qkv_bias True, dropout 0; parameters named, counted and
// initialised as there (PyTorch defaults, trunc-normal 0.02 relative-position tables).
// Differs from the reference (no numeric effect): channels-last tensors, tokens kept as [B·D·H·W, C] matrices, pad +
// roll + window partition done as one row gather (src/layers/window_attention3d.ts), the patch-embedding conv as a
// linear layer on flattened patches, PatchMerging as one row gather.
// Faithful on purpose: MONAI's per-axis window rule (an axis whose grid is ≤ the window gets window = grid and shift
// 0), the −100 shift mask over the padded grid, and the relative-position index of the CONFIGURED window cut to
// [:n, :n] when the window shrinks (so a shrunken window reads the big table's first rows, as MONAI does).
import * as tf from "@tensorflow/tfjs";

import { SpecList } from "../layers/param_specs";
import {
  outBlock,
  outBlockSpec,
  unetrBasicBlock,
  unetrBasicBlockSpec,
  unetrUpBlock,
  unetrUpBlockSpec,
  type NetContext,
} from "../layers/conv_blocks3d";
import { patchify, tokensToVolume } from "../layers/vit3d";
import { rpbTableRows, shiftMask, windowTokens, type WindowGeometry } from "../layers/window_attention3d";
import { BlockContext, LN_EPS, WindowIndexCache, transformerBlock } from "../layers/nnformer_blocks";
import { SpecModel, checkCommon, configError } from "./spec_model";
import type { SegmentationForwardOptions } from "./types";
import type { Vec3 } from "../runtime/math";

export interface SwinUnetrConfig {
  inChannels: number;
  numClasses: number;
  /** Training crop [D, H, W]; each side a multiple of patchSize·16 (MONAI checks 2⁵ = 32 for patch 2). */
  cropSize: Vec3;
  /** Patch-embedding kernel = stride (2). */
  patchSize: number;
  /** Window per axis (7 in the paper). */
  windowSize: Vec3;
  /** Swin blocks per stage (2, 2, 2, 2). */
  depths: number[];
  /** Heads per stage (3, 6, 12, 24). */
  numHeads: number[];
  /** Embedding width; stage i has featureSize·2^i channels (48; MONAI requires a multiple of 12). */
  featureSize: number;
  /** MLP hidden = floor(C·mlpRatio) (4). */
  mlpRatio: number;
  /** Bias on the qkv Linear (MONAI default true). */
  qkvBias: boolean;
  /** LayerNorm (no affine) on every hidden state before the decoder (MONAI normalize=True). */
  normalize: boolean;
  /** Stochastic depth, linearly 0..rate over all blocks (MONAI dropout_path_rate, default 0). */
  dropPathRate: number;
}

/** MONAI SwinUNETR(in_channels=1, out_channels=14, feature_size=48) on 96³ crops: 62,187,296 parameters. */
export const SWIN_UNETR_F48: SwinUnetrConfig = {
  inChannels: 1,
  numClasses: 14,
  cropSize: [96, 96, 96],
  patchSize: 2,
  windowSize: [7, 7, 7],
  depths: [2, 2, 2, 2],
  numHeads: [3, 6, 12, 24],
  featureSize: 48,
  mlpRatio: 4,
  qkvBias: true,
  normalize: true,
  dropPathRate: 0,
};

/** CPU preset for the 64³ phantoms: feature 12, window 4 (stage grids 32³/16³/8³/4³). */
export const SWIN_UNETR_F12: SwinUnetrConfig = {
  ...SWIN_UNETR_F48,
  numClasses: 9,
  cropSize: [64, 64, 64],
  windowSize: [4, 4, 4],
  featureSize: 12,
};

/**
 * Unit-test preset: crop 32×32×64, window 3. Stage 0 pads 16×16×32 → 18×18×33 and shifts with a mask; the last stage
 * (grid 2×2×4) shrinks the window to 2×2×3 per axis, shifts only along W, and reads the cut 3³ relative-position
 * index. (A 32³ crop would leave a 1³ grid before encoder10, whose InstanceNorm then zeroes everything.)
 */
export const SWIN_UNETR_MICRO: SwinUnetrConfig = {
  ...SWIN_UNETR_F12,
  numClasses: 3,
  cropSize: [32, 32, 64],
  windowSize: [3, 3, 3],
};

/** Throws, naming the field, its value and the fix, when the config cannot build a Swin UNETR. */
export function checkSwinUnetrConfig(c: SwinUnetrConfig): void {
  const bad = configError("SwinUNETR");
  checkCommon(bad, c);
  if (c.patchSize !== 2)
    bad(
      "patchSize",
      c.patchSize,
      "use 2: the decoder's last stage up-samples the patch grid 2× to full resolution (as in MONAI)",
    );
  if (!Number.isInteger(c.featureSize) || c.featureSize < 12 || c.featureSize % 12)
    bad("featureSize", c.featureSize, "use a positive multiple of 12 (MONAI's rule; 48 in the paper)");
  const m = c.patchSize * 16;
  c.cropSize.forEach((n, a) => {
    if (n % m)
      bad(
        "cropSize",
        c.cropSize,
        `each side must be a multiple of patchSize·16 = ${m} (four 2× merges after the patch embedding; axis ${a})`,
      );
  });
  if (
    !Array.isArray(c.windowSize) ||
    c.windowSize.length !== 3 ||
    !c.windowSize.every((w) => Number.isInteger(w) && w >= 1)
  ) {
    bad("windowSize", c.windowSize, "give three positive integers");
  }
  for (const f of ["depths", "numHeads"] as const) {
    if (!Array.isArray(c[f]) || c[f].length !== 4) bad(f, c[f], "give 4 entries, one per Swin stage");
    c[f].forEach((v, i) => {
      if (!Number.isInteger(v) || v < 1) bad(`${f}[${i}]`, v, "use a positive integer");
    });
  }
  c.numHeads.forEach((h, i) => {
    const C = c.featureSize * 2 ** i;
    if (C % h) bad(`numHeads[${i}]`, h, `stage ${i} has ${C} channels; use a head count that divides it`);
  });
  if (!(c.mlpRatio > 0)) bad("mlpRatio", c.mlpRatio, "use a positive ratio (4)");
  if (!(c.dropPathRate >= 0 && c.dropPathRate < 1)) bad("dropPathRate", c.dropPathRate, "use a rate in [0, 1)");
  if (typeof c.qkvBias !== "boolean") bad("qkvBias", c.qkvBias, "use true or false");
  if (typeof c.normalize !== "boolean") bad("normalize", c.normalize, "use true or false");
}

/** Token grid of Swin stage i (0..3) and of the merged output after stage 3 (i = 4). */
export function swinStageGrid(c: SwinUnetrConfig, i: number): Vec3 {
  return c.cropSize.map((n) => n / c.patchSize / 2 ** i) as Vec3;
}

/** MONAI get_window_size + BasicLayer: per axis, a grid ≤ window takes window = grid and no shift. */
export function swinGeometry(grid: Vec3, window: Vec3, shifted: boolean): WindowGeometry {
  const w = window.map((v, a) => (grid[a] <= v ? grid[a] : v)) as Vec3;
  const shift = window.map((v, a) => (shifted && grid[a] > v ? Math.floor(v / 2) : 0)) as Vec3;
  const padded = grid.map((g, a) => Math.ceil(g / w[a]) * w[a]) as Vec3;
  const rolled = shift.some((s) => s > 0); // MONAI rolls (and masks) when any axis shifts
  const numWindows = (padded[0] / w[0]) * (padded[1] / w[1]) * (padded[2] / w[2]);
  return { grid, window: w, shift, padded, numWindows, tokens: windowTokens(w), rolled, masked: rolled };
}

/**
 * MONAI's relative_position_index for the configured window w (standard 3D Swin:
 * idx = (Δd + w0−1)(2w1−1)(2w2−1) + (Δh + w1−1)(2w2−1) + (Δw + w2−1)), cut to the first n rows and columns.
 */
export function swinRelativePositionIndex(w: Vec3, n = windowTokens(w)): Int32Array {
  const N = windowTokens(w);
  const coords: Vec3[] = [];
  for (let a = 0; a < w[0]; a++) for (let b = 0; b < w[1]; b++) for (let c = 0; c < w[2]; c++) coords.push([a, b, c]);
  const out = new Int32Array(n * n);
  const m0 = (2 * w[1] - 1) * (2 * w[2] - 1),
    m1 = 2 * w[2] - 1;
  for (let i = 0; i < Math.min(n, N); i++)
    for (let j = 0; j < Math.min(n, N); j++) {
      const [di, hi, wi] = coords[i],
        [dj, hj, wj] = coords[j];
      out[i * n + j] = (di - dj + w[0] - 1) * m0 + (hi - hj + w[1] - 1) * m1 + (wi - wj + w[2] - 1);
    }
  return out;
}

/** All parameters with MONAI state_dict names. Does not allocate. */
export function swinUnetrParamSpecs(c: SwinUnetrConfig): SpecList {
  checkSwinUnetrConfig(c);
  const L = new SpecList();
  const f = c.featureSize,
    p = c.patchSize;
  L.group = "swinViT.patch_embed";
  L.conv("swinViT.patch_embed.proj", c.inChannels, f, [p, p, p], { bias: true });
  const T = rpbTableRows(c.windowSize); // the table is sized for the configured window even where it shrinks
  for (let i = 0; i < 4; i++) {
    const C = f * 2 ** i,
      layer = `swinViT.layers${i + 1}.0`;
    L.group = `swinViT.layers${i + 1}`;
    for (let j = 0; j < c.depths[i]; j++) {
      const b = `${layer}.blocks.${j}`;
      L.norm(`${b}.norm1`, C);
      L.tensor(`${b}.attn.relative_position_bias_table`, [T, c.numHeads[i]], [T, c.numHeads[i]], "rpb", "trunc_normal");
      L.linear(`${b}.attn.qkv`, C, 3 * C, c.qkvBias);
      L.linear(`${b}.attn.proj`, C, C);
      L.norm(`${b}.norm2`, C);
      const hidden = Math.floor(C * c.mlpRatio);
      L.linear(`${b}.mlp.linear1`, C, hidden);
      L.linear(`${b}.mlp.linear2`, hidden, C);
    }
    L.linear(`${layer}.downsample.reduction`, 8 * C, 2 * C, false);
    L.norm(`${layer}.downsample.norm`, 8 * C);
  }
  L.group = "encoders";
  unetrBasicBlockSpec(L, "encoder1", c.inChannels, f);
  unetrBasicBlockSpec(L, "encoder2", f, f);
  unetrBasicBlockSpec(L, "encoder3", 2 * f, 2 * f);
  unetrBasicBlockSpec(L, "encoder4", 4 * f, 4 * f);
  unetrBasicBlockSpec(L, "encoder10", 16 * f, 16 * f);
  L.group = "decoders";
  unetrUpBlockSpec(L, "decoder5", 16 * f, 8 * f);
  unetrUpBlockSpec(L, "decoder4", 8 * f, 4 * f);
  unetrUpBlockSpec(L, "decoder3", 4 * f, 2 * f);
  unetrUpBlockSpec(L, "decoder2", 2 * f, f);
  unetrUpBlockSpec(L, "decoder1", f, f);
  L.group = "out";
  outBlockSpec(L, "out", f, c.numClasses);
  return L;
}

/** PatchMerging (v0.9.0 order): the 8 voxels of each 2×2×2 cell, slots (d,h,w) offsets in MONAI's x0..x7 order. */
const MERGE_OFFSETS: Vec3[] = [
  [0, 0, 0],
  [1, 0, 0],
  [0, 1, 0],
  [0, 0, 1],
  [1, 1, 0],
  [1, 0, 1],
  [0, 1, 1],
  [1, 1, 1],
];

/** Source row of every (output token, slot) of PatchMerging on a token matrix [B·D·H·W, C]: [B·L/8·8]. */
export function patchMergeRows(grid: Vec3, batch: number): Int32Array {
  const [D, H, W] = grid,
    L = D * H * W;
  const out = new Int32Array(batch * L);
  let o = 0;
  for (let b = 0; b < batch; b++)
    for (let d = 0; d < D / 2; d++)
      for (let h = 0; h < H / 2; h++)
        for (let w = 0; w < W / 2; w++)
          for (const [od, oh, ow] of MERGE_OFFSETS)
            out[o++] = b * L + ((2 * d + od) * H + (2 * h + oh)) * W + (2 * w + ow);
  return out;
}

/** Swin UNETR with weights as tf.Variables under MONAI's names. */
export class SwinUnetr extends SpecModel<SwinUnetrConfig> {
  private readonly windowIndices = new WindowIndexCache();
  private readonly consts = new Map<string, tf.Tensor>();
  /** Geometry per stage for unshifted / shifted blocks. */
  readonly geometry: Array<{ plain: WindowGeometry; shifted: WindowGeometry }>;

  constructor(config: SwinUnetrConfig, opts: { seed?: number; name?: string } = {}) {
    super("swin_unetr", opts.name ?? "swin-unetr", config, swinUnetrParamSpecs(config).params, opts.seed ?? 0);
    const c = this.config;
    this.geometry = [0, 1, 2, 3].map((i) => {
      const grid = swinStageGrid(c, i);
      return { plain: swinGeometry(grid, c.windowSize, false), shifted: swinGeometry(grid, c.windowSize, true) };
    });
    for (const { plain, shifted } of this.geometry) {
      for (const g of [plain, shifted]) {
        const key = `${g.window}`;
        if (!this.consts.has(`rpb:${key}`))
          this.consts.set(`rpb:${key}`, tf.tensor1d(swinRelativePositionIndex(c.windowSize, g.tokens), "int32"));
        if (g.masked) this.consts.set(`mask:${g.grid}`, tf.tensor3d(shiftMask(g), [g.numWindows, g.tokens, g.tokens]));
      }
    }
  }

  dispose(): void {
    super.dispose();
    tf.dispose([...this.consts.values()]);
    this.consts.clear();
  }

  /** LayerNorm without affine (F.layer_norm in proj_out) on tokens [T, C]. */
  private projOut(ctx: NetContext, t: tf.Tensor2D): tf.Tensor2D {
    if (!this.config.normalize) return t;
    const C = t.shape[1];
    return ctx.ops.layerNorm(t, tf.ones([C]) as tf.Tensor1D, tf.zeros([C]) as tf.Tensor1D, LN_EPS);
  }

  private patchMerging(ctx: NetContext, t: tf.Tensor2D, grid: Vec3, batch: number, name: string): tf.Tensor2D {
    // The index outlives the forward's tidy: the gather's gradient reads it during back-propagation.
    const key = `merge:${grid}|${batch}`;
    if (!this.consts.has(key)) this.consts.set(key, tf.keep(tf.tensor1d(patchMergeRows(grid, batch), "int32")));
    const C = t.shape[1];
    const rows = ctx.ops.gatherRows(t, this.consts.get(key) as tf.Tensor1D); // [B·L'·8, C]
    const cat = tf.reshape(rows, [-1, 8 * C]) as tf.Tensor2D; // [B·L', (slot, C)] = torch.cat(x0..x7, -1)
    const n = ctx.ops.layerNorm(
      cat,
      ctx.p(`${name}.norm.weight`) as tf.Tensor1D,
      ctx.p(`${name}.norm.bias`) as tf.Tensor1D,
      LN_EPS,
    );
    return ctx.ops.linear(n, ctx.p(`${name}.reduction.weight`) as tf.Tensor2D, null); // [B·L', 2C]
  }

  /** SwinTransformer.forward: the five hidden states [B·L_i, C_i] (patch embedding, then after each stage's merge). */
  encode(ctx: NetContext, x: tf.Tensor5D, opts: SegmentationForwardOptions): tf.Tensor2D[] {
    const c = this.config,
      B = x.shape[0],
      p = c.patchSize;
    const bctx: BlockContext = {
      ops: ctx.ops,
      batch: B,
      training: opts.training ?? false,
      rng: opts.rng,
      indices: (g, b) => this.windowIndices.get(g, b),
    };
    if (bctx.training && c.dropPathRate > 0 && !opts.rng) {
      throw new Error(
        `SwinUNETR.forward(training: true) needs opts.rng for drop path (dropPathRate ${c.dropPathRate}); pass makeRng(seed)`,
      );
    }
    // nnformer_blocks reads the MLP as mlp.fc1/fc2 (timm names); MONAI calls them mlp.linear1/linear2
    const getter = (name: string) =>
      ctx.p(name.replace(".mlp.fc1.", ".mlp.linear1.").replace(".mlp.fc2.", ".mlp.linear2."));
    const pw = ctx.p("swinViT.patch_embed.proj.weight") as tf.Tensor5D; // [p, p, p, Cin, f]
    let t = ctx.ops.linear(
      patchify(x, [p, p, p]),
      tf.reshape(pw, [p * p * p * c.inChannels, c.featureSize]),
      ctx.p("swinViT.patch_embed.proj.bias") as tf.Tensor1D,
    );
    const hidden = [this.projOut(ctx, t)];
    const total = c.depths.reduce((a, b) => a + b, 0);
    let k = 0;
    for (let i = 0; i < 4; i++) {
      const { plain, shifted } = this.geometry[i],
        layer = `swinViT.layers${i + 1}.0`;
      for (let j = 0; j < c.depths[i]; j++, k++) {
        const g = j % 2 === 1 ? shifted : plain;
        const rate = total > 1 ? (c.dropPathRate * k) / (total - 1) : 0;
        const extras = {
          rpbIndex: this.consts.get(`rpb:${g.window}`) as tf.Tensor1D,
          shiftMask: g.masked ? (this.consts.get(`mask:${g.grid}`) as tf.Tensor3D) : null,
        };
        const prefix = `${layer}.blocks.${j}`;
        t = transformerBlock(bctx, t, { p: getter, prefix, g, heads: c.numHeads[i], dropRate: rate, extras });
      }
      t = this.patchMerging(ctx, t, plain.grid, B, `${layer}.downsample`);
      hidden.push(this.projOut(ctx, t));
    }
    return hidden;
  }

  /** Logits [B, D, H, W, K] for x [B, D, H, W, Cin]. */
  forward(x: tf.Tensor5D, opts: SegmentationForwardOptions): tf.Tensor5D {
    this.checkInput(x);
    const ctx = this.context(opts.ops),
      B = x.shape[0],
      c = this.config;
    return tf.tidy(() => {
      const h = this.encode(ctx, x, opts);
      const vol = (i: number) => tokensToVolume(h[i], B, swinStageGrid(c, i)); // hidden state i at grid crop/(p·2^i)
      const enc0 = unetrBasicBlock(ctx, x, "encoder1", false); // 1, f
      const enc1 = unetrBasicBlock(ctx, vol(0), "encoder2"); // 1/p, f
      const enc2 = unetrBasicBlock(ctx, vol(1), "encoder3"); // 1/2p, 2f
      const enc3 = unetrBasicBlock(ctx, vol(2), "encoder4"); // 1/4p, 4f
      const dec4 = unetrBasicBlock(ctx, vol(4), "encoder10"); // 1/16p, 16f
      const dec3 = unetrUpBlock(ctx, dec4, vol(3), "decoder5"); // 1/8p, 8f
      const dec2 = unetrUpBlock(ctx, dec3, enc3, "decoder4");
      const dec1 = unetrUpBlock(ctx, dec2, enc2, "decoder3");
      const dec0 = unetrUpBlock(ctx, dec1, enc1, "decoder2");
      const out = unetrUpBlock(ctx, dec0, enc0, "decoder1"); // needs patchSize 2: one 2× up-sampling from 1/p
      return outBlock(ctx, out, "out");
    });
  }
}
