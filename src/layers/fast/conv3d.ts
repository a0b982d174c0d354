// Conv3d with hand-written gradients for tfjs-wasm (docs/wasm-fast-ops.md §2), channels-last, any kernel, stride and
// symmetric padding, batch B ≥ 1. Two routes, picked by output size (pickConvRoute):
//
// "z-split conv2d" (default): the depth axis is split off and every depth tap kz is one tf.conv2d over the
// planes sz·z + kz, with the B·Do planes as the conv2d batch (XNNPACK igemm on wasm).
//   forward: y = Σ_kz conv2d(planes_kz(x), w[kz], in-plane stride, explicit in-plane padding) + b
//   dX     : a "sub-pixel" transposed conv. Write x index i = s·m + a (phase a < s); then
//            dX[s·m + a] = Σ_u dY[m + δmin + u] · w[a + p − s·(δmin + u)], a plain correlation of dY per phase.
//            In-plane, the s_H·s_W phases become output channels of one conv2d with a [T_H, T_W, Co, s_H·s_W·Ci]
//            kernel (for stride 1 this is the usual flipped kernel); then a rank-4 depth-to-space. In depth, each
//            (phase, tap) pair is one conv2d over a shifted plane set, and the phases are interleaved.
//   dW     : one conv2d with the Ci input channels as the batch and dY as the filter, dilated by the stride:
//            in [kD·Ci, Hq, Wq, B·Do] (z-planes of x as channels) * filter [Ho, Wo, B·Do, Co] -> [kD·Ci, kH, kW, Co]
//   db     : ones[1, P] @ dY[P, Co]
// "gather-im2col" (output voxels ≤ Co, Ci ≥ 32: the deep merges, where the conv2d route is dominated by re-packing
// filters):
//   forward: cols [P, K·Ci] = tf.gather(xpad [Np, Ci], idx) ; y = cols @ W + b (fused)
//   dX     : dcolsᵀ = W @ dYᵀ (W stays the left operand), transpose, tf.scatterND (sums duplicates), crop
//   dW     : transpose(cols) @ dY
// spec.inputGrad === false skips dX (returned as zeros). Everything works on rank ≤ 4 views.
import * as tf from "@tensorflow/tfjs";
import { Conv3dSpec } from "../ops";
import { cachedConstant, columnSum, fitAxis, r4, r5, transpose2d } from "./common";
import { convOutLength, customOp } from "../op_helpers";
import type { Vec3 } from "../../runtime/math";

export type ConvRoute = "zsplit" | "gather";

interface Geometry {
  B: number;
  inSize: Vec3; // [D, H, W]
  outSize: Vec3; // [Do, Ho, Wo]
  kernel: Vec3;
  stride: Vec3;
  pad: Vec3;
  ci: number;
  co: number;
}

function geometry(x: tf.Tensor5D, w: tf.Tensor5D, spec: Conv3dSpec): Geometry {
  const [B, D, H, W, ci] = x.shape;
  const [kD, kH, kW, wci, co] = w.shape;
  if (wci !== ci) throw new Error(`conv3d: x has ${ci} channels but w [kD,kH,kW,Ci,Co] expects Ci=${wci}`);
  const inSize: Vec3 = [D, H, W];
  const kernel: Vec3 = [kD, kH, kW];
  const outSize = [0, 1, 2].map((a) => convOutLength(inSize[a], kernel[a], spec.stride[a], spec.padding[a])) as Vec3;
  if (outSize.some((o) => o < 1))
    throw new Error(`conv3d: input [${inSize}] is too small for kernel [${kernel}] with padding [${spec.padding}]`);
  return { B, inSize, outSize, kernel, stride: spec.stride, pad: spec.padding, ci, co };
}

/**
 * Route rule, measured on wasm fwd+bwd (benchConvRoutes in src/bench/ops_bench.ts; shared CPU, noisy):
 *   [16,8,8,96]->192 s2 (P=128):  z-split 35 ms, gather 28 ms     [8,4,4,192]->384 s2 (P=16): 98 vs 55 ms
 *   [16³,32]->32 s2 (P=512):      z-split 17 ms, gather 40 ms     [8³,64]->64 s1 (P=512):     31 vs 78 ms
 *   [32,16,16,48]->96 s2 (P=1024): z-split 50 ms, gather 109 ms
 * The z-split route's fixed cost is re-packing the filter slices (∝ Ci·Co), gather-im2col's cost grows with
 * P·27·Ci (tf.gather ~21 ns/element), so gather wins when the output has no more voxels than channels.
 */
