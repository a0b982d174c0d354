// MAE for the nnFormer encoder: He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022, with the
// sparse (SparK, Tian et al. ICLR 2023; S3D, Wald et al. CVPR 2025), SimMIM (Xie et al. CVPR 2022) and UM-MAE
// uniform-sampling (Li et al. arXiv 2205.10063) variants. Spec: docs/mae.md §1.
// The encoder IS an NnFormer (same class, same official parameter names, so transfer is a copy by name); its decoder
// and heads are never run here. The pretraining decoder is a light UNet "densify" decoder (SparK/S3D): per stage,
// deep → shallow: LN, fill inactive positions with a learned mask token, 1×1×1 projection, add the up-sampled deeper
// stage, up-sample ×2 with a transposed conv; head: per stage-0 token, prod(patch)·C voxels (a ConvTranspose3d with
// kernel = stride = patch, i.e. linear + unpatchify). Loss: MSE on masked voxels only.
// Differs from the references (on purpose):
//   - a GELU after each stage's sum (SparK has conv blocks there; a purely linear decoder learned much slower here);
//   - the head's bias is per channel (ConvTranspose3d), not per voxel of the patch;
//   - simmim: the token is swapped in before the embedding's last LayerNorm (the only encoder hook after the
//     embedding), so masked tokens carry LN(token): still one learned vector;
//   - compact: UM-MAE's secondary masking is not done, and the compact encoder keeps the RPB tables of the full
//     encoder (UM-MAE switches to a coordinate MLP) so that they transfer; see "Compact mode" below.
// No drop path during pretraining (MAE); tensors are channels-last [B, D, H, W, C]; tokens [B·S·H·W, C].
import * as tf from "@tensorflow/tfjs";
import { Ops } from "../layers/ops";
import { LN_EPS } from "../layers/nnformer_blocks";
import { selectOps } from "../layers/fast_ops";
import { officialRelativePositionIndex } from "../layers/window_attention3d";
import {
  NnFormer,
  checkNnFormerConfig,
  nnFormerParamSpecs,
  planNnFormer,
  type NnFormerConfig,
  type NnFormerEncoding,
} from "../models/nnformer";
import type { Rng } from "../runtime/random";
import { ParamStore, SpecList, type ParamSpec } from "../layers/param_specs";
import {
  MaskConfig,
  MaskSample,
  checkCompactPlans,
  checkMaskConfig,
  compactCrop,
  compactGather,
  compactGroup,
  compactScatterIndex,
  defaultMaskConfig,
  drawMask,
  sparseEncoderHooks,
  voxelVisibility,
  visibilityAt,
} from "./masking";
import type { Vec3 } from "../runtime/math";
import { prod } from "../runtime/math";

export interface MaeConfig {
  mask: MaskConfig;
  /** Decoder width per encoder stage 0..3 (S3D: 32, 64, 128, 256 for C0 192, i.e. C_s / 6). Default C_s / 2, at least 8. */
  decoderDims: number[];
  /** Targets normalised per block (MAE norm_pix_loss): "none", per embedding "patch", or per mask "unit". */
  normPix: "none" | "patch" | "unit";
  /** eps of (x − μ)/√(σ² + eps); ≥ 1e-2 so flat CT air blocks stay finite (MAE uses 1e-6 on natural images). */
  normPixEps: number;
}

/** Overrides accepted by the constructor: any MaeConfig field, mask fields one by one. */
export type MaeOverrides = Partial<Omit<MaeConfig, "mask">> & { mask?: Partial<MaskConfig> };

/** Defaults for a model: sparse masking r 0.75 on patch × stage-0-window units, decoder C_s/2, plain targets. */
export function defaultMaeConfig(c: NnFormerConfig, over: MaeOverrides = {}): MaeConfig {
  return {
    mask: defaultMaskConfig(c, over.mask ?? {}),
    decoderDims: over.decoderDims ?? [0, 1, 2, 3].map((s) => Math.max(8, (c.embedDim * 2 ** s) / 2)),
    normPix: over.normPix ?? "none",
    normPixEps: over.normPixEps ?? 1e-2,
  };
}

