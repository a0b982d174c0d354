// nnFormer: Zhou et al., "nnFormer: Volumetric Medical Image Segmentation via a 3D Transformer", IEEE TIP 2023
// (arXiv 2109.03201); official code 282857341/nnFormer @ d48aaeb. Spec: docs/nnformer.md.
// Differs from the reference code (no numeric effect): channels-last tensors; tokens kept as [B·S·H·W, C] matrices;
// pad + roll + window partition done as one row gather; attention output projection applied after the window merge.
// Faithful on purpose: the quirky relative-position index, −100 shift mask, skip attention without a query
// projection, the per-task global-window rule (§2.3), ACDC's unmasked roll and depth 14→15 padding.
import * as tf from "@tensorflow/tfjs";
import type { Ops, Triple } from "../layers/ops";
import { makeRng, seedFrom, normal, type Rng } from "../runtime/random";
import {
  blockGeometry,
  officialRelativePositionIndex,
  rpbTableRows,
  shiftMask,
  type WindowGeometry,
} from "../layers/window_attention3d";
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

export interface NnFormerConfig {
  inChannels: number;
  /** Output classes including background (Synapse 14, ACDC 4, Tumor 4). */
  numClasses: number;
  /** Training crop [D, H, W] = (S, H, W) of the official code; the network is not size-agnostic. */
  cropSize: Triple;
  /** Embedding patch [pD, pH, pW]; also kernel = stride of the output heads. Synapse (2,4,4). */
  patchSize: Triple;
  /** Embedding width C0 (Synapse 192, ACDC/Tumor 96); stage i has C0·2^i channels. Even (proj1 makes C0/2). */
  embedDim: number;
  /** Transformer blocks per encoder stage (4 stages). The decoder uses depths[2], depths[1], depths[0] (deep→shallow). */
  depths: number[];
  /** Heads per encoder stage (4). */
  numHeads: number[];
  /** Heads per decoder stage, deep→shallow (3). Synapse 24,12,6; Tumor 24,12,6 at half the width (head dim 16). */
  decoderHeads: number[];
  /** Window per encoder stage (4), before the global rule. */
  windowSizes: Triple[];
  /** Window per decoder stage, deep→shallow (3). */
  decoderWindowSizes: Triple[];
  /** Strides of the two embedding convs (kernel 3, padding 1); their product is the patch. */
  embedStrides: { proj1: Triple; proj2: Triple };
  /** Down-sampling conv after encoder stages 0..2 ("PatchMerging"): kernel, stride, padding. */
  downKernels: Triple[];
  downStrides: Triple[];
  downPaddings: Triple[];
  /** Up-sampling ConvTranspose3d per decoder stage, deep→shallow: kernel = stride, and PyTorch output_padding. */
  upKernels: Triple[];
  upOutputPaddings: Triple[];
  /** Separate heads at 1, ½, ¼ (Synapse only). */
  deepSupervision: boolean;
  /** Add the −100 shift mask in shifted blocks (Synapse/Tumor true; ACDC rolls without a mask). */
  shiftMasked: boolean;
  /** "min": window → min(grid), shift 0 when min(grid) ≤ w (Synapse/Tumor; cubic windows). "equal": shift 0 only when grid == window (ACDC). */
  globalRule: "min" | "equal";
  /** Zero-pad token grids to window multiples after LN (official; ACDC needs it for depth 14). False: grids must divide. */
  padTokensToWindow: boolean;
  /** Stochastic depth, linearly 0..rate over the encoder blocks and again over the decoder blocks (0.2). */
  dropPathRate: number;
  /** MLP hidden = floor(C·mlpRatio) (4). */
  mlpRatio: number;
}

const cube = (n: number): Triple => [n, n, n];
const K3S2P1 = {
  downKernels: [cube(3), cube(3), cube(3)],
  downStrides: [cube(2), cube(2), cube(2)],
  downPaddings: [cube(1), cube(1), cube(1)],
};
const UP2 = { upKernels: [cube(2), cube(2), cube(2)], upOutputPaddings: [cube(0), cube(0), cube(0)] };

