// Training checkpoints for any model: weights, optimizer moments, where the run stands, and what is needed to reuse
// the weights (model name and config, preprocessing). One safetensors file, written atomically.
// Variable names are stored without the per-instance prefix tfjs needs ("nnformer3/model_down..." -> "model_down..."),
// so a checkpoint loads into a freshly built model in another process.
import * as tf from "@tensorflow/tfjs";
import { readSafetensors, serializeSafetensors, SafetensorsFile, TensorToWrite } from "../io/safetensors";
import { writeFileAtomic } from "../runtime/files";
import { Optimizer } from "./optim";
import { FitState } from "./fit";
import { buildModel } from "../registry";
import type { SegmentationModel } from "../models/types";

export const TRAIN_CHECKPOINT_FORMAT = "mae-nnformer/train-checkpoint-v1";

/** "nnformer3/model_down.norm0.weight" -> "model_down.norm0.weight". */
export function stableName(variableName: string): string {
  const i = variableName.indexOf("/");
  return i >= 0 ? variableName.slice(i + 1) : variableName;
}

export interface CheckpointInfo {
  /** Registry name of the model ("nnformer-small", "mae-nnformer-small", ...). */
  model: string;
  /** The model's config (JSON-serialisable). */
  config: unknown;
  /** Intensity preprocessing the weights were trained with. */
  preprocessing?: unknown;
  fit?: FitState;
  /** Anything else worth recording (run settings, manifest name). */
  extra?: Record<string, unknown>;
}

/** Writes variables (+ optimizer state) and info to `file` atomically. */
export async function saveCheckpoint(
  file: string,
  variables: tf.Variable[],
  info: CheckpointInfo,
  optimizer?: Optimizer,
): Promise<void> {
  const tensors = new Map<string, TensorToWrite>();
  for (const v of variables)
    tensors.set(`param/${stableName(v.name)}`, {
      dtype: "F32",
      shape: v.shape,
      data: (await v.data()) as Float32Array,
    });
  let optStep = 0;
  if (optimizer) {
    const st = await optimizer.state();
    optStep = st.step;
    for (const [name, s] of Object.entries(st.slots)) {
      const shape = variables.find((v) => v.name === name)?.shape ?? [s.m.length];
      tensors.set(`opt.m/${stableName(name)}`, { dtype: "F32", shape, data: s.m });
      if (s.s) tensors.set(`opt.s/${stableName(name)}`, { dtype: "F32", shape, data: s.s });
    }
  }
  const metadata: Record<string, string> = {
    format: TRAIN_CHECKPOINT_FORMAT,
    model: info.model,
    config: JSON.stringify(info.config),
    preprocessing: JSON.stringify(info.preprocessing ?? null),
    fit: JSON.stringify(info.fit ?? null),
    extra: JSON.stringify(info.extra ?? {}),
    optimizer_step: String(optStep),
    optimizer: optimizer ? optimizer.config.kind : "",
  };
  writeFileAtomic(file, serializeSafetensors(tensors, metadata));
}

export interface LoadedCheckpoint {
  file: string;
  info: CheckpointInfo;
  raw: SafetensorsFile;
}

/** Reads a checkpoint and its info; throws naming the file when it is not a training checkpoint of this kit. */
export function loadCheckpoint(file: string): LoadedCheckpoint {
  const raw = readSafetensors(file);
  const m = raw.metadata;
  if (m.format !== TRAIN_CHECKPOINT_FORMAT) {
    throw new Error(
      `${file}: not a training checkpoint of this kit (__metadata__.format = ${JSON.stringify(m.format)})`,
    );
  }
  const parse = (k: string) => {
    try {
      return JSON.parse(m[k] ?? "null");
    } catch (e) {
      throw new Error(`${file}: __metadata__.${k} is not valid JSON (${(e as Error).message}); the file is damaged`);
    }
  };
  return {
    file,
    raw,
    info: {
      model: m.model,
      config: parse("config"),
      preprocessing: parse("preprocessing"),
      fit: parse("fit") ?? undefined,
      extra: parse("extra"),
    },
  };
}