/** Throws, naming the field, its value and the fix, unless the MAE settings fit the encoder config. */
export function checkMaeConfig(m: MaeConfig, c: NnFormerConfig): void {
  checkMaskConfig(m.mask, c);
  const d = m.decoderDims as unknown;
  if (!(Array.isArray(d) && d.length === 4 && d.every((n) => Number.isInteger(n) && n > 0))) {
    throw new Error(
      `mae.decoderDims = ${JSON.stringify(d)}: give 4 positive widths, one per encoder stage 0..3, e.g. ${JSON.stringify(defaultMaeConfig(c).decoderDims)}`,
    );
  }
  if (!["none", "patch", "unit"].includes(m.normPix))
    throw new Error(`mae.normPix = ${JSON.stringify(m.normPix)}: use "none", "patch" or "unit"`);
  if (!(m.normPixEps >= 1e-2)) {
    throw new Error(
      `mae.normPixEps = ${m.normPixEps}: use at least 1e-2; CT air blocks have ~0 variance and a smaller eps turns their noise into huge targets`,
    );
  }
}

/** Loss inputs for a batch: encoder input, target and the masked-voxel indicator, as typed arrays. */
export interface MaeBatch {
  /** Normalised crops [B, D, H, W, C] (not yet masked). */
  x: Float32Array;
  mask: MaskSample;
}

/** MSE over masked voxels only: Σ m·(pred − target)² / (Σ m · C). `masked` is [B, D, H, W, 1], 1 where masked. */
export function maskedMse(pred: tf.Tensor5D, target: tf.Tensor5D, masked: tf.Tensor5D): tf.Scalar {
  return tf.tidy(() => {
    const C = pred.shape[4];
    const n = tf.mul(tf.maximum(tf.sum(masked), 1), C);
    return tf.div(tf.sum(tf.mul(tf.square(tf.sub(pred, target)), masked)), n) as tf.Scalar;
  });
}

/** Per-block normalised targets (x − μ_block)/√(σ²_block + eps) of crops [B, D, H, W, C], per channel. */
export function normPixTargets(
  x: Float32Array,
  batch: number,
  crop: Vec3,
  channels: number,
  block: Vec3,
  eps: number,
): Float32Array {
  const out = new Float32Array(x.length);
  const C = channels,
    nb = crop.map((n, a) => n / block[a]);
  if (nb.some((n) => !Number.isInteger(n)))
    throw new Error(`normPixTargets: block ${JSON.stringify(block)} does not tile the crop ${JSON.stringify(crop)}`);
  const count = block[0] * block[1] * block[2];
  const at = (b: number, d: number, h: number, w: number) => (((b * crop[0] + d) * crop[1] + h) * crop[2] + w) * C;
  for (let b = 0; b < batch; b++)
    for (let bd = 0; bd < nb[0]; bd++)
      for (let bh = 0; bh < nb[1]; bh++)
        for (let bw = 0; bw < nb[2]; bw++)
          for (let c = 0; c < C; c++) {
            let s = 0,
              ss = 0;
            for (let i = 0; i < block[0]; i++)
              for (let j = 0; j < block[1]; j++)
                for (let k = 0; k < block[2]; k++) {
                  const v = x[at(b, bd * block[0] + i, bh * block[1] + j, bw * block[2] + k) + c];
                  s += v;
                  ss += v * v;
                }
            const mean = s / count,
              inv = 1 / Math.sqrt(Math.max(0, ss / count - mean * mean) + eps);
            for (let i = 0; i < block[0]; i++)
              for (let j = 0; j < block[1]; j++)
                for (let k = 0; k < block[2]; k++) {
                  const o = at(b, bd * block[0] + i, bh * block[1] + j, bw * block[2] + k) + c;
                  out[o] = (x[o] - mean) * inv;
                }
          }
  return out;
}

const ENCODER_PREFIX = "model_down.";