/** Official Synapse (BTCV) network: 150,054,210 parameters. */
export const NNFORMER_SYNAPSE: NnFormerConfig = {
  inChannels: 1,
  numClasses: 14,
  cropSize: [64, 128, 128],
  patchSize: [2, 4, 4],
  embedDim: 192,
  depths: [2, 2, 2, 2],
  numHeads: [6, 12, 24, 48],
  decoderHeads: [24, 12, 6],
  windowSizes: [cube(4), cube(4), cube(8), cube(4)],
  decoderWindowSizes: [cube(8), cube(4), cube(4)],
  embedStrides: { proj1: [2, 2, 2], proj2: [1, 2, 2] },
  ...K3S2P1,
  ...UP2,
  deepSupervision: true,
  shiftMasked: true,
  globalRule: "min",
  padTokensToWindow: false,
  dropPathRate: 0.2,
  mlpRatio: 4,
};

/** Official ACDC network: 37,160,200 parameters. */
export const NNFORMER_ACDC: NnFormerConfig = {
  inChannels: 1,
  numClasses: 4,
  cropSize: [14, 160, 160],
  patchSize: [1, 4, 4],
  embedDim: 96,
  depths: [2, 2, 2, 2],
  numHeads: [3, 6, 12, 24],
  decoderHeads: [12, 6, 3],
  windowSizes: [
    [3, 5, 5],
    [3, 5, 5],
    [7, 10, 10],
    [3, 5, 5],
  ],
  decoderWindowSizes: [
    [7, 10, 10],
    [3, 5, 5],
    [3, 5, 5],
  ],
  embedStrides: { proj1: [1, 2, 2], proj2: [1, 2, 2] },
  downKernels: [[1, 3, 3], cube(3), cube(3)],
  downStrides: [[1, 2, 2], cube(2), cube(2)],
  downPaddings: [[0, 1, 1], cube(1), [0, 1, 1]],
  upKernels: [cube(2), cube(2), [1, 2, 2]],
  upOutputPaddings: [[1, 0, 0], cube(0), cube(0)],
  deepSupervision: false,
  shiftMasked: false,
  globalRule: "equal",
  padTokensToWindow: true,
  dropPathRate: 0.2,
  mlpRatio: 4,
};

/** Official Tumor (MSD BraTS) network: 37,606,726 parameters. */
export const NNFORMER_TUMOR: NnFormerConfig = {
  ...NNFORMER_SYNAPSE,
  inChannels: 4,
  numClasses: 4,
  cropSize: [128, 128, 128],
  patchSize: [4, 4, 4],
  embedDim: 96,
  numHeads: [3, 6, 12, 24],
  decoderHeads: [24, 12, 6],
  embedStrides: { proj1: [2, 2, 2], proj2: [2, 2, 2] },
  deepSupervision: false,
};

/** CPU benchmark preset for the 64³ phantoms: Synapse structure, embed 48 (9,522,078 params with 14 classes). */
export const NNFORMER_TINY: NnFormerConfig = {
  ...NNFORMER_SYNAPSE,
  numClasses: 9,
  cropSize: [64, 64, 64],
  embedDim: 48,
  numHeads: [3, 6, 12, 24],
  decoderHeads: [12, 6, 3],
};

/** Quick-study preset: crop 32×64×64, embed 24 (grids 16³/8³/4³/2³). */
export const NNFORMER_SMALL: NnFormerConfig = {
  ...NNFORMER_TINY,
  cropSize: [32, 64, 64],
  embedDim: 24,
};

/** The quick CPU study's network: embed 24 on 16×32×32 crops (grids 8³/4³/2³/1³), about 0.2 s per training step of 2 crops on wasm. */
export const NNFORMER_QUICK: NnFormerConfig = {
  ...NNFORMER_TINY,
  cropSize: [16, 32, 32],
  embedDim: 24,
};

/** Unit-test preset: crop 16×32×32, embed 12, 3 classes (grids 8³/4³/2³/1³; the shift mask still runs at 8³). */
export const NNFORMER_MICRO: NnFormerConfig = {
  ...NNFORMER_TINY,
  numClasses: 3,
  cropSize: [16, 32, 32],
  embedDim: 12,
  numHeads: [1, 2, 4, 8],
  decoderHeads: [4, 2, 1],
};

/**
 * ACDC structure at unit-test size (crop 14×64×64, embed 12): depth padding 14→15, rolled without a mask,
 * output_padding (1,0,0) and the k(1,2,2) up-sampling all run. Grids 14×16×16 / 14×8×8 / 7×4×4 / 3×2×2.
 */
