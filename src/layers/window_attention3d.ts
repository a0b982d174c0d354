import type { Vec3 } from "../runtime/math";
// 3D (shifted-)window attention pieces shared by the nnFormer blocks: the relative-position-bias index (with the
// official quirk), the −100 shift mask, and gather indices that do pad + roll + window partition (and the reverse)
// as ONE row gather on a token matrix [B·S·H·W, C], so nothing above rank 2 is ever sliced or transposed.
// Spec: docs/nnformer.md §2.3–2.4.

/** Tokens per window, N = w0·w1·w2. */
export function windowTokens(w: Vec3): number {
  return w[0] * w[1] * w[2];
}

/** Rows of the relative-position-bias table: (2w0−1)(2w1−1)(2w2−1) (all of them count as parameters). */
export function rpbTableRows(w: Vec3): number {
  return (2 * w[0] - 1) * (2 * w[1] - 1) * (2 * w[2] - 1);
}

/**
 * The official relative_position_index [N·N] (row-major over (i, j)): per axis δ = c_i − c_j + (w − 1) over an
 * 'ij' meshgrid, then idx = δs·(3·w1 − 1) + δh·(2·w1 − 1) + δw. Deliberately the official formula, which uses w1
 * twice (a correct 3D Swin would use (2w1−1)(2w2−1) and (2w2−1)); replicated for weight and numeric parity.
 */
export function officialRelativePositionIndex(w: Vec3): Int32Array {
  const N = windowTokens(w);
  const cs = new Int32Array(N),
    ch = new Int32Array(N),
    cw = new Int32Array(N);
  let t = 0;
  for (let a = 0; a < w[0]; a++)
    for (let b = 0; b < w[1]; b++)
      for (let c = 0; c < w[2]; c++, t++) {
        cs[t] = a;
        ch[t] = b;
        cw[t] = c;
      }
  const out = new Int32Array(N * N);
  const mS = 3 * w[1] - 1,
    mH = 2 * w[1] - 1; // sic: w1 in both multipliers
  for (let i = 0; i < N; i++)
    for (let j = 0; j < N; j++) {
      const ds = cs[i] - cs[j] + w[0] - 1,
        dh = ch[i] - ch[j] + w[1] - 1,
        dw = cw[i] - cw[j] + w[2] - 1;
      out[i * N + j] = ds * mS + dh * mH + dw;
    }
  return out;
}

/** How one transformer block sees its token grid: window, shift, padded grid, mask on/off. */
export interface WindowGeometry {
  /** Token grid [S, H, W] of the stage. */
  grid: Vec3;
  /** Effective window (after the global rule). */
  window: Vec3;
  /** Cyclic shift per axis; the map is rolled by −shift only when every component is > 0 (official condition). */
  shift: Vec3;
  /** Grid zero-padded up to window multiples. */
  padded: Vec3;
  /** Windows per batch item. */
  numWindows: number;
  /** Tokens per window. */
  tokens: number;
  /** True when this block rolls the map. */
  rolled: boolean;
  /** True when the −100 shift mask is added (rolled and the config's shiftMasked). */
  masked: boolean;
}

/**
 * Geometry of a block. `rule` is the config's globalRule: "min" (Synapse/Tumor: if min(grid) ≤ w the window becomes
 * min(grid) on every axis and the shift 0; window must be cubic) or "equal" (ACDC: shift 0 only when grid == window).
 */
export function blockGeometry(
  grid: Vec3,
  window: Vec3,
  shifted: boolean,
  rule: "min" | "equal",
  shiftMasked: boolean,
): WindowGeometry {
  let w: Vec3 = [...window] as Vec3;
  let shift: Vec3 = shifted ? [Math.floor(w[0] / 2), Math.floor(w[1] / 2), Math.floor(w[2] / 2)] : [0, 0, 0];
  if (rule === "min") {
    const m = Math.min(...grid);
    if (m <= w[0]) {
      w = [m, m, m];
      shift = [0, 0, 0];
    }
  } else if (grid[0] === w[0] && grid[1] === w[1] && grid[2] === w[2]) {
    shift = [0, 0, 0];
  }
  const padded = grid.map((g, a) => Math.ceil(g / w[a]) * w[a]) as Vec3;
  const rolled = shift[0] > 0 && shift[1] > 0 && shift[2] > 0;
  const numWindows = (padded[0] / w[0]) * (padded[1] / w[1]) * (padded[2] / w[2]);
  return { grid, window: w, shift, padded, numWindows, tokens: windowTokens(w), rolled, masked: rolled && shiftMasked };
}

/**
 * The shift mask [nW, N, N] (flattened) on the padded grid: 27 regions from per-axis ranges [0, P−w), [P−w, P−sh),
 * [P−sh, P); 0 where two tokens share a region, −100 (not −inf, as in the official code) otherwise.
 */
