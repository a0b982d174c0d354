import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { makeRng } from "../../src/runtime/random";
import { plainOps } from "../../src/layers/plain_ops";
import { selectOps } from "../../src/layers/fast_ops";

import { instanceNorm3d } from "../../src/layers/conv_blocks3d";
import { patchify } from "../../src/layers/vit3d";
import { countParams, initValues, paramTable, type ParamSpec } from "../../src/layers/param_specs";
import { UNETR_BTCV, UNETR_CPU, UNETR_MICRO, Unetr, unetrParamSpecs, checkUnetrConfig } from "../../src/models/unetr";
import {
  SWIN_UNETR_F12,
  SWIN_UNETR_F48,
  SWIN_UNETR_MICRO,
  patchMergeRows,
  swinGeometry,
  swinRelativePositionIndex,
  swinUnetrParamSpecs,
  checkSwinUnetrConfig,
} from "../../src/models/swin_unetr";
import {
  UNET3D_CPU,
  UNET3D_MICRO,
  UNET3D_NNUNET,
  Unet3d,
  unet3dParamSpecs,
  checkUnet3dConfig,
} from "../../src/models/unet3d";
import {
  TRANSUNET3D_BASE,
  TRANSUNET3D_CPU,
  transUnet3dParamSpecs,
  upsampleMatrix,
  upsampleTrilinear2x,
  checkTransUnet3dConfig,
} from "../../src/models/transunet3d";
import type { Vec3 } from "../../src/runtime/math";