/** Fields of two configs that differ, as "field: a vs b". */
export function configDiff(a: unknown, b: unknown): string[] {
  const ra = (a ?? {}) as Record<string, unknown>,
    rb = (b ?? {}) as Record<string, unknown>;
  const out: string[] = [];
  for (const k of new Set([...Object.keys(ra), ...Object.keys(rb)])) {
    const x = JSON.stringify(ra[k]),
      y = JSON.stringify(rb[k]);
    if (x !== y) out.push(`${k}: ${x} vs ${y}`);
  }
  return out;
}

/**
 * Loads the weights into `variables`. Refuses a checkpoint of another model or config (naming the differing fields)
 * and one whose tensors do not match (naming each), before changing anything.
 */
export function restoreVariables(
  ckpt: LoadedCheckpoint,
  variables: tf.Variable[],
  expect: { model: string; config: unknown },
): void {
  if (ckpt.info.model !== expect.model) {
    throw new Error(
      `${ckpt.file}: checkpoint is for model "${ckpt.info.model}", not "${expect.model}"; pass a checkpoint of the same model`,
    );
  }
  const diff = configDiff(ckpt.info.config, expect.config);
  if (diff.length)
    throw new Error(
      `${ckpt.file}: checkpoint was saved for another ${expect.model} config; differing fields: ${diff.join("; ")}`,
    );
  const problems: string[] = [];
  const wanted = new Set<string>();
  for (const v of variables) {
    const key = `param/${stableName(v.name)}`;
    wanted.add(key);
    const t = ckpt.raw.tensors.get(key);
    if (!t) problems.push(`missing ${key}`);
    else if (t.shape.join(",") !== v.shape.join(","))
      problems.push(`${key}: shape [${t.shape}] in the file, [${v.shape}] in the model`);
  }
  for (const k of ckpt.raw.tensors.keys()) if (k.startsWith("param/") && !wanted.has(k)) problems.push(`unknown ${k}`);
  if (problems.length) throw new Error(`${ckpt.file}: checkpoint does not fit the model:\n  ${problems.join("\n  ")}`);
  for (const v of variables) {
    const t = ckpt.raw.tensors.get(`param/${stableName(v.name)}`)!;
    tf.tidy(() => v.assign(tf.tensor(t.data as Float32Array, v.shape)));
  }
}

/** Optimizer state for Optimizer.setState, keyed by the current variables' names. */
export function optimizerStateFor(
  ckpt: LoadedCheckpoint,
  variables: tf.Variable[],
): Parameters<Optimizer["setState"]>[0] {
  const slots: Record<string, { m: Float32Array; s?: Float32Array }> = {};
  for (const v of variables) {
    const m = ckpt.raw.tensors.get(`opt.m/${stableName(v.name)}`);
    const s = ckpt.raw.tensors.get(`opt.s/${stableName(v.name)}`);
    if (m) slots[v.name] = { m: m.data as Float32Array, s: s ? (s.data as Float32Array) : undefined };
  }
  return { step: Number(ckpt.raw.metadata.optimizer_step ?? 0), slots };
}

/** Builds the registered model a training checkpoint was saved from and loads its weights. */
export function loadTrainedModel(file: string): { model: SegmentationModel; info: CheckpointInfo } {
  const ckpt = loadCheckpoint(file);
  const config = ckpt.info.config as { inChannels: number; numClasses: number; cropSize: [number, number, number] };
  const model = buildModel(ckpt.info.model, {
    inChannels: config.inChannels,
    numClasses: config.numClasses,
    cropSize: config.cropSize,
    seed: 0,
  });
  try {
    restoreVariables(ckpt, model.trainableVariables(), { model: ckpt.info.model, config: model.config });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, info: ckpt.info };
}