function pickConvRoute(g: Geometry): ConvRoute {
  const p = g.B * g.outSize[0] * g.outSize[1] * g.outSize[2];
  return p <= g.co && g.ci >= 32 ? "gather" : "zsplit";
}

// ---------------------------------------------------------------------------------------------------------------
// z-split conv2d route

/** Length to which the (padded) depth axis is fitted so that planes sz·z + kz are a reshape + slice away. */
function zFitLength(outLen: number, k: number, s: number): number {
  return s * (outLen + Math.floor((k - 1) / s));
}

/**
 * Planes sz·z + kz (z < n) of a depth-fitted volume t [B, L, R] (L = zFitLength) -> [B·n, R], as one rank-3/4 slice.
 */
function zPlanes(t: tf.Tensor3D, kz: number, s: number, n: number): tf.Tensor2D {
  const [B, L, R] = t.shape;
  if (s === 1) return tf.slice(t, [0, kz, 0], [B, n, R]).reshape([B * n, R]);
  const r = t.reshape([B, L / s, s, R]); // [B, L/s, phase, R]
  return tf.slice(r, [0, Math.floor(kz / s), kz % s, 0], [B, n, 1, R]).reshape([B * n, R]);
}

/** Kernel slice w[kz] as [kH, kW, Ci, Co]. */
function kernelSlice(w: tf.Tensor5D, kz: number): tf.Tensor4D {
  const [kD, kH, kW, ci, co] = w.shape;
  if (kD === 1) return w.reshape([kH, kW, ci, co]);
  return tf.slice(w.reshape([kD, kH * kW * ci * co]), [kz, 0], [1, kH * kW * ci * co]).reshape([kH, kW, ci, co]);
}

function explicitPad(p: Vec3): [[number, number], [number, number], [number, number], [number, number]] {
  return [
    [0, 0],
    [p[1], p[1]],
    [p[2], p[2]],
    [0, 0],
  ];
}

function zsplitForward(x: tf.Tensor5D, w: tf.Tensor5D, b: tf.Tensor1D | null, g: Geometry): tf.Tensor5D {
  const {
    B,
    inSize: [D, H, W],
    outSize: [Do, Ho, Wo],
    kernel: [kD],
    stride: s,
    pad: p,
    ci,
    co,
  } = g;
  const L = zFitLength(Do, kD, s[0]);
  const xz = fitAxis(x.reshape([B, D, H * W * ci]), p[0], L); // [B, L, H·W·Ci], zero planes at the ends
  const terms: tf.Tensor4D[] = [];
  for (let kz = 0; kz < kD; kz++) {
    const planes = r4(zPlanes(xz, kz, s[0], Do), [B * Do, H, W, ci]);
    const conv = {
      x: planes,
      filter: kernelSlice(w, kz),
      strides: [s[1], s[2]] as [number, number],
      pad: explicitPad(p),
    };
    // the bias rides on the first tap's conv (fused into XNNPACK)
    terms.push(
      kz === 0 && b ? tf.fused.conv2d({ ...conv, bias: b }) : tf.conv2d(conv.x, conv.filter, conv.strides, conv.pad),
    );
  }
  const y = terms.length === 1 ? terms[0] : tf.addN(terms); // [B·Do, Ho, Wo, Co]
  return r5(y, [B, Do, Ho, Wo, co]);
}

/** Sub-pixel plan of the input gradient along one axis (see the header). */
interface AxisPlan {
  s: number;
  /** Phases per output index m: ceil(L / s) rows are computed, then cropped to L. */
  m: number;
  /** First dY index read (may be negative: zero padding). */
  dmin: number;
  /** Taps per phase. */
  t: number;
  /** tap[a][u] = kernel index for phase a and tap u, or -1. */
  tap: number[][];
}

function axisPlan(len: number, k: number, s: number, p: number): AxisPlan {
  const dmin = Math.ceil((p - k + 1) / s);
  const dmax = Math.floor((s - 1 + p) / s);
  const t = dmax - dmin + 1;
  const tap: number[][] = [];
  for (let a = 0; a < s; a++) {
    const row: number[] = [];
    for (let u = 0; u < t; u++) {
      const kk = a + p - s * (dmin + u);
      row.push(kk >= 0 && kk < k ? kk : -1);
    }
    tap.push(row);
  }
  return { s, m: Math.ceil(len / s), dmin, t, tap };
}