export const NNFORMER_ACDC_MICRO: NnFormerConfig = {
  ...NNFORMER_ACDC,
  cropSize: [14, 64, 64],
  embedDim: 12,
  numHeads: [1, 2, 4, 8],
  decoderHeads: [4, 2, 1],
  windowSizes: [
    [3, 4, 4],
    [3, 4, 4],
    [7, 4, 4],
    [3, 2, 2],
  ],
  decoderWindowSizes: [
    [7, 4, 4],
    [3, 4, 4],
    [3, 4, 4],
  ],
};

// ---------------------------------------------------------------------------------------------------------------
// Shapes: one plan used by validation, parameter listing and forward.

/** A stage of the encoder or decoder as the blocks see it. */
export interface StagePlan {
  grid: Triple;
  dim: number;
  heads: number;
  /** Geometry per block (decoder block 0 is the skip-attention block). */
  blocks: WindowGeometry[];
  /** Drop-path rate per block. */
  dropPath: number[];
}

export interface NnFormerPlan {
  /** Grid after proj1 and after proj2 (= encoder stage 0 grid). */
  embedGrids: [Triple, Triple];
  /** Encoder stages 0..3. */
  encoder: StagePlan[];
  /** Decoder stages deep→shallow; decoder[j] is torch `decoder.layers.{2-j}` and works at encoder level 2-j. */
  decoder: StagePlan[];
}

const convOut = (n: number, k: number, s: number, p: number) => Math.floor((n + 2 * p - k) / s) + 1;
const convOut3 = (g: Triple, k: Triple, s: Triple, p: Triple): Triple =>
  g.map((n, a) => convOut(n, k[a], s[a], p[a])) as Triple;
const linspace = (hi: number, n: number) => Array.from({ length: n }, (_, i) => (n === 1 ? 0 : (hi * i) / (n - 1)));
const fmt = (v: unknown) => JSON.stringify(v);

/** The shapes of every stage; throws on configs that cannot be built (see validateNnFormerConfig for the full check). */
export function planNnFormer(c: NnFormerConfig): NnFormerPlan {
  const g1 = convOut3(c.cropSize, cube(3), c.embedStrides.proj1, cube(1));
  const g0 = convOut3(g1, cube(3), c.embedStrides.proj2, cube(1));
  const grids: Triple[] = [g0];
  for (let i = 0; i < 3; i++) grids.push(convOut3(grids[i], c.downKernels[i], c.downStrides[i], c.downPaddings[i]));
  const encDpr = linspace(
    c.dropPathRate,
    c.depths.reduce((a, b) => a + b, 0),
  );
  let k = 0;
  const encoder = grids.map((grid, i) => ({
    grid,
    dim: c.embedDim * 2 ** i,
    heads: c.numHeads[i],
    blocks: Array.from({ length: c.depths[i] }, (_, j) =>
      blockGeometry(grid, c.windowSizes[i], j % 2 === 1, c.globalRule, c.shiftMasked),
    ),
    dropPath: Array.from({ length: c.depths[i] }, () => encDpr[k++]),
  }));
  const decDepths = [c.depths[2], c.depths[1], c.depths[0]];
  const decDpr = linspace(
    c.dropPathRate,
    decDepths.reduce((a, b) => a + b, 0),
  );
  k = 0;
  const decoder = decDepths.map((depth, j) => {
    const level = 2 - j;
    const grid = grids[level];
    return {
      grid,
      dim: c.embedDim * 2 ** level,
      heads: c.decoderHeads[j],
      // block 0 (skip attention) is never shifted; every later block is (official BasicLayer_up)
      blocks: Array.from({ length: depth }, (_, b) =>
        blockGeometry(grid, c.decoderWindowSizes[j], b > 0, c.globalRule, c.shiftMasked),
      ),
      dropPath: Array.from({ length: depth }, () => decDpr[k++]),
    };
  });
  return { embedGrids: [g1, g0], encoder, decoder };
}

