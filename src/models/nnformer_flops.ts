// Multiply-accumulate count of an nnFormer forward pass, from the same plan the model is built from.
// Counts convolutions, transposed convolutions, linear layers and the two attention products (q·kᵀ and A·v);
// LayerNorm, GELU, softmax and additions are left out, as in the spec's §1 table (fvcore-style). FLOPs = 2 · MACs,
// and a training step (forward + backward) is counted as 3 × the forward.
import { NnFormerConfig, planNnFormer } from "./nnformer";
import type { Vec3 } from "../runtime/math";
import { prod } from "../runtime/math";

export interface MacBreakdown {
  conv: number;
  convT: number;
  linear: number;
  attention: number;
  total: number;
}

/** MACs of one forward pass for batch 1 (`deepSupervision` defaults to the config's). */
export function nnFormerForwardMacs(c: NnFormerConfig, opts: { deepSupervision?: boolean } = {}): MacBreakdown {
  const plan = planNnFormer(c);
  const ds = opts.deepSupervision ?? c.deepSupervision;
  const r: MacBreakdown = { conv: 0, convT: 0, linear: 0, attention: 0, total: 0 };
  const C0 = c.embedDim;
  const [g1, g0] = plan.embedGrids;
  // embedding: conv k3 (Cin → C0/2) and (C0/2 → C0/2) at g1, then (C0/2 → C0) and (C0 → C0) at g0
  r.conv += prod(g1) * 27 * (c.inChannels * (C0 / 2) + (C0 / 2) * (C0 / 2));
  r.conv += prod(g0) * 27 * ((C0 / 2) * C0 + C0 * C0);
  const mlp = (dim: number) => Math.floor(dim * c.mlpRatio);
  const blockMacs = (grid: Vec3, dim: number, geo: { padded: Vec3; tokens: number }, skip: boolean) => {
    const T = prod(grid);
    const Tp = prod(geo.padded); // attention runs on the zero-padded grid
    r.linear += Tp * dim * (skip ? 2 * dim : 3 * dim); // qkv (or kv: the skip block has no query projection)
    r.linear += Tp * dim * dim; // output projection
    r.attention += 2 * Tp * geo.tokens * dim; // q·kᵀ and A·v over all windows and heads
    r.linear += 2 * T * dim * mlp(dim); // MLP
  };
  plan.encoder.forEach((s, i) => {
    s.blocks.forEach((g) => blockMacs(s.grid, s.dim, g, false));
    if (i < 3) {
      const next = plan.encoder[i + 1];
      r.conv += prod(next.grid) * prod(c.downKernels[i]) * s.dim * next.dim;
    }
  });
  plan.decoder.forEach((s, j) => {
    // up-sampling ConvTranspose3d (2C → C) with kernel = stride: each input voxel writes prod(k) outputs
    const inGrid = j === 0 ? plan.encoder[3].grid : plan.decoder[j - 1].grid;
    r.convT += prod(inGrid) * prod(c.upKernels[j]) * 2 * s.dim * s.dim;
    s.blocks.forEach((g, b) => blockMacs(s.grid, s.dim, g, b === 0));
  });
  // heads: ConvTranspose3d (C_level → K) with kernel = stride = patch; full-res head on the shallowest decoder stage
  const heads = ds ? [2, 1, 0] : [2];
  for (const j of heads) {
    const s = plan.decoder[j];
    r.convT += prod(s.grid) * prod(c.patchSize) * s.dim * c.numClasses;
  }
  r.total = r.conv + r.convT + r.linear + r.attention;
  return r;
}

/** Matmul/conv FLOPs of one training step (forward + backward ≈ 3 × forward) for a batch. */
export function nnFormerStepFlops(c: NnFormerConfig, batch = 1, opts: { deepSupervision?: boolean } = {}): number {
  return 3 * 2 * nnFormerForwardMacs(c, opts).total * batch;
}