const rows = (specs: ParamSpec[]) => Object.fromEntries(paramTable(specs).map((r) => [r.component, r.params]));
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe("models/baselines", function () {
  before(async () => {
    await initBackend();
  });

  describe("parameter counts of the standard configurations (from the spec lists, nothing allocated)", () => {
    it("UNETR BTCV = MONAI UNETR(1, 14, img 96, feature 16, hidden 768, mlp 3072, heads 12): 92,784,046", () => {
      // Derived by hand from MONAI 1.5.0 monai/networks/nets/unetr.py and the blocks it uses (vit.py,
      // patchembedding.py, transformerblock.py, selfattention.py, mlp.py, unetr_block.py, dynunet_block.py).
      // MONAI defaults: proj_type "conv", qkv_bias False, norm "instance" (InstanceNorm3d, affine=False: 0 params),
      // res_block and conv_block True; every get_conv_layer conv/transposed conv has bias=False; UnetOutBlock has a bias.
      // k³ = 27 for the 3×3×3 convs, 8 for the 2×2×2 transposed convs. E = 768, tokens (96/16)³ = 216.
      //   vit.patch_embedding.patch_embeddings  Conv3d(1, 768, 16³) + bias   768·4096 + 768          =  3,146,496
      //   vit.patch_embedding.position_embeddings  [1, 216, 768]                                     =    165,888
      //   vit.blocks.i (×12):  norm1 2·768, attn.qkv 768·2304 (no bias), attn.out_proj 768² + 768,
      //                        norm2 2·768, mlp.linear1 768·3072 + 3072, mlp.linear2 3072·768 + 768   =  7,085,568 each
      //                                                                                        ×12 = 85,026,816
      //   vit.norm  2·768                                                                             =      1,536
      //   encoder1  UnetResBlock(1→16): conv1 27·1·16, conv2 27·16·16, conv3 (1×1) 1·16               =      7,360
      //   encoder2  PrUp(768→32, 2 layers): init 8·768·32; 2 × [convT 8·32·32 + 2·27·32·32]           =    323,584
      //   encoder3  PrUp(768→64, 1 layer): init 8·768·64; convT 8·64·64 + 2·27·64·64                  =    647,168
      //   encoder4  PrUp(768→128, 0 layers): init 8·768·128                                           =    786,432
      //   decoder5  Up(768→128): convT 8·768·128; res(256→128): 27·256·128 + 27·128² + 256·128       =  2,146,304
      //   decoder4  Up(128→64):  8·128·64 + 27·128·64 + 27·64² + 128·64                              =    405,504
      //   decoder3  Up(64→32):   8·64·32 + 27·64·32 + 27·32² + 64·32                                 =    101,376
      //   decoder2  Up(32→16):   8·32·16 + 27·32·16 + 27·16² + 32·16                                 =     25,344
      //   out       Conv3d(16, 14, 1) + bias  16·14 + 14                                              =        238
      //   total                                                                                       = 92,784,046
      // This is sum(p.numel() for p in UNETR(...).parameters()) for MONAI ≤ 1.3. MONAI ≥ 1.4 (genai merge, #7886)
      // also builds an unused norm_cross_attn (2·768) and cross_attn (to_q/k/v 3·768², no bias; out_proj 768² + 768)
      // in every TransformerBlock: +2,361,600 per block, 121,123,246 in all; they never run, so we do not build them.
      assert.equal(3_146_496 + 165_888, 3_312_384);
      assert.equal(1536 + 768 * 2304 + 768 * 768 + 768 + 1536 + 768 * 3072 + 3072 + 3072 * 768 + 768, 7_085_568);
      const hand = {
        "vit.embedding": 3_312_384,
        "vit.blocks": 12 * 7_085_568,
        "vit.norm": 1536,
        encoders: 7360 + 323_584 + 647_168 + 786_432,
        decoders: 2_146_304 + 405_504 + 101_376 + 25_344,
        out: 238,
      };
      assert.deepEqual(rows(unetrParamSpecs(UNETR_BTCV).params), hand);
      assert.equal(sum(Object.values(hand)), 92_784_046);
      assert.equal(countParams(unetrParamSpecs(UNETR_BTCV).params), 92_784_046);
      const crossAttnPerBlock = 2 * 768 + 3 * 768 * 768 + 768 * 768 + 768;
      assert.equal(countParams(unetrParamSpecs(UNETR_BTCV).params) + 12 * crossAttnPerBlock, 121_123_246);
    });

    it("Swin UNETR f48 = MONAI SwinUNETR(in 1, out 14, feature 48) (img 96³): 62,187,296", () => {
      // Derived by hand from MONAI 1.5.0 monai/networks/nets/swin_unetr.py (use_v2 False, patch_norm False,
      // qkv_bias True, downsample "merging", normalize True: F.layer_norm without weights, 0 params) and the UNETR
      // blocks above (res blocks, bias-free convs). Window 7: every relative_position_bias_table is 13³ = 2197 rows ×
      // heads (also in stage 4, where the 6³ grid shrinks the window; relative_position_index and the masks are
      // buffers, not parameters).
      //   swinViT.patch_embed.proj  Conv3d(1, 48, 2³) + bias  8·48 + 48                                =        432
      //   Swin block (C, h): norm1 2C, table 2197h, qkv 3C² + 3C, proj C² + C, norm2 2C,
      //                      mlp.linear1 4C² + 4C, mlp.linear2 4C² + C                       = 12C² + 13C + 2197h
      //   PatchMerging (C): reduction 8C·2C (no bias), norm 2·8C                                = 16C² + 16C
      //   layers1 (C 48, h 3):   2·34,863 + 37,632                                                    =    107,358
      //   layers2 (C 96, h 6):   2·125,022 + 148,992                                                  =    399,036
      //   layers3 (C 192, h 12): 2·471,228 + 592,896                                                  =  1,535,352
      //   layers4 (C 384, h 24): 2·1,827,192 + 2,365,440                                              =  6,019,824
      //   encoder1 res(1→48) 27·48 + 27·48² + 48; encoder2 res(48→48) 2·27·48²; encoder3 2·27·96²;
      //   encoder4 2·27·192²; encoder10 2·27·768²                                                      = 34,526,784
      //   UnetrUpBlock(cin→c): convT 8·cin·c + res(2c→c) 27·2c·c + 27·c² + 2c·c = 8·cin·c + 83c²
      //   decoder5 (768→384) 14,598,144; decoder4 (384→192) 3,649,536; decoder3 (192→96) 912,384;
      //   decoder2 (96→48) 228,096; decoder1 (48→48) 209,664                                            = 19,597,824
      //   out  Conv3d(48, 14, 1) + bias  48·14 + 14                                                    =        686
      //   total                                                                                         = 62,187,296
      const block = (C: number, h: number) => 12 * C * C + 13 * C + 2197 * h;
      const merge = (C: number) => 16 * C * C + 16 * C;
      assert.deepEqual(
        [block(48, 3), block(96, 6), block(192, 12), block(384, 24)],
        [34_863, 125_022, 471_228, 1_827_192],
      );
      const up = (cin: number, c: number) => 8 * cin * c + 83 * c * c;
      assert.deepEqual(
        [up(768, 384), up(384, 192), up(192, 96), up(96, 48), up(48, 48)],
        [14_598_144, 3_649_536, 912_384, 228_096, 209_664],
      );
      const hand = {
        "swinViT.patch_embed": 432,
        "swinViT.layers1": 2 * block(48, 3) + merge(48),
        "swinViT.layers2": 2 * block(96, 6) + merge(96),
        "swinViT.layers3": 2 * block(192, 12) + merge(192),
        "swinViT.layers4": 2 * block(384, 24) + merge(384),
        encoders: 27 * 48 + 27 * 48 * 48 + 48 + 2 * 27 * (48 * 48 + 96 * 96 + 192 * 192 + 768 * 768),
        decoders: 14_598_144 + 3_649_536 + 912_384 + 228_096 + 209_664,
        out: 686,
      };
      assert.deepEqual(rows(swinUnetrParamSpecs(SWIN_UNETR_F48).params), hand);
      assert.equal(hand.encoders, 34_526_784);
      assert.equal(countParams(swinUnetrParamSpecs(SWIN_UNETR_F48).params), 62_187_296);
    });

    it("U-Net and TransUNet-3D presets (hand counts of our own structures)", () => {
      // UNET3D_CPU: per conv 27·cin·cout + cout (bias) plus InstanceNorm γ, β (2·cout); transposed conv 8·cin·cout + cout;
      // heads 1×1×1 cin·9 + 9 at 32, 16, 8 channels.
      const cv = (i: number, o: number) => 27 * i * o + o + 2 * o;
      const enc = cv(1, 8) + cv(8, 8) + cv(8, 16) + cv(16, 16) + cv(16, 32) + cv(32, 32) + cv(32, 64) + cv(64, 64);
      const dec =
        8 * 64 * 32 +
        32 +
        cv(64, 32) +
        cv(32, 32) +
        (8 * 32 * 16 + 16 + cv(32, 16) + cv(16, 16)) +
        (8 * 16 * 8 + 8 + cv(16, 8) + cv(8, 8));
      assert.deepEqual(rows(unet3dParamSpecs(UNET3D_CPU).params), {
        encoder: enc,
        decoder: dec,
        heads: 32 * 9 + 9 + 16 * 9 + 9 + 8 * 9 + 9,
      });
      assert.equal(countParams(unet3dParamSpecs(UNET3D_CPU).params), 351_683);
      assert.equal(
        countParams(unet3dParamSpecs({ ...UNET3D_CPU, deepSupervision: false }).params),
        351_683 - (32 * 9 + 9) - (16 * 9 + 9),
      );
      assert.equal(countParams(unet3dParamSpecs(UNET3D_NNUNET).params), 30_795_654);
      // TRANSUNET3D_CPU: stem convs bias-free; ViT with qkv bias (E 192, 4³ tokens, patch 1 from 128 channels);
      // conv_more 27·192·128; decoder blocks (in + skip → out) bias-free; 3×3×3 head with bias.
      const stem = 27 * (1 * 16 + 16 * 16 + 16 * 32 + 32 * 32 + 32 * 64 + 64 * 64 + 64 * 128 + 128 * 128);
      const vitBlock = 4 * 192 + (192 * 576 + 576) + (192 * 192 + 192) + (192 * 768 + 768) + (768 * 192 + 192);
      const vit = 128 * 192 + 192 + 64 * 192 + 4 * vitBlock + 2 * 192;
      const decoder =
        27 *
        (192 * 128 + (128 + 64) * 64 + 64 * 64 + (64 + 32) * 32 + 32 * 32 + (32 + 16) * 16 + 16 * 16 + 16 * 8 + 8 * 8);
      const head = 27 * 8 * 9 + 9;
      assert.equal(countParams(transUnet3dParamSpecs(TRANSUNET3D_CPU).params), stem + vit + decoder + head);
      assert.equal(countParams(transUnet3dParamSpecs(TRANSUNET3D_CPU).params), 3_946_449);
      assert.ok(countParams(transUnet3dParamSpecs(TRANSUNET3D_BASE).params) > 85e6); // 12 ViT-B blocks alone hold 85M
      assert.equal(countParams(unetrParamSpecs(UNETR_CPU).params), 3_417_073);
      assert.equal(countParams(swinUnetrParamSpecs(SWIN_UNETR_F12).params), 3_911_295);
    });
  });

  describe("config validators name the bad field", () => {
    const cases: Array<[string, () => void, RegExp]> = [
      ["unetr patch", () => checkUnetrConfig({ ...UNETR_CPU, patchSize: 8 }), /UNETR config: patchSize = 8: use 16/],
      [
        "unetr crop",
        () => checkUnetrConfig({ ...UNETR_CPU, cropSize: [64, 60, 64] }),
        /cropSize = \[64,60,64\].*multiple of patchSize 16 \(axis 1\)/,
      ],
      [
        "unetr heads",
        () => checkUnetrConfig({ ...UNETR_CPU, numHeads: 5 }),
        /numHeads = 5: must divide hiddenSize 192/,
      ],
      [
        "unetr skips",
        () => checkUnetrConfig({ ...UNETR_CPU, skipBlocks: [0, 2, 5] }),
        /skipBlocks = \[0,2,5\]: entry 2 must be a block index/,
      ],
      [
        "unetr classes",
        () => checkUnetrConfig({ ...UNETR_CPU, numClasses: 0 }),
        /numClasses = 0: use a positive integer/,
      ],
      [
        "swin feature",
        () => checkSwinUnetrConfig({ ...SWIN_UNETR_F12, featureSize: 16 }),
        /SwinUNETR config: featureSize = 16: use a positive multiple of 12/,
      ],
      [
        "swin crop",
        () => checkSwinUnetrConfig({ ...SWIN_UNETR_F12, cropSize: [64, 64, 48] }),
        /cropSize = \[64,64,48\].*multiple of patchSize·16 = 32/,
      ],
      [
        "swin heads",
        () => checkSwinUnetrConfig({ ...SWIN_UNETR_F12, numHeads: [3, 6, 12, 7] }),
        /numHeads\[3\] = 7: stage 3 has 96 channels/,
      ],
      [
        "swin depths",
        () => checkSwinUnetrConfig({ ...SWIN_UNETR_F12, depths: [2, 2, 2] }),
        /depths = \[2,2,2\]: give 4 entries/,
      ],
      ["swin patch", () => checkSwinUnetrConfig({ ...SWIN_UNETR_F12, patchSize: 4 }), /patchSize = 4: use 2/],
      [
        "unet strides",
        () => checkUnet3dConfig({ ...UNET3D_CPU, strides: UNET3D_CPU.strides.slice(1) }),
        /UNet3D config: strides = .*give one stride per stage \(4\)/,
      ],
      [
        "unet first stride",
        () => checkUnet3dConfig({ ...UNET3D_CPU, strides: [[2, 2, 2], ...UNET3D_CPU.strides.slice(1)] }),
        /strides\[0\] = \[2,2,2\]: use \[1, 1, 1\]/,
      ],
      [
        "unet crop",
        () => checkUnet3dConfig({ ...UNET3D_CPU, cropSize: [64, 64, 60] }),
        /cropSize = \[64,64,60\]: axis 2 must be a multiple of the product of the strides \(8\)/,
      ],
      ["unet features", () => checkUnet3dConfig({ ...UNET3D_CPU, features: [8, 0, 32, 64] }), /features\[1\] = 0/],
      [
        "transunet decoder",
        () => checkTransUnet3dConfig({ ...TRANSUNET3D_CPU, decoderChannels: [64, 32, 16] }),
        /TransUNet3D config: decoderChannels = \[64,32,16\]: give one width per stem stage \(4\)/,
      ],
      [
        "transunet crop",
        () => checkTransUnet3dConfig({ ...TRANSUNET3D_CPU, cropSize: [64, 64, 40] }),
        /cropSize = \[64,64,40\]: each side must be a multiple of 2\^4 = 16/,
      ],
      [
        "transunet heads",
        () => checkTransUnet3dConfig({ ...TRANSUNET3D_CPU, numHeads: 5 }),
        /numHeads = 5: must divide hiddenSize 192/,
      ],
    ];
    for (const [what, fn, re] of cases) it(what, () => assert.throws(fn, re));

    it("models refuse inputs of the wrong shape", () => {
      const m = new Unet3d(UNET3D_MICRO, { seed: 1 });
      const x = tf.zeros([1, 16, 16, 8, 1]) as tf.Tensor5D;
      assert.throws(
        () => m.forward(x, { ops: plainOps }),
        /unet3d: input shape \[1,16,16,8,1\] does not match \[B, 16, 16, 16, 1\]/,
      );
      x.dispose();
      m.dispose();
    });
  });

  describe("Swin UNETR follows MONAI's window rules", () => {
    it("per-axis window shrink, shift and padding on the 96³ and micro plans", () => {
      const grids: Vec3[] = [
        [48, 48, 48],
        [24, 24, 24],
        [12, 12, 12],
        [6, 6, 6],
      ];
      const g = grids.map((grid) => swinGeometry(grid, SWIN_UNETR_F48.windowSize, true));
      assert.deepEqual(
        g.map((x) => x.window),
        [
          [7, 7, 7],
          [7, 7, 7],
          [7, 7, 7],
          [6, 6, 6],
        ],
      );
      assert.deepEqual(
        g.map((x) => x.shift),
        [
          [3, 3, 3],
          [3, 3, 3],
          [3, 3, 3],
          [0, 0, 0],
        ],
      );
      assert.deepEqual(
        g.map((x) => x.padded),
        [
          [49, 49, 49],
          [28, 28, 28],
          [14, 14, 14],
          [6, 6, 6],
        ],
      );
      assert.deepEqual(
        g.map((x) => x.numWindows),
        [343, 64, 8, 1],
      );
      assert.deepEqual(
        g.map((x) => x.masked),
        [true, true, true, false],
      );
      // micro: last stage grid 2×2×4 with window 3 → window 2×2×3, shift only on W, still rolled and masked
      const m = swinGeometry([2, 2, 4], SWIN_UNETR_MICRO.windowSize, true);
      assert.deepEqual(
        [m.window, m.shift, m.padded, m.numWindows, m.rolled, m.masked],
        [[2, 2, 3], [0, 0, 1], [2, 2, 6], 2, true, true],
      );
      assert.equal(swinGeometry([2, 2, 4], [3, 3, 3], false).rolled, false);
    });

    it("relative position index: standard 3D Swin formula, cut to [:n, :n] for a shrunken window", () => {
      const idx = swinRelativePositionIndex([2, 2, 2]);
      // token 0 = (0,0,0), token 7 = (1,1,1); (Δ + 1) per axis with multipliers 9, 3, 1
      assert.equal(idx[0 * 8 + 0], 13); // (1,1,1) → 9 + 3 + 1
      assert.equal(idx[0 * 8 + 7], 0); // Δ = −1 everywhere
      assert.equal(idx[7 * 8 + 0], 26);
      const full = swinRelativePositionIndex([7, 7, 7]);
      const cut = swinRelativePositionIndex([7, 7, 7], 216);
      assert.equal(cut.length, 216 * 216);
      for (const [i, j] of [
        [0, 0],
        [5, 200],
        [215, 17],
      ])
        assert.equal(cut[i * 216 + j], full[i * 343 + j]);
      assert.ok(Math.max(...full) === 13 * 13 * 13 - 1);
    });

    it("PatchMerging takes the 2×2×2 voxels in MONAI's x0..x7 order", () => {
      const rowsOf = patchMergeRows([2, 4, 2], 2); // L = 16 per sample, 2 output tokens per sample
      const at = (d: number, h: number, w: number) => (d * 4 + h) * 2 + w;
      const order: Vec3[] = [
        [0, 0, 0],
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
        [1, 1, 0],
        [1, 0, 1],
        [0, 1, 1],
        [1, 1, 1],
      ];
      assert.deepEqual(
        [...rowsOf.slice(0, 8)],
        order.map(([d, h, w]) => at(d, h, w)),
      );
      assert.deepEqual(
        [...rowsOf.slice(8, 16)],
        order.map(([d, h, w]) => at(d, h + 2, w)),
      );
      assert.deepEqual(
        [...rowsOf.slice(16, 24)],
        order.map(([d, h, w]) => 16 + at(d, h, w)),
      );
    });
  });

  describe("shared pieces", () => {
    it("patchify orders each patch (pD, pH, pW, C) and patches (gD, gH, gW) as a Conv3d with kernel = stride", () => {
      const [B, D, H, W, C] = [2, 4, 6, 2, 3];
      const p: Vec3 = [2, 3, 1];
      const data = Float32Array.from({ length: B * D * H * W * C }, (_, i) => i);
      const x = tf.tensor5d(data, [B, D, H, W, C]);
      const got = patchify(x, p).arraySync();
      const g = [D / p[0], H / p[1], W / p[2]];
      const want: number[][] = [];
      for (let b = 0; b < B; b++)
        for (let a = 0; a < g[0]; a++)
          for (let c = 0; c < g[1]; c++)
            for (let e = 0; e < g[2]; e++) {
              const row: number[] = [];
              for (let i = 0; i < p[0]; i++)
                for (let j = 0; j < p[1]; j++)
                  for (let k = 0; k < p[2]; k++)
                    for (let ch = 0; ch < C; ch++) {
                      row.push(data[(((b * D + a * p[0] + i) * H + c * p[1] + j) * W + e * p[2] + k) * C + ch]);
                    }
              want.push(row);
            }
      assert.deepEqual(got, want);
      x.dispose();
    });

    it("InstanceNorm: values and gradient on this backend match the analytic ones", () => {
      const [B, D, H, W, C] = [2, 3, 2, 4, 3];
      const S = D * H * W;
      const rng = makeRng(5);
      const xs = Float32Array.from({ length: B * S * C }, () => 3 * rng() - 1);
      const gs = Float32Array.from({ length: B * S * C }, () => 2 * rng() - 1);
      const x = tf.tensor5d(xs, [B, D, H, W, C]);
      const r = tf.tensor5d(gs, [B, D, H, W, C]);
      const y = instanceNorm3d(x);
      const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(instanceNorm3d(t as tf.Tensor5D), r)))(x);
      const yv = y.dataSync(),
        dv = dx.dataSync();
      for (let b = 0; b < B; b++)
        for (let c = 0; c < C; c++) {
          const at = (s: number) => (b * S + s) * C + c;
          let mean = 0;
          for (let s = 0; s < S; s++) mean += xs[at(s)] / S;
          let v = 0;
          for (let s = 0; s < S; s++) v += (xs[at(s)] - mean) ** 2 / S;
          const rstd = 1 / Math.sqrt(v + 1e-5);
          const xh = (s: number) => (xs[at(s)] - mean) * rstd;
          let mg = 0,
            mgx = 0;
          for (let s = 0; s < S; s++) {
            mg += gs[at(s)] / S;
            mgx += (gs[at(s)] * xh(s)) / S;
          }
          for (let s = 0; s < S; s++) {
            assert.ok(Math.abs(yv[at(s)] - xh(s)) < 1e-4, "value");
            const want = rstd * (gs[at(s)] - mg - xh(s) * mgx); // d/dx of Σ g·x̂
            assert.ok(Math.abs(dv[at(s)] - want) < 1e-3, `grad ${dv[at(s)]} vs ${want}`);
          }
        }
      tf.dispose([x, r, y, dx]);
    });

    it("trilinear 2× up-sampling with align_corners=True", () => {
      assert.deepEqual(
        [...upsampleMatrix(2)],
        [1, 0, 2 / 3, 1 / 3, 1 / 3, 2 / 3, 0, 1].map((v) => Math.fround(v)),
      );
      assert.deepEqual([...upsampleMatrix(1)], [1, 1]);
      // a trilinear function of the coordinates is reproduced exactly on the align-corners grid
      const f = (d: number, h: number, w: number, c: number) => 1 + 2 * d - h + 0.5 * w + 3 * c + d * h * w;
      const [D, H, W, C] = [2, 3, 4, 2];
      const x = tf.tensor5d(
        Array.from({ length: D * H * W * C }, (_, i) => {
          const c = i % C,
            w = Math.floor(i / C) % W,
            h = Math.floor(i / (C * W)) % H,
            d = Math.floor(i / (C * W * H));
          return f(d, h, w, c);
        }),
        [1, D, H, W, C],
      );
      const y = upsampleTrilinear2x(x);
      assert.deepEqual(y.shape, [1, 4, 6, 8, 2]);
      const yv = y.dataSync();
      const src = (i: number, n: number) => (i * (n - 1)) / (2 * n - 1);
      let k = 0;
      for (let d = 0; d < 4; d++)
        for (let h = 0; h < 6; h++)
          for (let w = 0; w < 8; w++)
            for (let c = 0; c < 2; c++, k++) {
              assert.ok(Math.abs(yv[k] - f(src(d, D), src(h, H), src(w, W), c)) < 1e-4);
            }
      tf.dispose([x, y]);
    });

    it("initialisation: PyTorch uniform bounds, nnU-Net He normal, trunc-normal 0.02, seeded", () => {
      const specs = unetrParamSpecs(UNETR_BTCV).params;
      const conv = specs.find((s) => s.name === "decoder5.conv_block.conv1.conv.weight")!;
      assert.equal(conv.fanIn, 256 * 27);
      const convT = specs.find((s) => s.name === "decoder5.transp_conv.conv.weight")!;
      assert.equal(convT.fanIn, 128 * 8); // torch: ConvTranspose fan_in from weight dim 1 (out channels)
      const pos = specs.find((s) => s.name === "vit.patch_embedding.position_embeddings")!;
      assert.deepEqual([pos.init, pos.shape, pos.torchShape], ["trunc_normal", [216, 768], [1, 216, 768]]);
      const small = { ...conv, shape: [4000] };
      const u = initValues(small, makeRng(1));
      const bound = 1 / Math.sqrt(conv.fanIn);
      assert.ok(u.every((v) => Math.abs(v) <= bound) && Math.max(...u) > 0.9 * bound);
      assert.deepEqual(initValues(small, makeRng(1)), u);
      const he = initValues({ ...unet3dParamSpecs(UNET3D_CPU).params[0], shape: [20000] }, makeRng(2));
      const std = Math.sqrt(he.reduce((a, v) => a + v * v, 0) / he.length);
      assert.ok(Math.abs(std - Math.sqrt(2 / 1.0001 / 27)) < 0.01, `He std ${std}`);
      const tn = initValues({ ...pos, shape: [20000] }, makeRng(3));
      const tstd = Math.sqrt(tn.reduce((a, v) => a + v * v, 0) / tn.length);
      assert.ok(Math.abs(tstd - 0.02) < 0.001);
      const zeroGrad = unet3dParamSpecs(UNET3D_CPU)
        .params.filter((s) => s.zeroGrad)
        .map((s) => s.name);
      assert.equal(zeroGrad.length, 14); // the biases of the 8 encoder and 6 decoder convs, each followed by InstanceNorm
      assert.ok(zeroGrad.every((n) => n.endsWith(".conv.bias")));
    });

    it("the same seed gives the same network, another seed a different one", () => {
      const x = tf.randomNormal([1, ...UNETR_MICRO.cropSize, 1], 0, 1, "float32", 3) as tf.Tensor5D;
      const run = (seed: number) => {
        const m = new Unetr(UNETR_MICRO, { seed });
        const y = m.forward(x, { ops: plainOps });
        const v = y.dataSync().slice();
        y.dispose();
        m.dispose();
        return v;
      };
      const a = run(4),
        b = run(4),
        c = run(5);
      assert.ok(a.every((v, i) => Math.abs(v - b[i]) < 1e-6));
      assert.ok(a.some((v, i) => Math.abs(v - c[i]) > 1e-3));
      x.dispose();
    });

    it("fast and plain ops agree on UNETR micro gradients", () => {
      const m = new Unetr(UNETR_MICRO, { seed: 2 });
      const x = tf.randomNormal([1, ...UNETR_MICRO.cropSize, 1], 0, 1, "float32", 4) as tf.Tensor5D;
      const grads = (ops: typeof plainOps) => {
        const { value, grads: g } = tf.variableGrads(
          () => tf.mean(tf.square(m.forward(x, { ops }))) as tf.Scalar,
          m.trainableVariables(),
        );
        value.dispose();
        return g;
      };
      const fast = selectOps("wasm");
      const gp = grads(plainOps),
        gf = grads(fast);
      for (const k of Object.keys(gp)) {
        const [scale, diff] = tf.tidy(() => [
          tf.max(tf.abs(gp[k])).dataSync()[0] + 1e-8,
          tf.max(tf.abs(tf.sub(gp[k], gf[k]))).dataSync()[0],
        ]);
        assert.ok(diff / scale < 1e-3, `${k}: ${diff} vs ${scale}`);
      }
      tf.dispose([x, ...Object.values(gp), ...Object.values(gf)]);
      m.dispose();
    });
  });
});