export function shiftMask(g: WindowGeometry): Float32Array {
  const { padded: P, window: w, shift: sh, tokens: N, numWindows } = g;
  const region = (p: number, a: number) => (p < P[a] - w[a] ? 0 : p < P[a] - sh[a] ? 1 : 2);
  const out = new Float32Array(numWindows * N * N);
  const label = new Int32Array(N);
  const nb = [P[0] / w[0], P[1] / w[1], P[2] / w[2]];
  let win = 0;
  for (let bs = 0; bs < nb[0]; bs++)
    for (let bh = 0; bh < nb[1]; bh++)
      for (let bw = 0; bw < nb[2]; bw++, win++) {
        let t = 0;
        for (let i = 0; i < w[0]; i++)
          for (let j = 0; j < w[1]; j++)
            for (let k = 0; k < w[2]; k++, t++) {
              label[t] = region(bs * w[0] + i, 0) * 9 + region(bh * w[1] + j, 1) * 3 + region(bw * w[2] + k, 2);
            }
        const base = win * N * N;
        for (let i = 0; i < N; i++)
          for (let j = 0; j < N; j++) out[base + i * N + j] = label[i] === label[j] ? 0 : -100;
      }
  return out;
}

/**
 * Row index for every window token, window-major over the batch ([B·nW·N]): the source row in the token matrix
 * [B·S·H·W, C], or `padRow` for a position in the zero padding. Folds in the roll by −shift (torch.roll semantics:
 * rolled[p] = x[(p + shift) mod P]) and the partition permute (B, S/w0, H/w1, W/w2, w0, w1, w2).
 */
export function partitionIndex(g: WindowGeometry, batch: number, padRow: number): Int32Array {
  const { grid: G, padded: P, window: w, tokens: N, numWindows } = g;
  const sh = g.rolled ? g.shift : [0, 0, 0];
  const L = G[0] * G[1] * G[2];
  const out = new Int32Array(batch * numWindows * N);
  let o = 0;
  for (let b = 0; b < batch; b++)
    for (let bs = 0; bs < P[0] / w[0]; bs++)
      for (let bh = 0; bh < P[1] / w[1]; bh++)
        for (let bw = 0; bw < P[2] / w[2]; bw++)
          for (let i = 0; i < w[0]; i++)
            for (let j = 0; j < w[1]; j++)
              for (let k = 0; k < w[2]; k++) {
                const s = (bs * w[0] + i + sh[0]) % P[0],
                  h = (bh * w[1] + j + sh[1]) % P[1],
                  x = (bw * w[2] + k + sh[2]) % P[2];
                out[o++] = s < G[0] && h < G[1] && x < G[2] ? b * L + (s * G[1] + h) * G[2] + x : padRow;
              }
  return out;
}

/** The inverse of partitionIndex on real tokens: for every token (b, s, h, w) its row among the [B·nW·N] window rows. */
export function mergeIndex(g: WindowGeometry, batch: number): Int32Array {
  const { grid: G, padded: P, window: w, tokens: N, numWindows } = g;
  const sh = g.rolled ? g.shift : [0, 0, 0];
  const nb = [P[0] / w[0], P[1] / w[1], P[2] / w[2]];
  const out = new Int32Array(batch * G[0] * G[1] * G[2]);
  let o = 0;
  for (let b = 0; b < batch; b++)
    for (let s = 0; s < G[0]; s++)
      for (let h = 0; h < G[1]; h++)
        for (let x = 0; x < G[2]; x++) {
          // rolled back by +shift: token q sat at window position p = (q − shift) mod P
          const ps = (s - sh[0] + P[0]) % P[0],
            ph = (h - sh[1] + P[1]) % P[1],
            px = (x - sh[2] + P[2]) % P[2];
          const win = (Math.floor(ps / w[0]) * nb[1] + Math.floor(ph / w[1])) * nb[2] + Math.floor(px / w[2]);
          const t = ((ps % w[0]) * w[1] + (ph % w[1])) * w[2] + (px % w[2]);
          out[o++] = (b * numWindows + win) * N + t;
        }
  return out;
}

/**
 * An additive key mask [B·nW, N, N] (flattened) for masked-token attention (MAE): key j of a window gets `value`
 * when its source token is not visible. `visible` is [B·S·H·W] (1 visible, 0 masked); padding tokens count as visible
 * (as in the official code, where they join attention). Add the shift mask yourself if the block has one.
 */
export function keyMaskFromVisibility(
  g: WindowGeometry,
  batch: number,
  visible: ArrayLike<number>,
  value = -1e9,
): Float32Array {
  const L = g.grid[0] * g.grid[1] * g.grid[2];
  if (visible.length !== batch * L) {
    throw new Error(`keyMaskFromVisibility: visible has ${visible.length} entries, expected B·S·H·W = ${batch * L}`);
  }
  const padRow = batch * L;
  const idx = partitionIndex(g, batch, padRow);
  const N = g.tokens,
    nW = batch * g.numWindows;
  const out = new Float32Array(nW * N * N);
  for (let win = 0; win < nW; win++) {
    for (let j = 0; j < N; j++) {
      const r = idx[win * N + j];
      if (r === padRow || visible[r]) continue;
      for (let i = 0; i < N; i++) out[(win * N + i) * N + j] = value;
    }
  }
  return out;
}