/**
 * 0/1 matrix [T_H·T_W·s_H·s_W, kH·kW] that builds every sub-pixel kernel from a kernel slice by one small matMul:
 * row (uH, uW, aH, aW) selects tap (tap_H[aH][uH], tap_W[aW][uW]).
 */
function subpixelSelector(ph: AxisPlan, pw: AxisPlan, kH: number, kW: number): tf.Tensor2D {
  const key = `subpixel:${JSON.stringify([ph, pw, kH, kW])}`;
  return cachedConstant(key, () => {
    const rows = ph.t * pw.t * ph.s * pw.s;
    const sel = new Float32Array(rows * kH * kW);
    let r = 0;
    for (let uh = 0; uh < ph.t; uh++)
      for (let uw = 0; uw < pw.t; uw++)
        for (let ah = 0; ah < ph.s; ah++)
          for (let aw = 0; aw < pw.s; aw++, r++) {
            const th = ph.tap[ah][uh];
            const tw = pw.tap[aw][uw];
            if (th >= 0 && tw >= 0) sel[r * kH * kW + th * kW + tw] = 1;
          }
    return tf.tensor2d(sel, [rows, kH * kW]);
  });
}

/** Sub-pixel kernel [T_H, T_W, Co, s_H·s_W·Ci] of one kernel slice wk [kH, kW, Ci, Co]. */
function subpixelKernel(wk: tf.Tensor4D, sel: tf.Tensor2D, ph: AxisPlan, pw: AxisPlan): tf.Tensor4D {
  const [kH, kW, ci, co] = wk.shape;
  const phases = ph.s * pw.s;
  const gsel = tf.matMul(sel, wk.reshape([kH * kW, ci * co])).reshape([ph.t * pw.t, phases, ci, co]);
  return tf.transpose(gsel, [0, 3, 1, 2]).reshape([ph.t, pw.t, co, phases * ci]); // [(uH,uW), Co, (aH,aW), Ci]
}

function zsplitInputGrad(dy: tf.Tensor5D, w: tf.Tensor5D, g: Geometry): tf.Tensor5D {
  const { B, stride: s, pad: p, ci, co } = g;
  const [[D, H, W], [Do, Ho, Wo], [kD, kH, kW]] = [g.inSize, g.outSize, g.kernel];
  const pz = axisPlan(D, kD, s[0], p[0]);
  const ph = axisPlan(H, kH, s[1], p[1]);
  const pw = axisPlan(W, kW, s[2], p[2]);
  const sel = subpixelSelector(ph, pw, kH, kW);
  // dY windows: in-plane [dmin, dmin + m + t - 1) of each axis, then in depth
  const hd = ph.m + ph.t - 1;
  const wd = pw.m + pw.t - 1;
  let dyp = fitAxis(dy.reshape([B * Do, Ho, Wo * co]), -ph.dmin, hd); // [B·Do, Hd, Wo·Co]
  dyp = fitAxis(dyp.reshape([B * Do * hd, Wo, co]), -pw.dmin, wd); // [B·Do·Hd, Wd, Co]
  const dz = fitAxis(dyp.reshape([B, Do, hd * wd * co]), -pz.dmin, pz.m + pz.t - 1); // [B, Dd, Hd·Wd·Co]
  const phases = ph.s * pw.s;
  const kernels = new Map<number, tf.Tensor4D>();
  const depthPhases: tf.Tensor4D[] = [];
  for (let az = 0; az < pz.s; az++) {
    const terms: tf.Tensor4D[] = [];
    for (let uz = 0; uz < pz.t; uz++) {
      const kz = pz.tap[az][uz];
      if (kz < 0) continue;
      if (!kernels.has(kz)) kernels.set(kz, subpixelKernel(kernelSlice(w, kz), sel, ph, pw));
      const planes = r4(tf.slice(dz, [0, uz, 0], [B, pz.m, hd * wd * co]), [B * pz.m, hd, wd, co]);
      terms.push(tf.conv2d(planes, kernels.get(kz)!, 1, "valid")); // [B·Mz, Mh, Mw, (aH,aW,Ci)]
    }
    depthPhases.push(
      terms.length === 0
        ? tf.zeros([B * pz.m, ph.m, pw.m, phases * ci])
        : terms.length === 1
          ? terms[0]
          : tf.addN(terms),
    );
  }
  // in-plane depth-to-space: [N, Mh, Mw, (aH, aW, Ci)] -> [N, Mh·sH, Mw·sW, Ci]
  const n = B * pz.m;
  const hh = ph.m * ph.s;
  const ww = pw.m * pw.s;
  const spaced = depthPhases.map((t) =>
    phases === 1 ? t : tf.transpose(t.reshape([n * ph.m, pw.m, ph.s, pw.s * ci]), [0, 2, 1, 3]),
  );
  // depth phases interleaved: [(B, Mz), az, R] -> [B, Mz·sz, R]
  const r = hh * ww * ci;
  let dx =
    spaced.length === 1
      ? spaced[0].reshape([B, pz.m, r])
      : tf
          .concat(
            spaced.map((t) => t.reshape([n, 1, r])),
            1,
          )
          .reshape([B, pz.m * pz.s, r]);
  if (pz.m * pz.s !== D) dx = tf.slice(dx, [0, 0, 0], [B, D, r]);
  let out = dx.reshape([B * D, hh, ww, ci]);
  if (hh !== H || ww !== W) out = tf.slice(out, [0, 0, 0, 0], [B * D, H, W, ci]);
  return out.reshape([B, D, H, W, ci]);
}

