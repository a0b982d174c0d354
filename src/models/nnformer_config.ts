// nnFormer's configuration and its plan: the shapes of every stage (grids, widths, heads, window geometry, drop-path
// rates), computed once and used by the check, the parameter list and the forward. Paper: arXiv 2109.03201 §2;
// the fields follow the official code 282857341/nnFormer @ d48aaeb (see docs of each field).

import {
  blockGeometry,
  officialRelativePositionIndex,
  rpbTableRows,
  type WindowGeometry,
} from "../layers/window_attention3d";
import { cube, type Vec3 } from "../runtime/math";

export interface NnFormerConfig {
  inChannels: number;
  /** Output classes including background (Synapse 14, ACDC 4, Tumor 4). */
  numClasses: number;
  /** Training crop [D, H, W] = (S, H, W) of the official code; the network is not size-agnostic. */
  cropSize: Vec3;
  /** Embedding patch [pD, pH, pW]; also kernel = stride of the output heads. Synapse (2,4,4). */
  patchSize: Vec3;
  /** Embedding width C0 (Synapse 192, ACDC/Tumor 96); stage i has C0·2^i channels. Even (proj1 makes C0/2). */
  embedDim: number;
  /** Transformer blocks per encoder stage (4 stages). The decoder uses depths[2], depths[1], depths[0] (deep→shallow). */
  depths: number[];
  /** Heads per encoder stage (4). */
  numHeads: number[];
  /** Heads per decoder stage, deep→shallow (3). Synapse 24,12,6; Tumor 24,12,6 at half the width (head dim 16). */
  decoderHeads: number[];
  /** Window per encoder stage (4), before the global rule. */
  windowSizes: Vec3[];
  /** Window per decoder stage, deep→shallow (3). */
  decoderWindowSizes: Vec3[];
  /** Strides of the two embedding convs (kernel 3, padding 1); their product is the patch. */
  embedStrides: { proj1: Vec3; proj2: Vec3 };
  /** Down-sampling conv after encoder stages 0..2 ("PatchMerging"): kernel, stride, padding. */
  downKernels: Vec3[];
  downStrides: Vec3[];
  downPaddings: Vec3[];
  /** Up-sampling ConvTranspose3d per decoder stage, deep→shallow: kernel = stride, and PyTorch output_padding. */
  upKernels: Vec3[];
  upOutputPaddings: Vec3[];
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

/** A stage of the encoder or decoder as the blocks see it. */
export interface StagePlan {
  grid: Vec3;
  dim: number;
  heads: number;
  /** Geometry per block (decoder block 0 is the skip-attention block). */
  blocks: WindowGeometry[];
  /** Drop-path rate per block. */
  dropPath: number[];
}

export interface NnFormerPlan {
  /** Grid after proj1 and after proj2 (= encoder stage 0 grid). */
  embedGrids: [Vec3, Vec3];
  /** Encoder stages 0..3. */
  encoder: StagePlan[];
  /** Decoder stages deep→shallow; decoder[j] is torch `decoder.layers.{2-j}` and works at encoder level 2-j. */
  decoder: StagePlan[];
}

const convOut = (n: number, k: number, s: number, p: number) => Math.floor((n + 2 * p - k) / s) + 1;
const convOut3 = (g: Vec3, k: Vec3, s: Vec3, p: Vec3): Vec3 => g.map((n, a) => convOut(n, k[a], s[a], p[a])) as Vec3;
const linspace = (hi: number, n: number) => Array.from({ length: n }, (_, i) => (n === 1 ? 0 : (hi * i) / (n - 1)));
const fmt = (v: unknown) => JSON.stringify(v);

/** The shapes of every stage; throws on configs that cannot be built (see checkNnFormerConfig for the full check). */
export function planNnFormer(c: NnFormerConfig): NnFormerPlan {
  const g1 = convOut3(c.cropSize, cube(3), c.embedStrides.proj1, cube(1));
  const g0 = convOut3(g1, cube(3), c.embedStrides.proj2, cube(1));
  const grids: Vec3[] = [g0];
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
export function checkNnFormerConfig(c: NnFormerConfig): void {
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
    const got = from.map((n, a) => n * c.upKernels[j][a] + c.upOutputPaddings[j][a]) as Vec3;
    if (got.some((n, a) => n !== to[a])) {
      bad(
        `upKernels[${j}]/upOutputPaddings[${j}]`,
        [c.upKernels[j], c.upOutputPaddings[j]],
        `decoder stage ${j} up-samples ${fmt(from)} to ${fmt(got)} but the skip grid is ${fmt(to)}; choose kernel and output padding so that grid·k + o = skip`,
      );
    }
  }
  const checkStage = (s: StagePlan, where: string, heads: string, win: string, window: Vec3) => {
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
