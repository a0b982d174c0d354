// nnFormer: Zhou et al., "nnFormer: Volumetric Medical Image Segmentation via a 3D Transformer", IEEE TIP 2023
// (arXiv 2109.03201); official code 282857341/nnFormer @ d48aaeb. Spec: docs/nnformer.md.
// Differs from the reference code (no numeric effect): channels-last tensors; tokens kept as [B·S·H·W, C] matrices;
// pad + roll + window partition done as one row gather; attention output projection applied after the window merge.
// Faithful on purpose: the quirky relative-position index, −100 shift mask, skip attention without a query
// projection, the per-task global-window rule (§2.3), ACDC's unmasked roll and depth 14→15 padding.
// This file is the model: forward, encoder and decoder in the order of the paper's §2; the config and its plan are in
// nnformer_config.ts, the presets in nnformer_presets.ts, the parameter list in nnformer_params.ts.
import * as tf from "@tensorflow/tfjs";
import { Ops } from "../layers/ops";
import type { Rng } from "../runtime/random";
import { ParamStore, type ParamSpec } from "../layers/param_specs";
import { officialRelativePositionIndex, shiftMask, type WindowGeometry } from "../layers/window_attention3d";
import {
  BlockContext,
  ParamGetter,
  WindowIndexCache,
  conv3d,
  layerNorm,
  layerNorm5d,
  skipAttentionBlock,
  transformerBlock,
} from "../layers/nnformer_blocks";
import { checkNnFormerConfig, planNnFormer, type NnFormerConfig, type NnFormerPlan } from "./nnformer_config";
import { nnFormerParamSpecs, type BufferSpec } from "./nnformer_params";
import { ParamModel } from "./param_model";
import type { Vec3 } from "../runtime/math";
import { cube } from "../runtime/math";

export * from "./nnformer_config";
export * from "./nnformer_presets";
export * from "./nnformer_params";

const fmt = (v: unknown) => JSON.stringify(v);

/** nnFormer with weights held as tf.Variables keyed by the official state_dict names. */
export class NnFormer extends ParamModel {
  readonly config: NnFormerConfig;
  readonly plan: NnFormerPlan;
  /** Trainable parameters in official order (see nnformer_params.ts). */
  readonly specs: ParamSpec[];
  /** relative_position_index buffers of the official state_dict (computed, not trained). */
  readonly bufferSpecs: BufferSpec[];
  /** Trainable weights by official name, in our layout. */
  readonly params: ParamStore;
  /** relative_position_index buffers by official name. */
  readonly buffers = new Map<string, Int32Array>();
  private readonly rpbIndex = new Map<string, tf.Tensor1D>();
  private readonly masks = new Map<string, tf.Tensor3D>();
  private readonly windowIndices = new WindowIndexCache();
  private disposed = false;

  /**
   * `init: "pytorch"` (default) draws PyTorch-default weights from `seed`; "zeros" leaves them to be loaded.
   * `params`: run on variables held elsewhere (a ParamStore.borrow view; the compact MAE encoder) instead of allocating.
   */
  constructor(config: NnFormerConfig, opts: { seed?: number; init?: "pytorch" | "zeros"; params?: ParamStore } = {}) {
    super();
    checkNnFormerConfig(config);
    this.config = JSON.parse(JSON.stringify(config));
    this.plan = planNnFormer(this.config);
    const specs = nnFormerParamSpecs(this.config);
    this.specs = specs.params;
    this.bufferSpecs = specs.buffers;
    this.params = opts.params ?? ParamStore.create("nnformer", this.specs, opts.seed ?? 0, opts.init);
    for (const b of this.bufferSpecs) {
      const key = `${b.window}`;
      const idx = officialRelativePositionIndex(b.window);
      this.buffers.set(b.name, idx);
      if (!this.rpbIndex.has(key)) this.rpbIndex.set(key, tf.tensor1d(idx, "int32"));
    }
    for (const s of [...this.plan.encoder, ...this.plan.decoder]) {
      for (const g of s.blocks) {
        const key = `${g.grid}|${g.window}|${g.shift}`;
        if (g.masked && !this.masks.has(key))
          this.masks.set(key, tf.tensor3d(shiftMask(g), [g.numWindows, g.tokens, g.tokens]));
      }
    }
  }

  /** Logits [B, D, H, W, K] for x [B, D, H, W, Cin] (channels-last); with deep supervision also the ½ and ¼ logits. */
  forward(x: tf.Tensor5D, opts: NnFormerForwardOptions): NnFormerOutput {
    const ds = opts.deepSupervision ?? this.config.deepSupervision;
    if (ds && !this.config.deepSupervision) {
      throw new Error(
        "nnFormer.forward: deepSupervision requested but the config has no auxiliary heads (config.deepSupervision false)",
      );
    }
    return tf.tidy(() => {
      const enc = this.encode(x, opts);
      const dec = this.decode(enc, opts); // deep→shallow: levels 2, 1, 0
      const ctx = this.context(enc.batch, opts);
      const logits = this.head(ctx, dec[2], 0);
      const aux = ds ? [this.head(ctx, dec[1], 1), this.head(ctx, dec[0], 2)] : [];
      return { logits, aux };
    });
  }

