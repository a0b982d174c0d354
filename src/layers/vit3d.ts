// A 3D ViT encoder as MONAI builds it (monai/networks/nets/vit.py with PatchEmbeddingBlock, TransformerBlock,
// SABlock, MLPBlock), shared by UNETR and our TransUNet-3D. Tokens are kept as [B·L, E] matrices in (d, h, w) order,
// which is MONAI's flatten(2) order, so "proj_feat" back to a volume is a plain reshape to [B, gD, gH, gW, E].
// The patch-embedding conv (kernel = stride = patch) runs as a linear layer on flattened patches.
import * as tf from "@tensorflow/tfjs";

import type { NetContext } from "./conv_blocks3d";
import type { SpecList } from "./param_specs";
import type { Vec3 } from "../runtime/math";

export interface VitShape {
  inChannels: number;
  /** Patch [pD, pH, pW] (kernel = stride of the embedding conv). */
  patch: Vec3;
  /** Token grid [gD, gH, gW] = crop / patch. */
  grid: Vec3;
  hidden: number;
  mlpDim: number;
  numLayers: number;
  /** Bias on the fused qkv Linear (MONAI UNETR: false). */
  qkvBias: boolean;
}

const LN_EPS = 1e-5; // PyTorch LayerNorm default

/**
 * Parameters under `prefix` with MONAI names. Our layouts: patch-embedding conv [pD, pH, pW, Cin, E], position
 * embedding [L, E] (torch [1, L, E], trunc-normal 0.02), Linear weights [in, out].
 * Not built: MONAI ≥ 1.4 also creates an unused `norm_cross_attn` + `cross_attn` in every TransformerBlock
 * (with_cross_attention=False); they never take part in the forward pass.
 */
export function vitSpec(L: SpecList, prefix: string, s: VitShape): void {
  const E = s.hidden;
  const tokens = s.grid[0] * s.grid[1] * s.grid[2];
  L.group = `${prefix}.embedding`;
  L.conv(`${prefix}.patch_embedding.patch_embeddings`, s.inChannels, E, s.patch, { bias: true });
  L.tensor(`${prefix}.patch_embedding.position_embeddings`, [tokens, E], [1, tokens, E], "embedding", "trunc_normal");
  L.group = `${prefix}.blocks`;
  for (let i = 0; i < s.numLayers; i++) {
    const b = `${prefix}.blocks.${i}`;
    L.linear(`${b}.mlp.linear1`, E, s.mlpDim);
    L.linear(`${b}.mlp.linear2`, s.mlpDim, E);
    L.norm(`${b}.norm1`, E);
    L.linear(`${b}.attn.out_proj`, E, E);
    L.linear(`${b}.attn.qkv`, E, 3 * E, s.qkvBias);
    L.norm(`${b}.norm2`, E);
  }
  L.group = `${prefix}.norm`;
  L.norm(`${prefix}.norm`, E);
}

/** x [B, D, H, W, C] → flattened patches [B·gD·gH·gW, pD·pH·pW·C], each patch ordered (pD, pH, pW, C). */
export function patchify(x: tf.Tensor5D, p: Vec3): tf.Tensor2D {
  const [B, D, H, W, C] = x.shape;
  const g = [D / p[0], H / p[1], W / p[2]];
  if (p.every((v) => v === 1)) return tf.reshape(x, [B * D * H * W, C]);
  const a = tf.transpose(tf.reshape(x, [B * g[0], p[0], g[1], p[1] * W * C]), [0, 2, 1, 3]); // [(B,gD), gH, pD, (pH,W,C)]
  const b = tf.transpose(tf.reshape(a, [B * g[0] * g[1], p[0] * p[1], g[2], p[2] * C]), [0, 2, 1, 3]); // [(B,gD,gH), gW, (pD,pH), (pW,C)]
  return tf.reshape(b, [B * g[0] * g[1] * g[2], p[0] * p[1] * p[2] * C]);
}

export interface VitOutput {
  /** LayerNorm'd output of the last block, [B·L, E] (MONAI's `x`). */
  last: tf.Tensor2D;
  /** Un-normalised output of every block, [B·L, E] each (MONAI's hidden_states_out). */
  hidden: tf.Tensor2D[];
}