function zsplitWeightGrad(x: tf.Tensor5D, dy: tf.Tensor5D, g: Geometry): tf.Tensor5D {
  const { B, stride: s, pad: p, ci, co } = g;
  const [[D, H, W], [Do, Ho, Wo], [kD, kH, kW]] = [g.inSize, g.outSize, g.kernel];
  // the exact in-plane window the dilated conv needs: Hq = kH + sH·(Ho − 1) rows starting at −pH
  const hq = kH + s[1] * (Ho - 1);
  const wq = kW + s[2] * (Wo - 1);
  let xp = fitAxis(x.reshape([B * D, H, W * ci]), p[1], hq); // [B·D, Hq, W·Ci]
  xp = fitAxis(xp.reshape([B * D * hq, W, ci]), p[2], wq); // [B·D·Hq, Wq, Ci]
  const xz = fitAxis(xp.reshape([B, D, hq * wq * ci]), p[0], zFitLength(Do, kD, s[0])); // [B, L, Hq·Wq·Ci]
  const planes: tf.Tensor2D[] = [];
  for (let kz = 0; kz < kD; kz++) planes.push(zPlanes(xz, kz, s[0], Do)); // [B·Do, Hq·Wq·Ci]
  const stack = planes.length === 1 ? planes[0] : tf.concat(planes, 0); // [(kD, B·Do), Hq·Wq·Ci]
  const input = r4(tf.transpose(stack.reshape([kD, B * Do, hq * wq, ci]), [0, 3, 2, 1]), [kD * ci, hq, wq, B * Do]);
  const filter = tf.transpose(r4(dy, [B * Do, Ho, Wo, co]), [1, 2, 0, 3]); // [Ho, Wo, B·Do, Co]
  const gw = tf.conv2d(input, filter, 1, "valid", "NHWC", [s[1], s[2]]); // [(kD, Ci), kH, kW, Co]
  return tf.transpose(gw.reshape([kD, ci, kH * kW, co]), [0, 2, 1, 3]).reshape([kD, kH, kW, ci, co]);
}

// ---------------------------------------------------------------------------------------------------------------
// gather-im2col route

interface GatherPlan {
  /** Rows of the padded input, B·Dp·Hp·Wp. */
  np: number;
  /** Output voxels B·Do·Ho·Wo. */
  p: number;
  idx: tf.Tensor1D;
  idx2: tf.Tensor2D;
}

function gatherPlan(g: Geometry): GatherPlan {
  const {
    B,
    inSize,
    outSize: [Do, Ho, Wo],
    kernel: [kD, kH, kW],
    stride: s,
    pad: pd,
  } = g;
  const [Dp, Hp, Wp] = [0, 1, 2].map((a) => inSize[a] + 2 * pd[a]);
  const np = B * Dp * Hp * Wp;
  const p = B * Do * Ho * Wo;
  const key = `gather:${JSON.stringify([B, inSize, g.outSize, g.kernel, s, pd])}`;
  const idx = cachedConstant(`${key}:1d`, () => {
    const k = kD * kH * kW;
    const a = new Int32Array(p * k);
    let n = 0;
    for (let b = 0; b < B; b++)
      for (let z = 0; z < Do; z++)
        for (let y = 0; y < Ho; y++)
          for (let x = 0; x < Wo; x++)
            for (let kz = 0; kz < kD; kz++)
              for (let ky = 0; ky < kH; ky++)
                for (let kx = 0; kx < kW; kx++)
                  a[n++] = ((b * Dp + s[0] * z + kz) * Hp + s[1] * y + ky) * Wp + s[2] * x + kx;
    return tf.tensor1d(a, "int32");
  });
  const idx2 = cachedConstant(`${key}:2d`, () => idx.reshape([idx.shape[0], 1]) as tf.Tensor2D);
  return { np, p, idx, idx2 };
}