  /** Embedding + encoder (§2.1–2.2): the LN'd skip of every stage. */
  encode(x: tf.Tensor5D, opts: NnFormerForwardOptions): NnFormerEncoding {
    this.checkInput(x);
    const B = x.shape[0];
    const ctx = this.context(B, opts);
    const p = this.getter(opts.paramOverrides);
    const c = this.config,
      ops = ctx.ops,
      hooks = opts.mask;
    const afterConv = (t: tf.Tensor5D, name: string) =>
      hooks?.afterConv ? hooks.afterConv(t, { name, grid: t.shape.slice(1, 4) as Vec3 }) : t;
    return tf.tidy(() => {
      const pe = "model_down.patch_embed";
      let e = afterConv(
        conv3d(ctx, x, p, `${pe}.proj1.conv1`, c.embedStrides.proj1, cube(1), false),
        `${pe}.proj1.conv1`,
      );
      e = layerNorm5d(ctx, ops.gelu(e), p, `${pe}.proj1.norm1`);
      e = afterConv(conv3d(ctx, e, p, `${pe}.proj1.conv2`, cube(1), cube(1)), `${pe}.proj1.conv2`);
      e = layerNorm5d(ctx, ops.gelu(e), p, `${pe}.proj1.norm2`);
      e = afterConv(conv3d(ctx, e, p, `${pe}.proj2.conv1`, c.embedStrides.proj2, cube(1)), `${pe}.proj2.conv1`);
      e = layerNorm5d(ctx, ops.gelu(e), p, `${pe}.proj2.norm1`);
      e = afterConv(conv3d(ctx, e, p, `${pe}.proj2.conv2`, cube(1), cube(1)), `${pe}.proj2.conv2`);
      e = layerNorm5d(ctx, e, p, `${pe}.norm`); // last embed conv: LN only, no GELU
      let t = tf.reshape(e, [-1, c.embedDim]) as tf.Tensor2D; // [B·S·H·W, C0]
      const skips: tf.Tensor2D[] = [];
      this.plan.encoder.forEach((s, i) => {
        s.blocks.forEach((g, j) => {
          const keyMask = hooks?.keyMask ? hooks.keyMask({ stage: i, block: j, geometry: g, batch: B }) : null;
          const prefix = `model_down.layers.${i}.blocks.${j}`;
          const extras = { ...this.extras(g), keyMask };
          t = transformerBlock(ctx, t, { p, prefix, g, heads: s.heads, dropRate: s.dropPath[j], extras });
          if (hooks?.afterBlock) t = hooks.afterBlock(t, { stage: i, block: j, grid: s.grid });
        });
        skips.push(layerNorm(ctx, t, p, `model_down.norm${i}`));
        if (i < 3) {
          // down-sampling takes the un-normalised stage output: GELU → LN → strided conv (§2.2)
          const name = `model_down.layers.${i}.downsample`;
          const d = layerNorm(ctx, ops.gelu(t), p, `${name}.norm`);
          const d5 = tf.reshape(d, [B, ...s.grid, s.dim]) as tf.Tensor5D; // [B, S, H, W, C]
          const r = afterConv(
            conv3d(ctx, d5, p, `${name}.reduction`, c.downStrides[i], c.downPaddings[i]),
            `${name}.reduction`,
          );
          t = tf.reshape(r, [-1, 2 * s.dim]) as tf.Tensor2D; // [B·S'·H'·W', 2C]
        }
      });
      return { skips, grids: this.plan.encoder.map((s) => s.grid), batch: B };
    });
  }

  /** Decoder (§2.6): token outputs deep→shallow [B·S·H·W, C] at encoder levels 2, 1, 0. */
  decode(enc: NnFormerEncoding, opts: NnFormerForwardOptions): tf.Tensor2D[] {
    const B = enc.batch;
    const ctx = this.context(B, opts);
    const p = this.getter();
    const c = this.config;
    return tf.tidy(() => {
      let x = enc.skips[3];
      const outs: tf.Tensor2D[] = [];
      this.plan.decoder.forEach((s, j) => {
        const t = 2 - j,
          prefix = `decoder.layers.${t}`;
        const below = this.plan.encoder[3 - j];
        const u = layerNorm(ctx, x, p, `${prefix}.Upsample.norm`);
        const u5 = tf.reshape(u, [B, ...below.grid, below.dim]) as tf.Tensor5D; // [B, S, H, W, 2C]
        const up = ctx.ops.convTranspose3d(
          u5,
          p(`${prefix}.Upsample.up.weight`) as tf.Tensor5D,
          p(`${prefix}.Upsample.up.bias`) as tf.Tensor1D,
          c.upOutputPaddings[j],
        );
        const xUp = tf.reshape(up, [-1, s.dim]) as tf.Tensor2D; // [B·S'·H'·W', C]
        const skip = enc.skips[2 - j];
        x = tf.add(xUp, skip) as tf.Tensor2D;
        s.blocks.forEach((g, b) => {
          const a = {
            p,
            prefix: `${prefix}.blocks.${b}`,
            g,
            heads: s.heads,
            dropRate: s.dropPath[b],
            extras: this.extras(g),
          };
          x = b === 0 ? skipAttentionBlock(ctx, x, xUp, skip, a) : transformerBlock(ctx, x, a);
        });
        outs.push(x);
      });
      return outs;
    });
  }