/**
 * The MAE-only parameters (decoder, mask tokens) as specs, in a fixed order. The decoder is ours (no PyTorch
 * reference), so its init is our own rule: norms 1/0, mask tokens N(0, 0.02²) clamped to ±0.04, every other weight
 * U(±1/√fan) with fan = in-channels (· kernel volume for the transposed convs) and every bias U(±1/√length).
 */
export function maeParamSpecs(c: NnFormerConfig, m: MaeConfig): ParamSpec[] {
  const L = new SpecList();
  L.group = "mae_decoder";
  const dims = [0, 1, 2, 3].map((s) => c.embedDim * 2 ** s);
  const d = m.decoderDims;
  const bias = (name: string, n: number) =>
    L.add({ name, shape: [n], torchShape: [n], kind: "vector", init: "uniform", fanIn: n });
  const convT = (name: string, cin: number, cout: number, k: Vec3) => {
    L.add({
      name: `${name}.weight`,
      shape: [...k, cout, cin], // ConvTranspose3d [kD, kH, kW, Co, Ci]
      torchShape: [cin, cout, ...k],
      kind: "convT",
      init: "uniform",
      fanIn: cin * prod(k),
    });
    bias(`${name}.bias`, cout);
  };
  for (let s = 0; s < 4; s++) {
    L.norm(`mae_decoder.norm${s}`, dims[s]);
    L.tensor(`mae_decoder.mask_token${s}`, [dims[s]], [dims[s]], "vector", "clamped_normal");
    L.add({
      name: `mae_decoder.proj${s}.weight`,
      shape: [dims[s], d[s]],
      torchShape: [d[s], dims[s]],
      kind: "linear",
      init: "uniform",
      fanIn: dims[s],
    });
    bias(`mae_decoder.proj${s}.bias`, d[s]);
    if (s > 0) convT(`mae_decoder.up${s}`, d[s], d[s - 1], c.downStrides[s - 1]);
  }
  convT("mae_decoder.head", d[0], c.inChannels, c.patchSize);
  if (m.mask.mode === "simmim") L.tensor("simmim.mask_token", [c.embedDim], [c.embedDim], "vector", "clamped_normal");
  return L.params;
}

/** A compact-mode RPB table that is read out of a full-encoder table (different effective window). */
interface DerivedTable {
  name: string;
  rows: tf.Tensor1D;
}

/** MAE pretraining model: an NnFormer encoder + a light densify decoder. */
export class MaeNnFormer {
  readonly config: NnFormerConfig;
  readonly mae: MaeConfig;
  /** The encoder (owner of the `model_down.*` weights). Its decoder and heads are not used during pretraining. */
  readonly encoder: NnFormer;
  /** MAE-only parameter specs (decoder, mask tokens). */
  readonly specs: ParamSpec[];
  /** MAE-only parameters (decoder, mask tokens). */
  readonly params: ParamStore;
  /** Compact mode: the encoder built for the compact crop, on a borrowed view of the encoder's variables. */
  readonly compactEncoder: NnFormer | null = null;
  private readonly derived: DerivedTable[] = [];
  private disposed = false;

  constructor(
    config: NnFormerConfig,
    over: MaeOverrides = {},
    opts: { seed?: number; init?: "pytorch" | "zeros" } = {},
  ) {
    checkNnFormerConfig(config);
    const mae = defaultMaeConfig(config, over);
    checkMaeConfig(mae, config);
    this.config = JSON.parse(JSON.stringify(config));
    this.mae = JSON.parse(JSON.stringify(mae));
    checkDecoderGrids(this.config);
    const seed = opts.seed ?? 0;
    this.encoder = new NnFormer(this.config, { seed, init: opts.init });
    this.specs = maeParamSpecs(this.config, this.mae);
    this.params = ParamStore.create("mae", this.specs, seed, opts.init);
    if (this.mae.mask.mode === "compact") this.compactEncoder = this.buildCompactEncoder();
  }

