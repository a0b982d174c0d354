// Pretrained encoder → segmentation nnFormer (docs/mae.md §3): copy patch_embed, every encoder stage (blocks with their
// relative_position_bias_table, down-sampling conv + LN) and norm0..3, by official name; discard the mask tokens and the
// MAE decoder; never touch nnFormer's decoder and heads. No silently partial transfer: if any encoder tensor is missing
// or differs in shape, or a stage's effective window differs (its RPB table would mean other offsets), nothing is
// copied and the error names each tensor and the config fields that differ. Tables are not interpolated.
import * as tf from "@tensorflow/tfjs";
import type { NnFormer, NnFormerConfig } from "../models/nnformer";
import { planNnFormer } from "../models/nnformer";
import { MaeNnFormer } from "./mae3d";
import { readMaeCheckpointInfo } from "./checkpoint";
import { checkPreprocessingMatch, type Preprocessing } from "../data/preprocess";

export { checkPreprocessingMatch } from "../data/preprocess";

export interface TransferReport {
  /** Encoder tensors copied into the target. */
  transferred: string[];
  /** Source tensors deliberately not copied (MAE decoder, mask tokens). */
  skipped: string[];
  /** Encoder tensors that could not be copied (missing on one side, other shape, or other effective window). */
  mismatched: string[];
}

const ENCODER_PREFIX = "model_down.";
/** Config fields that decide the encoder's tensors and windows. */
const ENCODER_FIELDS: Array<keyof NnFormerConfig> = [
  "inChannels",
  "cropSize",
  "patchSize",
  "embedDim",
  "depths",
  "numHeads",
  "windowSizes",
  "embedStrides",
  "downKernels",
  "downStrides",
  "downPaddings",
  "globalRule",
  "mlpRatio",
];

interface SourceTensor {
  shape: number[];
  read: () => Float32Array;
}

/**
 * Copies the pretrained encoder of `source` (an MAE checkpoint file / bytes, or a MaeNnFormer) into `target`.
 * Throws, changing nothing, when any encoder tensor does not match (or, with `preprocessing`, when the fine-tuning plan
 * differs from the checkpoint's). `check: "report"` returns the report instead of throwing (still copying nothing).
 */
export function transferEncoder(
  source: string | Uint8Array | MaeNnFormer,
  target: NnFormer,
  opts: { preprocessing?: Preprocessing; check?: "throw" | "report" } = {},
): TransferReport {
  let srcConfig: NnFormerConfig;
  const tensors = new Map<string, SourceTensor>();
  const skipped: string[] = [];
  let where: string;
  if (source instanceof MaeNnFormer) {
    where = "MAE model";
    srcConfig = source.config;
    for (const [n, v] of source.encoderParams())
      tensors.set(n, { shape: v.shape, read: () => v.dataSync() as Float32Array });
    skipped.push(...source.params.keys());
    if (opts.preprocessing)
      throw new Error(
        "transferEncoder: preprocessing can only be checked against a checkpoint (an in-memory MAE does not carry its plan); pass the checkpoint file",
      );
  } else {
    const info = readMaeCheckpointInfo(source);
    where = info.source;
    srcConfig = info.config;
    if (opts.preprocessing) checkPreprocessingMatch(info.preprocessing, opts.preprocessing);
    for (const [n, t] of info.ckpt.params) {
      if (n.startsWith(ENCODER_PREFIX)) tensors.set(n, { shape: t.shape, read: () => t.data });
      else skipped.push(n);
    }
  }
  const report: TransferReport = { transferred: [], skipped, mismatched: [] };
  const reasons: string[] = [];
  const srcPlan = planNnFormer(srcConfig),
    dstPlan = target.plan;
  const targetEncoder = [...target.params].filter(([n]) => n.startsWith(ENCODER_PREFIX));
  for (const [name, v] of targetEncoder) {
    const t = tensors.get(name);
    if (!t) {
      report.mismatched.push(name);
      reasons.push(`${name}: not in the source`);
      continue;
    }
    if (t.shape.length !== v.shape.length || t.shape.some((n, i) => n !== v.shape[i])) {
      report.mismatched.push(name);
      reasons.push(`${name}: source [${t.shape}], target [${v.shape}]`);
      continue;
    }
    const m = /^model_down\.layers\.(\d+)\.blocks\.(\d+)\.attn\.relative_position_bias_table$/.exec(name);
    if (m) {
      const ws = srcPlan.encoder[+m[1]]?.blocks[+m[2]]?.window,
        wt = dstPlan.encoder[+m[1]].blocks[+m[2]].window;
      if (!ws || ws.some((w, a) => w !== wt[a])) {
        report.mismatched.push(name);
        reasons.push(
          `${name}: effective window ${JSON.stringify(ws)} in the source, ${JSON.stringify(wt)} in the target`,
        );
        continue;
      }
    }
  }
  const targetNames = new Set(targetEncoder.map(([n]) => n));
  for (const n of tensors.keys()) {
    if (!targetNames.has(n)) {
      report.mismatched.push(n);
      reasons.push(`${n}: not in the target`);
    }
  }
  if (report.mismatched.length) {
    if (opts.check === "report") return report;
    const fields = ENCODER_FIELDS.filter((f) => JSON.stringify(srcConfig[f]) !== JSON.stringify(target.config[f])).map(
      (f) => `${f}: pretrained ${JSON.stringify(srcConfig[f])}, target ${JSON.stringify(target.config[f])}`,
    );
    const windows = (p: ReturnType<typeof planNnFormer>) => JSON.stringify(p.encoder.map((s) => s.blocks[0].window));
    throw new Error(
      `transferEncoder: refusing a partial transfer from ${where}: ${report.mismatched.length} encoder tensor(s) do not match:\n  ` +
        `${reasons.join("\n  ")}\nConfig fields that differ: ${fields.length ? fields.join("; ") : "(none of the encoder fields)"}\n` +
        `Effective windows per stage: pretrained ${windows(srcPlan)}, target ${windows(dstPlan)}.\n` +
        `Fine-tune with the pretraining crop, patch, widths and windows (cropSize, windowSizes decide the position-bias ` +
        `tables under the global-window rule), or pretrain again with the fine-tuning config.`,
    );
  }
  for (const [name, v] of targetEncoder) {
    const t = tensors.get(name)!;
    tf.tidy(() => v.assign(tf.tensor(t.read(), v.shape)));
    report.transferred.push(name);
  }
  return report;
}