  /** Output head `final.{i}` on decoder tokens at encoder level i: ConvTranspose3d, kernel = stride = patch. */
  private head(ctx: BlockContext, tokens: tf.Tensor2D, level: number): tf.Tensor5D {
    const s = this.plan.encoder[level];
    const x5 = tf.reshape(tokens, [ctx.batch, ...s.grid, s.dim]) as tf.Tensor5D; // [B, S, H, W, C]
    const p = this.getter();
    return ctx.ops.convTranspose3d(
      x5,
      p(`final.${level}.up.weight`) as tf.Tensor5D,
      p(`final.${level}.up.bias`) as tf.Tensor1D,
    );
  }

  /** Frees the variables (unless borrowed) and cached tensors. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.params.dispose();
    tf.dispose([...this.rpbIndex.values(), ...this.masks.values()]);
  }

  private getter(overrides?: ReadonlyMap<string, tf.Tensor>): ParamGetter {
    return (name) => {
      const o = overrides?.get(name);
      if (o) return o;
      if (!this.params.has(name)) throw new Error(`nnFormer: no parameter named ${name}`);
      return this.params.get(name);
    };
  }
  private context(batch: number, opts: NnFormerForwardOptions): BlockContext {
    if (this.disposed) throw new Error("nnFormer: this model was disposed");
    const training = opts.training ?? false;
    if (training && this.config.dropPathRate > 0 && !opts.rng) {
      throw new Error(
        `nnFormer.forward(training: true) needs opts.rng for drop path (dropPathRate ${this.config.dropPathRate}); pass makeRng(seed)`,
      );
    }
    return { ops: opts.ops, batch, training, rng: opts.rng, indices: (g, b) => this.windowIndices.get(g, b) };
  }

  private extras(g: WindowGeometry): { rpbIndex: tf.Tensor1D; shiftMask: tf.Tensor3D | null } {
    return {
      rpbIndex: this.rpbIndex.get(`${g.window}`)!,
      shiftMask: g.masked ? this.masks.get(`${g.grid}|${g.window}|${g.shift}`)! : null,
    };
  }

  private checkInput(x: tf.Tensor): void {
    const [, D, H, W, C] = x.shape;
    const c = this.config;
    if (x.rank !== 5 || D !== c.cropSize[0] || H !== c.cropSize[1] || W !== c.cropSize[2] || C !== c.inChannels) {
      throw new Error(
        `nnFormer: input shape ${fmt(x.shape)} does not match [B, ${c.cropSize.join(", ")}, ${c.inChannels}] (the network is built for its crop; use sliding windows for larger volumes)`,
      );
    }
  }
}

/**
 * Optional hooks that let MAE pretraining run the encoder on a visibility mask (none by default). Each hook receives
 * tensors inside the forward's tidy scope and must return a tensor of the same shape.
 */
export interface EncoderMaskHooks {
  /** After each encoder conv (4 embedding convs, 3 down-sampling convs), before its GELU/LN. x [B, D, H, W, C]. */
  afterConv?(x: tf.Tensor5D, site: { name: string; grid: Vec3 }): tf.Tensor5D;
  /** Additive key mask [B·nW, N, N] for an encoder block's attention (see keyMaskFromVisibility), or null. Added to the shift mask. */
  keyMask?(site: { stage: number; block: number; geometry: WindowGeometry; batch: number }): tf.Tensor3D | null;
  /** After each encoder block: tokens [B·S·H·W, C] (e.g. zero the masked tokens). */
  afterBlock?(x: tf.Tensor2D, site: { stage: number; block: number; grid: Vec3 }): tf.Tensor2D;
}

export interface NnFormerForwardOptions {
  /** Which op implementations to run (plainOps or fastOps). */
  ops: Ops;
  /** Enables drop path (then `rng` is required when dropPathRate > 0). Default false. */
  training?: boolean;
  /** Return the ½ and ¼ heads too (default config.deepSupervision; needs a config with deep supervision). */
  deepSupervision?: boolean;
  /** Seeded generator for drop path. */
  rng?: Rng;
  /** MAE hooks on the encoder. */
  mask?: EncoderMaskHooks;
  /** Tensors used instead of stored parameters of the same name for this call (compact MAE's derived RPB tables). */
  paramOverrides?: ReadonlyMap<string, tf.Tensor>;
}

export interface NnFormerEncoding {
  /** LN'd stage outputs as token matrices [B·S·H·W, C_i], stages 0..3 (skips[3] is the bottleneck). */
  skips: tf.Tensor2D[];
  /** Token grid of each stage. */
  grids: Vec3[];
  batch: number;
}

export interface NnFormerOutput {
  /** Full-resolution logits [B, D, H, W, K]. */
  logits: tf.Tensor5D;
  /** Deep-supervision logits at ½ and ¼ (empty without deep supervision). */
  aux: tf.Tensor5D[];
}