  // Compact mode. The compact encoder is an NnFormer built for the compact crop with the SAME windowSizes, and every
  // one of its parameters is the full encoder's tf.Variable (shared, not copied), so training it trains the encoder
  // that later transfers. Under the official "min" global-window rule the effective window of a deep stage follows
  // its grid (window = min(grid) once the grid is ≤ the window), and the compact grids are smaller: e.g. TINY at r 0.75
  // has stage-2/3 windows 4/2 on the full crop but 2/1 on the compact crop. Those tables cannot be shared by shape; the
  // compact block then reads its bias rows out of the full table at the same relative offsets (a sub-window of the
  // table), so the parameter stays the full-size, transferable table. Offsets are in compact-grid coordinates (kept
  // units are packed), the known approximation of UM-MAE (it uses a coordinate MLP instead). Validated: the compact
  // crop must build an nnFormer (windows divide its grids) and each stage cell must map onto whole units or groups.
  private buildCompactEncoder(): NnFormer {
    const c = this.config,
      m = this.mae.mask;
    const group = compactGroup(m.ratio);
    const cCrop = compactCrop(c.cropSize, group);
    const cc: NnFormerConfig = { ...c, cropSize: cCrop };
    try {
      checkNnFormerConfig(cc);
    } catch (e) {
      throw new Error(
        `mask.mode "compact": the compact crop ${JSON.stringify(cCrop)} (crop ${JSON.stringify(c.cropSize)} ÷ group ${JSON.stringify(group)}) cannot hold this encoder: ${(e as Error).message}. Use a larger crop or mode "sparse"`,
      );
    }
    // every encoder tensor of the compact network is the full encoder's own variable, except the RPB tables whose
    // effective window shrank: those are absent from the view and derived from the full table at each forward
    const full = this.encoder.params;
    const shared = (spec: ParamSpec) => {
      const v = spec.name.startsWith(ENCODER_PREFIX) && full.has(spec.name) ? full.get(spec.name) : undefined;
      return v && v.shape.every((n, i) => n === spec.shape[i]) ? v : undefined;
    };
    const view = ParamStore.borrow(nnFormerParamSpecs(cc).params, shared);
    const model = new NnFormer(cc, { params: view });
    checkCompactPlans(this.encoder.plan, model.plan, c.cropSize, cCrop, m.unit, group);
    for (const spec of model.specs) {
      const name = spec.name;
      if (!name.startsWith(ENCODER_PREFIX) || view.has(name)) continue;
      const fullVar = full.has(name) ? full.get(name) : undefined;
      if (!fullVar) throw new Error(`compact mode: ${name} of the compact encoder is not in the full encoder`);
      // an RPB table whose effective window shrank: map compact rows to full rows at the same offset
      const where = /model_down\.layers\.(\d+)\.blocks\.(\d+)\./.exec(name);
      if (!where || !name.endsWith("relative_position_bias_table")) {
        throw new Error(
          `compact mode: ${name} has shape [${spec.shape}] on the compact crop but [${fullVar.shape}] on the full crop; only position-bias tables may differ`,
        );
      }
      const [si, bi] = [Number(where[1]), Number(where[2])];
      const wc = model.plan.encoder[si].blocks[bi].window,
        wf = this.encoder.plan.encoder[si].blocks[bi].window;
      if (wc.some((w, a) => w > wf[a]))
        throw new Error(
          `compact mode: stage ${si} window ${JSON.stringify(wc)} on the compact crop is larger than ${JSON.stringify(wf)} on the full crop`,
        );
      this.derived.push({ name, rows: tf.tensor1d(subWindowRows(wc, wf, spec.shape[0]), "int32") });
    }
    return model;
  }

  /** The encoder weights by official name (`model_down.*`): what transfers to a segmentation model. */
  encoderParams(): Map<string, tf.Variable> {
    return new Map([...this.encoder.params].filter(([n]) => n.startsWith(ENCODER_PREFIX)));
  }

  /** Every tensor a checkpoint holds (encoder + MAE-only), by name. */
  namedParams(): Map<string, tf.Variable> {
    return new Map([...this.encoderParams(), ...this.params]);
  }

  /** What pretraining trains: the encoder and the MAE decoder / tokens. */
  trainableVariables(): tf.Variable[] {
    return [...this.namedParams().values()];
  }