function padAll(x: tf.Tensor5D, g: Geometry): tf.Tensor2D {
  const { B, pad: p, ci } = g;
  const [D, H, W] = g.inSize;
  const [Hp, Wp] = [H + 2 * p[1], W + 2 * p[2]];
  const xp = tf.pad(r4(x, [B * D, H, W, ci]), explicitPad(p)); // [B·D, Hp, Wp, Ci]
  const xz = tf.pad(xp.reshape([B, D, Hp * Wp * ci]), [
    [0, 0],
    [p[0], p[0]],
    [0, 0],
  ]); // [B, Dp, Hp·Wp·Ci]
  return xz.reshape([-1, ci]);
}

function cropAll(xp: tf.Tensor2D, g: Geometry): tf.Tensor5D {
  const { B, pad: p, ci } = g;
  const [D, H, W] = g.inSize;
  const [Dp, Hp, Wp] = [D + 2 * p[0], H + 2 * p[1], W + 2 * p[2]];
  const z = tf.slice(xp.reshape([B, Dp, Hp * Wp * ci]), [0, p[0], 0], [B, D, Hp * Wp * ci]);
  return tf.slice(z.reshape([B * D, Hp, Wp, ci]), [0, p[1], p[2], 0], [B * D, H, W, ci]).reshape([B, D, H, W, ci]);
}

// ---------------------------------------------------------------------------------------------------------------

/** Conv3d with custom gradients; `route` overrides the size rule (tests and benchmarks). */
export function fastConv3d(
  x: tf.Tensor5D,
  w: tf.Tensor5D,
  b: tf.Tensor1D | null,
  spec: Conv3dSpec,
  route?: ConvRoute,
): tf.Tensor5D {
  const g = geometry(x, w, spec);
  const useGather = (route ?? pickConvRoute(g)) === "gather";
  const needDx = spec.inputGrad !== false;
  const inputs = b ? [x, w, b] : [x, w];
  const k = g.kernel[0] * g.kernel[1] * g.kernel[2];
  return customOp<tf.Tensor5D>(inputs, ([xi, wi, bi], save) => {
    const x5 = xi as tf.Tensor5D;
    const w5 = wi as tf.Tensor5D;
    if (!useGather) {
      save([x5, w5]);
      return {
        value: zsplitForward(x5, w5, (bi as tf.Tensor1D | undefined) ?? null, g),
        gradFunc: (dy, [xs, ws]) => {
          const grads: tf.Tensor[] = [
            needDx ? zsplitInputGrad(dy, ws as tf.Tensor5D, g) : tf.zerosLike(xs),
            zsplitWeightGrad(xs as tf.Tensor5D, dy, g),
          ];
          if (bi) grads.push(columnSum(dy.reshape([-1, g.co])));
          return grads;
        },
      };
    }
    const plan = gatherPlan(g);
    const cols = tf.gather(padAll(x5, g), plan.idx).reshape([plan.p, k * g.ci]) as tf.Tensor2D; // [P, K·Ci]
    save([x5, w5, cols]);
    const wm = w5.reshape([k * g.ci, g.co]) as tf.Tensor2D;
    const y = tf.fused.matMul({ a: cols, b: wm, bias: bi }); // [P, Co]
    return {
      value: y.reshape([g.B, ...g.outSize, g.co]) as tf.Tensor5D,
      gradFunc: (dy, [xs, ws, cs]) => {
        const dy2 = dy.reshape([plan.p, g.co]) as tf.Tensor2D;
        let dx: tf.Tensor;
        if (needDx) {
          const dcolsT = tf.matMul(ws.reshape([k * g.ci, g.co]) as tf.Tensor2D, transpose2d(dy2)); // [(K, Ci), P]
          const dcols = tf.transpose(dcolsT.reshape([k, g.ci, plan.p]), [2, 0, 1]).reshape([plan.p * k, g.ci]);
          dx = cropAll(tf.scatterND(plan.idx2, dcols, [plan.np, g.ci]) as tf.Tensor2D, g);
        } else dx = tf.zerosLike(xs);
        const dw = tf.matMul(transpose2d(cs as tf.Tensor2D), dy2).reshape(ws.shape);
        const grads: tf.Tensor[] = [dx, dw];
        if (bi) grads.push(columnSum(dy2));
        return grads;
      },
    };
  });
}