function linear(ctx: NetContext, x: tf.Tensor2D, name: string): tf.Tensor2D {
  const b = ctx.has(`${name}.bias`) ? (ctx.p(`${name}.bias`) as tf.Tensor1D) : null;
  return ctx.ops.linear(x, ctx.p(`${name}.weight`) as tf.Tensor2D, b);
}

function layerNorm(ctx: NetContext, x: tf.Tensor2D, name: string): tf.Tensor2D {
  return ctx.ops.layerNorm(x, ctx.p(`${name}.weight`) as tf.Tensor1D, ctx.p(`${name}.bias`) as tf.Tensor1D, LN_EPS);
}

/** Columns [part·E, (part+1)·E) of the fused qkv Linear, so the activations are never sliced. */
function qkvPart(ctx: NetContext, x: tf.Tensor2D, name: string, part: number, E: number): tf.Tensor2D {
  const w = tf.slice(ctx.p(`${name}.weight`) as tf.Tensor2D, [0, part * E], [E, E]);
  const b = ctx.has(`${name}.bias`) ? tf.slice(ctx.p(`${name}.bias`) as tf.Tensor1D, [part * E], [E]) : null;
  return ctx.ops.linear(x, w, b);
}

/** TransformerBlock: x + SA(LN1 x), then + MLP(LN2 x); global attention over the L tokens of each sample. */
export function vitBlock(ctx: NetContext, x: tf.Tensor2D, name: string, batch: number, heads: number): tf.Tensor2D {
  const [T, E] = x.shape;
  const h = layerNorm(ctx, x, `${name}.norm1`);
  // MONAI rearranges the qkv output as (qkv, heads, dim): q, k, v are consecutive E-wide column blocks
  const q = qkvPart(ctx, h, `${name}.attn.qkv`, 0, E);
  const k = qkvPart(ctx, h, `${name}.attn.qkv`, 1, E);
  const v = qkvPart(ctx, h, `${name}.attn.qkv`, 2, E);
  const a = ctx.ops.windowAttention(q, k, v, {
    numWindows: batch,
    tokens: T / batch,
    heads,
    scale: Math.pow(E / heads, -0.5),
    bias: null,
    mask: null,
  });
  const y = tf.add(x, linear(ctx, a, `${name}.attn.out_proj`)) as tf.Tensor2D;
  const m = linear(
    ctx,
    ctx.ops.gelu(linear(ctx, layerNorm(ctx, y, `${name}.norm2`), `${name}.mlp.linear1`)),
    `${name}.mlp.linear2`,
  );
  return tf.add(y, m) as tf.Tensor2D;
}

/** Patch embedding + position embedding + blocks + final LayerNorm. x [B, D, H, W, Cin]. */
export function vitEncode(ctx: NetContext, x: tf.Tensor5D, prefix: string, s: VitShape, heads: number): VitOutput {
  const B = x.shape[0];
  const E = s.hidden;
  const L = s.grid[0] * s.grid[1] * s.grid[2];
  const w = ctx.p(`${prefix}.patch_embedding.patch_embeddings.weight`) as tf.Tensor5D; // [pD, pH, pW, Cin, E]
  const K = s.patch[0] * s.patch[1] * s.patch[2] * s.inChannels;
  const emb = ctx.ops.linear(
    patchify(x, s.patch),
    tf.reshape(w, [K, E]),
    ctx.p(`${prefix}.patch_embedding.patch_embeddings.bias`) as tf.Tensor1D,
  ); // [B·L, E]
  const pos = tf.reshape(ctx.p(`${prefix}.patch_embedding.position_embeddings`), [1, L * E]);
  let t = tf.reshape(tf.add(tf.reshape(emb, [B, L * E]), pos), [B * L, E]) as tf.Tensor2D; // [B·L, E]
  const hidden: tf.Tensor2D[] = [];
  for (let i = 0; i < s.numLayers; i++) {
    t = vitBlock(ctx, t, `${prefix}.blocks.${i}`, B, heads);
    hidden.push(t);
  }
  return { last: layerNorm(ctx, t, `${prefix}.norm`), hidden };
}

/** Tokens [B·L, E] → volume [B, gD, gH, gW, E] (MONAI proj_feat). */
export function tokensToVolume(t: tf.Tensor2D, batch: number, grid: Vec3): tf.Tensor5D {
  return tf.reshape(t, [batch, ...grid, t.shape[1]]) as tf.Tensor5D;
}