  /** Draws a batch's mask with the configured mode, ratio and unit. */
  drawMask(rng: Rng, batch: number): MaskSample {
    return drawMask(rng, this.mae.mask, this.config.cropSize, batch);
  }

  private p(name: string): tf.Tensor {
    return this.params.get(name);
  }

  /** Runs the encoder on the masked input; returns the full-grid skips and per-stage active masks (null = all active). */
  encode(
    x: tf.Tensor5D,
    s: MaskSample,
    ops: Ops,
    xData?: Float32Array,
  ): { enc: NnFormerEncoding; active: Array<Uint8Array | null> } {
    this.checkSample(s, x);
    const c = this.config;
    const grids = this.encoder.plan.encoder.map((st) => st.grid);
    const mode = this.mae.mask.mode;
    if (mode === "compact") {
      const data = xData ?? (x.dataSync() as Float32Array);
      const cm = this.compactEncoder!;
      const xc = tf.tensor5d(compactGather(data, s, c.inChannels), [s.batch, ...cm.config.cropSize, c.inChannels]);
      const derived = new Map<string, tf.Tensor>();
      for (const d of this.derived)
        derived.set(d.name, ops.gatherRows(this.encoder.params.get(d.name) as tf.Tensor2D, d.rows));
      const ec = cm.encode(xc, { ops, paramOverrides: derived });
      const active: Uint8Array[] = [];
      const skips = ec.skips.map((t, i) => {
        const idx = compactScatterIndex(s, grids[i], cm.plan.encoder[i].grid);
        const padRow = t.shape[0];
        const rows = Int32Array.from(idx, (r) => (r < 0 ? padRow : r));
        active.push(Uint8Array.from(idx, (r) => (r < 0 ? 0 : 1)));
        const withPad = tf.concat([t, tf.zeros([1, t.shape[1]])], 0) as tf.Tensor2D; // [B·Lc + 1, C]
        return gatherRowsOf(withPad, rows); // [B·Lf, C]
      });
      return { enc: { skips, grids, batch: s.batch }, active };
    }
    const vox = tf.tensor5d(Float32Array.from(voxelVisibility(s)), [s.batch, ...c.cropSize, 1]);
    const xm = tf.mul(x, vox) as tf.Tensor5D; // masked voxels zeroed
    if (mode === "sparse") {
      const enc = this.encoder.encode(xm, { ops, mask: sparseEncoderHooks(s) });
      return { enc, active: grids.map((g) => visibilityAt(s, g)) };
    }
    // simmim: swap the learned token in at masked stage-0 positions (before the embedding's last LN)
    const token = this.p("simmim.mask_token");
    const last = "model_down.patch_embed.proj2.conv2";
    const enc = this.encoder.encode(xm, {
      ops,
      mask: {
        afterConv: (t, site) => {
          if (site.name !== last) return t;
          const m = tf.tensor5d(Float32Array.from(visibilityAt(s, site.grid)), [s.batch, ...site.grid, 1]);
          return tf.add(tf.mul(t, m), tf.mul(tf.sub(1, m), tf.reshape(token, [1, 1, 1, 1, -1]))) as tf.Tensor5D;
        },
      },
    });
    return { enc, active: grids.map(() => null) };
  }

