// MAE checkpoints: one safetensors file with the encoder (official nnFormer names, our layouts), the MAE decoder and
// mask tokens, the optimizer moments (under "optimizer.m/<name>", "optimizer.s/<name>") and, in __metadata__, the
// nnFormer config, the MAE settings (mask mode, ratio, unit, decoder, loss), the preprocessing plan, the fit state and
// the training settings, so that a resumed run continues the same schedule and fine-tuning can check the preprocessing.
// Written atomically (writeFileAtomic), like every checkpoint of the kit.
import * as tf from "@tensorflow/tfjs";
import { version as KIT_VERSION } from "../../package.json";
import {
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  type SafetensorsFile,
  type TensorToWrite,
} from "../io/safetensors";
import { writeFileAtomic } from "../runtime/files";
import type { NnFormerConfig } from "../models/nnformer";
import { diffConfigs } from "../models/weights_io";
import type { FitState } from "../train/fit";
import { MaeConfig, MaeNnFormer } from "./mae3d";
import type { Preprocessing } from "../data/preprocess";

/** __metadata__.format of MAE checkpoints. */
export const MAE_CHECKPOINT_FORMAT = "mae-nnformer/mae-checkpoint-v1";

/** Optimizer contents keyed by parameter name (stable across processes; tf variable names are not). */
export interface NamedOptimizerState {
  step: number;
  slots: Record<string, { m: Float32Array; s?: Float32Array }>;
}

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

const OPT_M = "optimizer.m/",
  OPT_S = "optimizer.s/";

/** Saves the model, its settings and (optionally) fit and optimizer state, atomically. */
export function saveMaeCheckpoint(
  file: string,
  model: MaeNnFormer,
  info: {
    preprocessing: Preprocessing;
    fitState?: FitState;
    train?: Record<string, unknown>;
    optimizer?: NamedOptimizerState;
  },
): void {
  const tensors = new Map<string, TensorToWrite>();
  for (const [name, v] of model.namedParams())
    tensors.set(name, { dtype: "F32", shape: v.shape, data: v.dataSync() as Float32Array });
  const named = model.namedParams();
  if (info.optimizer) {
    for (const [name, slot] of Object.entries(info.optimizer.slots)) {
      const shape = named.get(name)?.shape ?? [slot.m.length];
      tensors.set(OPT_M + name, { dtype: "F32", shape, data: slot.m });
      if (slot.s) tensors.set(OPT_S + name, { dtype: "F32", shape, data: slot.s });
    }
  }
  const metadata: Record<string, string> = {
    format: MAE_CHECKPOINT_FORMAT,
    kit_version: KIT_VERSION,
    layout: "tfjs",
    config: JSON.stringify(model.config),
    mae: JSON.stringify(model.mae),
    preprocessing: JSON.stringify(info.preprocessing),
  };
  if (info.fitState) metadata.fit_state = JSON.stringify(info.fitState);
  if (info.train) metadata.train = JSON.stringify(info.train);
  if (info.optimizer) metadata.optimizer_step = String(info.optimizer.step);
  writeFileAtomic(file, serializeSafetensors(tensors, metadata));
}

function asFile(src: string | Uint8Array | SafetensorsFile): { file: SafetensorsFile; name: string } {
  if (typeof src === "string") return { file: readSafetensors(src), name: src };
  if (src instanceof Uint8Array) return { file: parseSafetensors(src), name: "<buffer>" };
  return { file: src, name: "<parsed safetensors>" };
}

function parseJson<T>(m: Record<string, string>, key: string, source: string): T {
  try {
    return JSON.parse(m[key]) as T;
  } catch (e) {
    throw new Error(
      `${source}: __metadata__.${key} is missing or not valid JSON (${(e as Error).message}); is this an MAE checkpoint of this kit?`,
    );
  }
}

