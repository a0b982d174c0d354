// MAE pretraining checkpoints: kind "mae-pretraining" of the kit's checkpoint format (io/checkpoint.ts). The file holds
// the encoder (official nnFormer names, our layouts), the MAE decoder and mask tokens, the optimizer moments and, in
// its metadata, the nnFormer config, the MAE settings (mask mode, ratio, unit, decoder, loss), the preprocessing plan,
// the fit state and the training settings, so that a resumed run continues the same schedule and fine-tuning can check
// the preprocessing.
import {
  NNFORMER_UNNAMED,
  checkKind,
  configDiff,
  readCheckpoint,
  restoreParams,
  saveCheckpoint,
  type Checkpoint,
  type NamedOptimizerState,
} from "../io/checkpoint";
import type { SafetensorsFile } from "../io/safetensors";
import type { NnFormerConfig } from "../models/nnformer";
import type { FitState } from "../train/fit";
import { MaeConfig, MaeNnFormer } from "./mae3d";
import type { Preprocessing } from "../data/preprocess";

export type { NamedOptimizerState } from "../io/checkpoint";

/** What a checkpoint records besides the weights. */
export interface MaeCheckpointInfo {
  config: NnFormerConfig;
  mae: MaeConfig;
  preprocessing: Preprocessing;
  fitState: FitState | null;
  /** Training settings of the run (schedule, batch, seed, data), as saved by pretrainMae. */
  train: Record<string, unknown> | null;
  optimizer: NamedOptimizerState | null;
  metadata: Record<string, string>;
}

/** Saves the model, its settings and (optionally) fit and optimizer state, atomically. */
export async function saveMaeCheckpoint(
  file: string,
  model: MaeNnFormer,
  info: {
    preprocessing: Preprocessing;
    fitState?: FitState;
    train?: Record<string, unknown>;
    optimizer?: NamedOptimizerState;
  },
): Promise<void> {
  await saveCheckpoint(
    file,
    model.namedParams(),
    {
      kind: "mae-pretraining",
      model: NNFORMER_UNNAMED,
      config: model.config,
      preprocessing: info.preprocessing,
      fit: info.fitState,
      extra: { mae: model.mae, train: info.train ?? null },
    },
    info.optimizer ? { ...info.optimizer, kind: "adamw" } : undefined,
  );
}

/** Reads a checkpoint's settings. Throws for files that are not MAE checkpoints, saying which kind they are. */
export function readMaeCheckpointInfo(
  src: string | Uint8Array | SafetensorsFile | Checkpoint,
): MaeCheckpointInfo & { ckpt: Checkpoint; source: string } {
  const ckpt = isCheckpoint(src) ? src : readCheckpoint(src);
  checkKind(ckpt, ["mae-pretraining"], "MAE pretraining state (--mae-checkpoint, transferEncoder, pretrainMae resume)");
  const extra = (ckpt.info.extra ?? {}) as { mae?: MaeConfig; train?: Record<string, unknown> | null };
  if (!extra.mae)
    throw new Error(`${ckpt.source}: the MAE settings are missing from __metadata__; the file is damaged`);
  return {
    ckpt,
    source: ckpt.source,
    metadata: ckpt.metadata,
    config: ckpt.info.config as NnFormerConfig,
    mae: extra.mae,
    preprocessing: ckpt.info.preprocessing as Preprocessing,
    fitState: ckpt.info.fit ?? null,
    train: extra.train ?? null,
    optimizer: ckpt.optimizer,
  };
}

function isCheckpoint(x: unknown): x is Checkpoint {
  return typeof x === "object" && x !== null && "info" in x && "params" in x && "source" in x;
}

/** Loads a checkpoint's weights into an existing model; throws naming config / MAE-setting differences or damaged tensors. */
export function restoreMaeCheckpoint(
  model: MaeNnFormer,
  src: string | Uint8Array | SafetensorsFile | Checkpoint,
): MaeCheckpointInfo {
  const info = readMaeCheckpointInfo(src);
  const diff = [...configDiff(info.config, model.config), ...configDiff(info.mae, model.mae).map((d) => `mae.${d}`)];
  if (diff.length) {
    throw new Error(
      `${info.source}: checkpoint was saved for another MAE model; differing fields:\n  ${diff.join("\n  ")}\nBuild the model from the checkpoint (loadMaeCheckpoint) or use the same settings`,
    );
  }
  restoreParams(info.ckpt, model.namedParams(), { config: model.config, what: "MAE model" });
  return info;
}

/** Builds an MAE model from a checkpoint and loads its weights. */
export function loadMaeCheckpoint(src: string | Uint8Array): MaeCheckpointInfo & { model: MaeNnFormer } {
  const pre = readMaeCheckpointInfo(src);
  const model = new MaeNnFormer(pre.config, pre.mae, { init: "zeros" });
  try {
    return { ...restoreMaeCheckpoint(model, pre.ckpt), model };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