  /** The densify decoder + head: reconstruction [B, D, H, W, C] from full-grid skips. */
  decode(enc: NnFormerEncoding, active: Array<Uint8Array | null>, ops: Ops): tf.Tensor5D {
    const c = this.config,
      B = enc.batch;
    return tf.tidy(() => {
      let h: tf.Tensor2D | null = null;
      for (let s = 3; s >= 0; s--) {
        let f = ops.layerNorm(
          enc.skips[s],
          this.p(`mae_decoder.norm${s}.weight`) as tf.Tensor1D,
          this.p(`mae_decoder.norm${s}.bias`) as tf.Tensor1D,
          LN_EPS,
        );
        const a = active[s];
        if (a && a.some((v) => !v)) {
          const m = tf.tensor2d(Float32Array.from(a), [a.length, 1]);
          const token = tf.reshape(this.p(`mae_decoder.mask_token${s}`), [1, -1]);
          f = tf.add(tf.mul(f, m), tf.mul(tf.sub(1, m), token)) as tf.Tensor2D;
        }
        f = ops.linear(
          f,
          this.p(`mae_decoder.proj${s}.weight`) as tf.Tensor2D,
          this.p(`mae_decoder.proj${s}.bias`) as tf.Tensor1D,
        );
        if (h) f = tf.add(f, h) as tf.Tensor2D;
        f = ops.gelu(f);
        const grid = enc.grids[s];
        const f5 = tf.reshape(f, [B, ...grid, this.mae.decoderDims[s]]) as tf.Tensor5D; // [B, S, H, W, d_s]
        if (s === 0) {
          // head: prod(patch)·C values per token, unpatchified (kernel = stride = patch)
          return ops.convTranspose3d(
            f5,
            this.p("mae_decoder.head.weight") as tf.Tensor5D,
            this.p("mae_decoder.head.bias") as tf.Tensor1D,
          );
        }
        const below = enc.grids[s - 1];
        const k = c.downStrides[s - 1];
        const outPad = below.map((n, ax) => n - grid[ax] * k[ax]) as Vec3;
        const up = ops.convTranspose3d(
          f5,
          this.p(`mae_decoder.up${s}.weight`) as tf.Tensor5D,
          this.p(`mae_decoder.up${s}.bias`) as tf.Tensor1D,
          outPad,
        );
        h = tf.reshape(up, [-1, this.mae.decoderDims[s - 1]]) as tf.Tensor2D; // [B·S'·H'·W', d_{s−1}]
      }
      throw new Error("unreachable");
    });
  }

  /** Reconstruction [B, D, H, W, C] of normalised crops x under mask s. */
  forward(x: tf.Tensor5D, s: MaskSample, ops: Ops, xData?: Float32Array): tf.Tensor5D {
    if (this.disposed) throw new Error("MAE: this model was disposed");
    return tf.tidy(() => {
      const { enc, active } = this.encode(x, s, ops, xData);
      return this.decode(enc, active, ops);
    });
  }

  /** Reconstruction of normalised crops x [B, D, H, W, C] under mask s, as a typed array (for plots). */
  reconstruct(x: Float32Array, s: MaskSample, ops: Ops = selectOps(tf.getBackend())): Float32Array {
    const c = this.config;
    const pred = tf.tidy(() => this.forward(tf.tensor5d(x, [s.batch, ...c.cropSize, c.inChannels]), s, ops, x));
    const out = pred.dataSync() as Float32Array;
    pred.dispose();
    return out;
  }

  /** The regression target of a batch (normalised input, or per-block normalised with normPix). */
  target(x: Float32Array, s: MaskSample): Float32Array {
    const c = this.config,
      m = this.mae;
    if (m.normPix === "none") return x;
    const block = m.normPix === "patch" ? c.patchSize : m.mask.unit;
    return normPixTargets(x, s.batch, c.cropSize, c.inChannels, block, m.normPixEps);
  }

  /** MAE loss of a batch: MSE on masked voxels of the (optionally normPix) target. */
  loss(batch: MaeBatch, ops: Ops): tf.Scalar {
    const c = this.config,
      s = batch.mask;
    return tf.tidy(() => {
      const shape: [number, number, number, number, number] = [s.batch, ...c.cropSize, c.inChannels];
      const x = tf.tensor5d(batch.x, shape);
      const pred = this.forward(x, s, ops, batch.x);
      const target = batch.x === this.target(batch.x, s) ? x : tf.tensor5d(this.target(batch.x, s), shape);
      const masked = tf.tensor5d(
        Float32Array.from(voxelVisibility(s), (v) => 1 - v),
        [s.batch, ...c.cropSize, 1],
      );
      return maskedMse(pred, target, masked);
    });
  }