/** Throws, naming the field, its value and the fix, when the config cannot build an nnFormer. */
export function validateNnFormerConfig(c: NnFormerConfig): void {
  const bad = (field: string, value: unknown, fix: string): never => {
    throw new Error(`nnFormer config: ${field} = ${fmt(value)}: ${fix}`);
  };
  const isTriple = (t: unknown) => Array.isArray(t) && t.length === 3 && t.every((n) => Number.isInteger(n) && n >= 0);
  for (const f of ["inChannels", "numClasses", "embedDim"] as const) {
    if (!Number.isInteger(c[f]) || c[f] < 1) bad(f, c[f], "use a positive integer");
  }
  if (c.embedDim % 2)
    bad("embedDim", c.embedDim, "use an even width (the first embedding conv has embedDim/2 channels)");
  for (const f of ["cropSize", "patchSize"] as const) {
    if (!isTriple(c[f]) || c[f].some((n) => n < 1)) bad(f, c[f], "give three positive integers [D, H, W]");
  }
  const lengths: Array<[keyof NnFormerConfig, number]> = [
    ["depths", 4],
    ["numHeads", 4],
    ["windowSizes", 4],
    ["decoderHeads", 3],
    ["decoderWindowSizes", 3],
    ["downKernels", 3],
    ["downStrides", 3],
    ["downPaddings", 3],
    ["upKernels", 3],
    ["upOutputPaddings", 3],
  ];
  for (const [f, n] of lengths) {
    const v = c[f] as unknown[];
    if (!Array.isArray(v) || v.length !== n)
      bad(
        f,
        v,
        `give ${n} entries (${n === 4 ? "one per encoder stage" : n === 3 && f.startsWith("down") ? "one per down-sampling, stages 0..2" : "one per decoder stage, deep→shallow"})`,
      );
  }
  for (const f of [
    "windowSizes",
    "decoderWindowSizes",
    "downKernels",
    "downStrides",
    "downPaddings",
    "upKernels",
    "upOutputPaddings",
  ] as const) {
    c[f].forEach((t, i) => {
      if (!isTriple(t)) bad(`${f}[${i}]`, t, "give three non-negative integers");
    });
  }
  for (const f of ["windowSizes", "decoderWindowSizes", "downKernels", "downStrides", "upKernels"] as const) {
    c[f].forEach((t, i) => {
      if (t.some((n) => n < 1)) bad(`${f}[${i}]`, t, "use sizes ≥ 1");
    });
  }
  c.depths.forEach((d, i) => {
    if (!Number.isInteger(d) || d < 1) bad(`depths[${i}]`, d, "use at least 1 block");
  });
  for (const f of ["proj1", "proj2"] as const) {
    const s = c.embedStrides?.[f];
    if (!isTriple(s) || s.some((n) => n < 1)) bad(`embedStrides.${f}`, s, "give three strides ≥ 1");
  }
  c.upOutputPaddings.forEach((o, j) =>
    o.forEach((v, a) => {
      if (v >= c.upKernels[j][a])
        bad(`upOutputPaddings[${j}]`, o, `each entry must be smaller than the kernel/stride ${fmt(c.upKernels[j])}`);
    }),
  );
  if (!(c.dropPathRate >= 0 && c.dropPathRate < 1))
    bad("dropPathRate", c.dropPathRate, "use a rate in [0, 1) (official 0.2)");
  if (!(c.mlpRatio > 0)) bad("mlpRatio", c.mlpRatio, "use a positive ratio (official 4)");
  if (c.globalRule !== "min" && c.globalRule !== "equal")
    bad("globalRule", c.globalRule, 'use "min" (Synapse/Tumor) or "equal" (ACDC)');
  c.patchSize.forEach((p, a) => {
    if (c.cropSize[a] % p)
      bad("cropSize", c.cropSize, `each side must be a multiple of patchSize ${fmt(c.patchSize)} (axis ${a})`);
    const s = c.embedStrides.proj1[a] * c.embedStrides.proj2[a];
    if (s !== p)
      bad(
        "embedStrides",
        c.embedStrides,
        `proj1 × proj2 strides must equal patchSize ${fmt(c.patchSize)} on every axis (axis ${a} gives ${s})`,
      );
  });
  const plan = planNnFormer(c);
  const grids = plan.encoder.map((s) => s.grid);
  grids.forEach((g, i) => {
    if (g.some((n) => n < 1))
      bad(
        "cropSize",
        c.cropSize,
        `too small: encoder stage ${i} grid would be ${fmt(g)}; use a crop of at least patch × 8 per axis`,
      );
  });
  for (let i = 0; i < 3; i++) {
    grids[i].forEach((n, a) => {
      if (n < c.downStrides[i][a])
        bad(
          "cropSize",
          c.cropSize,
          `too small: encoder stage ${i} grid ${fmt(grids[i])} cannot be down-sampled by ${fmt(c.downStrides[i])}; use a crop of at least patch × the product of the down-sampling strides per axis`,
        );
    });
  }
  // decoder j up-samples level 3-j to level 2-j and must land exactly on the skip grid
  for (let j = 0; j < 3; j++) {
    const from = grids[3 - j],
      to = grids[2 - j];
    const got = from.map((n, a) => n * c.upKernels[j][a] + c.upOutputPaddings[j][a]) as Triple;
    if (got.some((n, a) => n !== to[a])) {
      bad(
        `upKernels[${j}]/upOutputPaddings[${j}]`,
        [c.upKernels[j], c.upOutputPaddings[j]],
        `decoder stage ${j} up-samples ${fmt(from)} to ${fmt(got)} but the skip grid is ${fmt(to)}; choose kernel and output padding so that grid·k + o = skip`,
      );
    }
  }
  const checkStage = (s: StagePlan, where: string, heads: string, win: string, window: Triple) => {
    if (!Number.isInteger(s.heads) || s.heads < 1 || s.dim % s.heads)
      bad(heads, s.heads, `${where} has ${s.dim} channels; use a head count that divides it`);
    if (c.globalRule === "min" && (window[0] !== window[1] || window[1] !== window[2])) {
      bad(
        win,
        window,
        'globalRule "min" (official Synapse/Tumor code) takes cubic windows; use [w, w, w] or globalRule "equal"',
      );
    }
    for (const g of s.blocks) {
      const reach = officialRelativePositionIndex(g.window).reduce((m, v) => Math.max(m, v), 0) + 1;
      if (reach > rpbTableRows(g.window)) {
        bad(
          win,
          window,
          `${where}: with window ${fmt(g.window)} the official relative-position index reaches row ${reach - 1} of a ${rpbTableRows(g.window)}-row table (it uses w1 twice; the official code fails with IndexError); choose a window with w1 ≥ w2 or larger`,
        );
      }
      const isGlobal = g.window.every((w, a) => w >= s.grid[a]);
      if (c.globalRule === "equal" && g.window.some((w, a) => w > s.grid[a]) && !isGlobal) {
        bad(
          win,
          window,
          `${where} grid ${fmt(s.grid)} is smaller than the window on some axis; use a window ≤ the grid`,
        );
      }
      if (!c.padTokensToWindow && g.grid.some((n, a) => n % g.window[a])) {
        bad(
          win,
          window,
          `${where} token grid ${fmt(s.grid)} is not divisible by the window ${fmt(g.window)}; choose a window that divides the grid (or crop/patch that make it divide), or set padTokensToWindow: true (official zero padding)`,
        );
      }
    }
  };
  plan.encoder.forEach((s, i) =>
    checkStage(s, `encoder stage ${i}`, `numHeads[${i}]`, `windowSizes[${i}]`, c.windowSizes[i]),
  );
  plan.decoder.forEach((s, j) =>
    checkStage(
      s,
      `decoder stage ${j} (deep→shallow)`,
      `decoderHeads[${j}]`,
      `decoderWindowSizes[${j}]`,
      c.decoderWindowSizes[j],
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Parameters: one list of official names and shapes, used to count, allocate, import and export.

/** How a tensor maps between PyTorch and our layout. */
export type ParamKind = "linear" | "conv" | "convT" | "vector" | "rpb";

export interface ParamSpec {
  /** Official PyTorch state_dict name. */
  name: string;
  /** Our (TF.js) shape. */
  shape: number[];
  /** PyTorch shape. */
  torchShape: number[];
  kind: ParamKind;
  /** PyTorch default init: "uniform" U(±1/√fanIn), "ones", "zeros", "trunc_normal" (std 0.02). */
  init: "uniform" | "ones" | "zeros" | "trunc_normal";
  fanIn: number;
  /** Component row of the parameter table (spec §3), e.g. "enc0.blocks". */
  group: string;
}

/** A non-trainable buffer in the official state_dict (relative_position_index, int64 [N, N]). */
export interface BufferSpec {
  name: string;
  shape: [number, number];
  window: Triple;
}

/** Permutation taking the PyTorch layout to ours (Linear (out,in)→(in,out); Conv3d (o,i,d,h,w)→(d,h,w,i,o); ConvT (i,o,d,h,w)→(d,h,w,o,i)). */
export function torchToTfPerm(kind: ParamKind): number[] | null {
  return kind === "linear" ? [1, 0] : kind === "conv" || kind === "convT" ? [2, 3, 4, 1, 0] : null;
}

const prod = (t: number[]) => t.reduce((a, b) => a * b, 1);

/** All parameters and buffers of a config in official order. Does not allocate. */
export function nnFormerParamSpecs(c: NnFormerConfig): { params: ParamSpec[]; buffers: BufferSpec[] } {
  const plan = planNnFormer(c);
  const params: ParamSpec[] = [];
  const buffers: BufferSpec[] = [];
  const norm = (name: string, C: number, group: string) => {
    params.push({ name: `${name}.weight`, shape: [C], torchShape: [C], kind: "vector", init: "ones", fanIn: C, group });
    params.push({ name: `${name}.bias`, shape: [C], torchShape: [C], kind: "vector", init: "zeros", fanIn: C, group });
  };
  const lin = (name: string, cin: number, cout: number, group: string) => {
    params.push({
      name: `${name}.weight`,
      shape: [cin, cout],
      torchShape: [cout, cin],
      kind: "linear",
      init: "uniform",
      fanIn: cin,
      group,
    });
    params.push({
      name: `${name}.bias`,
      shape: [cout],
      torchShape: [cout],
      kind: "vector",
      init: "uniform",
      fanIn: cin,
      group,
    });
  };
  const conv = (name: string, cin: number, cout: number, k: Triple, group: string) => {
    const fanIn = cin * prod(k);
    params.push({
      name: `${name}.weight`,
      shape: [...k, cin, cout],
      torchShape: [cout, cin, ...k],
      kind: "conv",
      init: "uniform",
      fanIn,
      group,
    });
    params.push({
      name: `${name}.bias`,
      shape: [cout],
      torchShape: [cout],
      kind: "vector",
      init: "uniform",
      fanIn,
      group,
    });
  };
  const convT = (name: string, cin: number, cout: number, k: Triple, group: string) => {
    const fanIn = cout * prod(k); // torch computes ConvTranspose fan_in from weight dim 1 (= out channels)
    params.push({
      name: `${name}.weight`,
      shape: [...k, cout, cin],
      torchShape: [cin, cout, ...k],
      kind: "convT",
      init: "uniform",
      fanIn,
      group,
    });
    params.push({
      name: `${name}.bias`,
      shape: [cout],
      torchShape: [cout],
      kind: "vector",
      init: "uniform",
      fanIn,
      group,
    });
  };
  const block = (prefix: string, C: number, heads: number, g: WindowGeometry, kv: boolean, group: string) => {
    norm(`${prefix}.norm1`, C, group);
    const T = rpbTableRows(g.window);
    params.push({
      name: `${prefix}.attn.relative_position_bias_table`,
      shape: [T, heads],
      torchShape: [T, heads],
      kind: "rpb",
      init: "trunc_normal",
      fanIn: T,
      group,
    });
    buffers.push({ name: `${prefix}.attn.relative_position_index`, shape: [g.tokens, g.tokens], window: g.window });
    lin(kv ? `${prefix}.attn.kv` : `${prefix}.attn.qkv`, C, (kv ? 2 : 3) * C, group);
    lin(`${prefix}.attn.proj`, C, C, group);
    norm(`${prefix}.norm2`, C, group);
    const hidden = Math.floor(C * c.mlpRatio);
    lin(`${prefix}.mlp.fc1`, C, hidden, group);
    lin(`${prefix}.mlp.fc2`, hidden, C, group);
  };
  const E = c.embedDim,
    h = E / 2,
    pe = "model_down.patch_embed";
  conv(`${pe}.proj1.conv1`, c.inChannels, h, cube(3), "embedding");
  conv(`${pe}.proj1.conv2`, h, h, cube(3), "embedding");
  norm(`${pe}.proj1.norm1`, h, "embedding");
  norm(`${pe}.proj1.norm2`, h, "embedding");
  conv(`${pe}.proj2.conv1`, h, E, cube(3), "embedding");
  conv(`${pe}.proj2.conv2`, E, E, cube(3), "embedding");
  norm(`${pe}.proj2.norm1`, E, "embedding");
  norm(`${pe}.norm`, E, "embedding");
  plan.encoder.forEach((s, i) => {
    s.blocks.forEach((g, j) => block(`model_down.layers.${i}.blocks.${j}`, s.dim, s.heads, g, false, `enc${i}.blocks`));
    if (i < 3) {
      conv(`model_down.layers.${i}.downsample.reduction`, s.dim, 2 * s.dim, c.downKernels[i], `enc${i}.down`);
      norm(`model_down.layers.${i}.downsample.norm`, s.dim, `enc${i}.down`);
    }
  });
  plan.encoder.forEach((s, i) => norm(`model_down.norm${i}`, s.dim, `enc${i}.norm`));
  // torch builds decoder.layers shallow-first: decoder.layers.0 is the shallowest stage
  for (let t = 0; t < 3; t++) {
    const j = 2 - t,
      s = plan.decoder[j],
      name = DECODER_NAMES[j];
    s.blocks.forEach((g, b) =>
      block(`decoder.layers.${t}.blocks.${b}`, s.dim, s.heads, g, b === 0, `dec.${name}.blocks`),
    );
    norm(`decoder.layers.${t}.Upsample.norm`, 2 * s.dim, `dec.${name}.up`);
    convT(`decoder.layers.${t}.Upsample.up`, 2 * s.dim, s.dim, c.upKernels[j], `dec.${name}.up`);
  }
  const nHeads = c.deepSupervision ? 3 : 1;
  for (let i = 0; i < nHeads; i++) convT(`final.${i}.up`, E * 2 ** i, c.numClasses, c.patchSize, "heads");
  return { params, buffers };
}

const DECODER_NAMES = ["deep", "mid", "shallow"];

/** Total trainable parameters of a config, without allocating them. */
export function countNnFormerParams(c: NnFormerConfig): number {
  return nnFormerParamSpecs(c).params.reduce((n, p) => n + prod(p.shape), 0);
}

/** One row per component as in the spec's §3 table (embedding, encN.blocks/norm/down, dec.deep|mid|shallow.up/blocks, heads). */
export function nnFormerParamTable(c: NnFormerConfig): Array<{ component: string; params: number }> {
  const rows = new Map<string, number>();
  for (const p of nnFormerParamSpecs(c).params) rows.set(p.group, (rows.get(p.group) ?? 0) + prod(p.shape));
  return [...rows].map(([component, params]) => ({ component, params }));
}

// ---------------------------------------------------------------------------------------------------------------
// The model.

/**
 * Optional hooks that let MAE pretraining run the encoder on a visibility mask (none by default). Each hook receives
 * tensors inside the forward's tidy scope and must return a tensor of the same shape.
 */
export interface EncoderMaskHooks {
  /** After each encoder conv (4 embedding convs, 3 down-sampling convs), before its GELU/LN. x [B, D, H, W, C]. */
  afterConv?(x: tf.Tensor5D, site: { name: string; grid: Triple }): tf.Tensor5D;
  /** Additive key mask [B·nW, N, N] for an encoder block's attention (see keyMaskFromVisibility), or null. Added to the shift mask. */
  keyMask?(site: { stage: number; block: number; geometry: WindowGeometry; batch: number }): tf.Tensor3D | null;
  /** After each encoder block: tokens [B·S·H·W, C] (e.g. zero the masked tokens). */
  afterBlock?(x: tf.Tensor2D, site: { stage: number; block: number; grid: Triple }): tf.Tensor2D;
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
}

export interface NnFormerEncoding {
  /** LN'd stage outputs as token matrices [B·S·H·W, C_i], stages 0..3 (skips[3] is the bottleneck). */
  skips: tf.Tensor2D[];
  /** Token grid of each stage. */
  grids: Triple[];
  batch: number;
}

export interface NnFormerOutput {
  /** Full-resolution logits [B, D, H, W, K]. */
  logits: tf.Tensor5D;
  /** Deep-supervision logits at ½ and ¼ (empty without deep supervision). */
  aux: tf.Tensor5D[];
}

let modelCounter = 0;

/** nnFormer with weights held as tf.Variables keyed by the official state_dict names. */
export class NnFormer {
  readonly config: NnFormerConfig;
  readonly plan: NnFormerPlan;
  readonly specs: { params: ParamSpec[]; buffers: BufferSpec[] };
  /** Trainable weights by official name, in our layout. */
  readonly params = new Map<string, tf.Variable>();
  /** relative_position_index buffers by official name (computed, not trained). */
  readonly buffers = new Map<string, Int32Array>();
  private readonly rpbIndex = new Map<string, tf.Tensor1D>();
  private readonly masks = new Map<string, tf.Tensor3D>();
  private readonly windowIndices = new WindowIndexCache();
  private disposed = false;

  /** `init: "pytorch"` (default) draws PyTorch-default weights from `seed`; "zeros" leaves them to be loaded. */
  constructor(config: NnFormerConfig, opts: { seed?: number; init?: "pytorch" | "zeros" } = {}) {
    validateNnFormerConfig(config);
    this.config = JSON.parse(JSON.stringify(config));
    this.plan = planNnFormer(this.config);
    this.specs = nnFormerParamSpecs(this.config);
    const seed = opts.seed ?? 0;
    const id = modelCounter++;
    for (const s of this.specs.params) {
      const values =
        opts.init === "zeros"
          ? new Float32Array(prod(s.shape))
          : initValues(s, makeRng(seedFrom("nnformer", seed, s.name)));
      const t = tf.tensor(values, s.shape);
      this.params.set(s.name, tf.variable(t, true, `nnformer${id}/${s.name}`));
      t.dispose(); // the variable keeps the data
    }
    for (const b of this.specs.buffers) {
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

  /** Trainable parameter count. */
  numParams(): number {
    return countNnFormerParams(this.config);
  }

  /** Parameters per component (spec §3 rows). */
  paramTable(): Array<{ component: string; params: number }> {
    return nnFormerParamTable(this.config);
  }

  /** All trainable variables (for optimizers / tf.variableGrads). */
  trainableVariables(): tf.Variable[] {
    return [...this.params.values()];
  }

  /** Frees the variables and cached tensors. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    tf.dispose([...this.params.values(), ...this.rpbIndex.values(), ...this.masks.values()]);
  }

  private getter(): ParamGetter {
    return (name) => {
      const v = this.params.get(name);
      if (!v) throw new Error(`nnFormer: no parameter named ${name}`);
      return v;
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

  /** Embedding + encoder (§2.1–2.2): the LN'd skip of every stage. */
  encode(x: tf.Tensor5D, opts: NnFormerForwardOptions): NnFormerEncoding {
    this.checkInput(x);
    const B = x.shape[0];
    const ctx = this.context(B, opts);
    const p = this.getter();
    const c = this.config,
      ops = ctx.ops,
      hooks = opts.mask;
    const afterConv = (t: tf.Tensor5D, name: string) =>
      hooks?.afterConv ? hooks.afterConv(t, { name, grid: t.shape.slice(1, 4) as Triple }) : t;
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
          t = transformerBlock(ctx, t, p, `model_down.layers.${i}.blocks.${j}`, g, s.heads, s.dropPath[j], {
            ...this.extras(g),
            keyMask,
          });
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
          x =
            b === 0
              ? skipAttentionBlock(
                  ctx,
                  x,
                  xUp,
                  skip,
                  p,
                  `${prefix}.blocks.0`,
                  g,
                  s.heads,
                  s.dropPath[0],
                  this.extras(g),
                )
              : transformerBlock(ctx, x, p, `${prefix}.blocks.${b}`, g, s.heads, s.dropPath[b], this.extras(g));
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
}

/** PyTorch-default initial values for one parameter, from its own seeded stream. */
function initValues(s: ParamSpec, rng: Rng): Float32Array {
  const n = prod(s.shape);
  const out = new Float32Array(n);
  if (s.init === "ones") out.fill(1);
  else if (s.init === "uniform") {
    const bound = 1 / Math.sqrt(s.fanIn); // kaiming_uniform(a=√5) and the bias rule both give U(±1/√fan_in)
    for (let i = 0; i < n; i++) out[i] = (2 * rng() - 1) * bound;
  } else if (s.init === "trunc_normal") {
    for (let i = 0; i < n; i++) {
      let v = normal(rng, 0, 0.02);
      while (v < -2 || v > 2) v = normal(rng, 0, 0.02); // timm trunc_normal_ cuts at ±2 (absolute)
      out[i] = v;
    }
  }
  return out;
}