/** Reads a checkpoint's settings (no tensors are made). Throws for files that are not MAE checkpoints. */
export function readMaeCheckpointInfo(
  src: string | Uint8Array | SafetensorsFile,
): MaeCheckpointInfo & { file: SafetensorsFile; source: string } {
  const { file, name } = asFile(src);
  const m = file.metadata;
  if (m.format !== MAE_CHECKPOINT_FORMAT) {
    throw new Error(
      `${name}: not an MAE checkpoint of this kit (__metadata__.format = ${JSON.stringify(m.format)}); segmentation checkpoints load with loadNnFormerCheckpoint`,
    );
  }
  let optimizer: NamedOptimizerState | null = null;
  if (m.optimizer_step !== undefined) {
    const slots: NamedOptimizerState["slots"] = {};
    for (const [k, t] of file.tensors) {
      if (!k.startsWith(OPT_M)) continue;
      const n = k.slice(OPT_M.length);
      const s = file.tensors.get(OPT_S + n);
      slots[n] = { m: t.data as Float32Array, s: s ? (s.data as Float32Array) : undefined };
    }
    optimizer = { step: Number(m.optimizer_step), slots };
  }
  return {
    file,
    source: name,
    metadata: m,
    config: parseJson<NnFormerConfig>(m, "config", name),
    mae: parseJson<MaeConfig>(m, "mae", name),
    preprocessing: parseJson<Preprocessing>(m, "preprocessing", name),
    fitState: m.fit_state ? parseJson<FitState>(m, "fit_state", name) : null,
    train: m.train ? parseJson<Record<string, unknown>>(m, "train", name) : null,
    optimizer,
  };
}

/** Loads a checkpoint's weights into an existing model; throws naming config / MAE-setting differences or damaged tensors. */
export function restoreMaeCheckpoint(
  model: MaeNnFormer,
  src: string | Uint8Array | SafetensorsFile,
): MaeCheckpointInfo {
  const info = readMaeCheckpointInfo(src);
  const diff = diffConfigs(info.config, model.config);
  const maeDiff = Object.keys({ ...info.mae, ...model.mae })
    .filter(
      (k) =>
        JSON.stringify((info.mae as unknown as Record<string, unknown>)[k]) !==
        JSON.stringify((model.mae as unknown as Record<string, unknown>)[k]),
    )
    .map(
      (k) =>
        `mae.${k}: checkpoint ${JSON.stringify((info.mae as unknown as Record<string, unknown>)[k])}, model ${JSON.stringify((model.mae as unknown as Record<string, unknown>)[k])}`,
    );
  if (diff.length || maeDiff.length) {
    throw new Error(
      `${info.source}: checkpoint was saved for another MAE model; differing fields:\n  ${[...diff, ...maeDiff].join("\n  ")}\nBuild the model from the checkpoint (loadMaeCheckpoint) or use the same settings`,
    );
  }
  const named = model.namedParams();
  const problems: string[] = [];
  for (const [name, v] of named) {
    const t = info.file.tensors.get(name);
    if (!t) problems.push(`missing ${name}`);
    else if (t.shape.length !== v.shape.length || t.shape.some((n, i) => n !== v.shape[i]))
      problems.push(`mis-shaped ${name} [${t.shape}] (expected [${v.shape}])`);
  }
  for (const name of info.file.tensors.keys())
    if (!named.has(name) && !name.startsWith("optimizer.")) problems.push(`unknown ${name}`);
  if (problems.length) throw new Error(`${info.source}: damaged MAE checkpoint:\n  ${problems.join("\n  ")}`);
  for (const [name, v] of named)
    tf.tidy(() => v.assign(tf.tensor(info.file.tensors.get(name)!.data as Float32Array, v.shape)));
  return info;
}

/** Builds an MAE model from a checkpoint and loads its weights. */
export function loadMaeCheckpoint(src: string | Uint8Array): MaeCheckpointInfo & { model: MaeNnFormer } {
  const pre = readMaeCheckpointInfo(src);
  const model = new MaeNnFormer(pre.config, pre.mae, { init: "zeros" });
  try {
    return { ...restoreMaeCheckpoint(model, pre.file), model };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** Optimizer.state() (keyed by tf variable names) → keyed by parameter names. */
export function nameOptimizerState(
  model: MaeNnFormer,
  state: { step: number; slots: Record<string, { m: Float32Array; s?: Float32Array }> },
): NamedOptimizerState {
  const byVar = new Map([...model.namedParams()].map(([n, v]) => [v.name, n]));
  const slots: NamedOptimizerState["slots"] = {};
  for (const [vn, slot] of Object.entries(state.slots)) slots[byVar.get(vn) ?? vn] = slot;
  return { step: state.step, slots };
}

/** The reverse: parameter names → this model's tf variable names (for Optimizer.setState / fit's resume). */
export function optimizerStateForModel(
  model: MaeNnFormer,
  named: NamedOptimizerState,
): { step: number; slots: Record<string, { m: Float32Array; s?: Float32Array }> } {
  const slots: Record<string, { m: Float32Array; s?: Float32Array }> = {};
  for (const [n, v] of model.namedParams()) if (named.slots[n]) slots[v.name] = named.slots[n];
  return { step: named.step, slots };
}