  private checkSample(s: MaskSample, x: tf.Tensor5D): void {
    const c = this.config;
    if (s.mode !== this.mae.mask.mode)
      throw new Error(
        `MAE: mask drawn for mode "${s.mode}" but the model pretrains in "${this.mae.mask.mode}"; use model.drawMask`,
      );
    if (s.crop.some((n, a) => n !== c.cropSize[a]) || s.unit.some((n, a) => n !== this.mae.mask.unit[a])) {
      throw new Error(
        `MAE: mask for crop ${JSON.stringify(s.crop)} / unit ${JSON.stringify(s.unit)} does not match the model (crop ${JSON.stringify(c.cropSize)}, unit ${JSON.stringify(this.mae.mask.unit)})`,
      );
    }
    if (x.shape[0] !== s.batch) throw new Error(`MAE: input batch ${x.shape[0]} but the mask has ${s.batch} samples`);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.compactEncoder?.dispose(); // frees its caches only: its parameters are borrowed from the encoder
    tf.dispose(this.derived.map((d) => d.rows));
    this.encoder.dispose();
    this.params.dispose();
  }
}

/**
 * table[rows] for an index held in JS, differentiable w.r.t. the table (duplicates summed by scatterND). Both
 * directions make their own index tensor, so nothing has to outlive the forward's tidy (ops.gatherRows keeps a
 * reference to its index tensor for the backward).
 */
export function gatherRowsOf(table: tf.Tensor2D, rows: Int32Array): tf.Tensor2D {
  const [R, C] = table.shape;
  const f = tf.customGrad((...args: unknown[]) => ({
    value: tf.tidy(() => tf.gather(args[0] as tf.Tensor2D, tf.tensor1d(rows, "int32"))) as tf.Tensor2D,
    gradFunc: (dy: tf.Tensor) => tf.tidy(() => tf.scatterND(tf.tensor2d(rows, [rows.length, 1], "int32"), dy, [R, C])),
  }));
  return f(table) as tf.Tensor2D;
}

/** The decoder up-samples stage s to stage s−1 with kernel = stride = downStrides[s−1]; the grids must allow it. */
function checkDecoderGrids(c: NnFormerConfig): void {
  const grids = planNnFormer(c).encoder.map((s) => s.grid);
  for (let s = 1; s < 4; s++) {
    const k = c.downStrides[s - 1];
    grids[s - 1].forEach((n, a) => {
      const pad = n - grids[s][a] * k[a];
      if (pad < 0 || pad >= k[a]) {
        throw new Error(
          `MAE decoder: stage ${s} grid ${JSON.stringify(grids[s])} cannot be up-sampled by ${JSON.stringify(k)} onto stage ${s - 1} grid ${JSON.stringify(grids[s - 1])}; use a crop that is a multiple of patch × 8`,
        );
      }
    });
  }
}

/**
 * Rows of a full-window RPB table for each row of a smaller window's table: compact row r (the official index of some
 * offset inside the small window) → the official index of the same offset in the full window. Unused rows → 0.
 */
export function subWindowRows(small: Vec3, full: Vec3, rows: number): Int32Array {
  const idx = officialRelativePositionIndex(small);
  const N = small[0] * small[1] * small[2];
  const out = new Int32Array(rows);
  const seen = new Uint8Array(rows);
  const coord = (t: number) => [
    Math.floor(t / (small[1] * small[2])),
    Math.floor(t / small[2]) % small[1],
    t % small[2],
  ];
  const mS = 3 * full[1] - 1,
    mH = 2 * full[1] - 1; // the official formula (w1 twice), as in officialRelativePositionIndex
  for (let i = 0; i < N; i++) {
    const ci = coord(i);
    for (let j = 0; j < N; j++) {
      const r = idx[i * N + j];
      if (seen[r]) continue;
      const cj = coord(j);
      const ds = ci[0] - cj[0] + full[0] - 1,
        dh = ci[1] - cj[1] + full[1] - 1,
        dw = ci[2] - cj[2] + full[2] - 1;
      out[r] = ds * mS + dh * mH + dw;
      seen[r] = 1;
    }
  }
  return out;
}
