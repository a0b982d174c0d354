// The kit's one checkpoint format: a safetensors file with the parameters (our layouts, official names, under
// "param/"), optional optimizer moments ("opt.m/", "opt.s/") and, in __metadata__, a `kind` and what is needed to
// reuse the weights: model name and config, preprocessing, where the run stands, and run-specific extras.
//   kind "model"            weights only (saveModelCheckpoint)
//   kind "mae-pretraining"  MAE encoder + decoder, its settings, optimizer and fit state (mae/checkpoint.ts)
//   kind "finetune"         a segmentation run's weights, optimizer and fit state (train/segmentation.ts)
// Files written by version 0.1 (formats nnformer-checkpoint-v1, mae-checkpoint-v1, train-checkpoint-v1) are read too.
// Official PyTorch weights are not checkpoints: models/official_weights.ts converts them.
import * as tf from "@tensorflow/tfjs";
import { version as KIT_VERSION } from "../../package.json";
import {
  assertFiniteTensors,
  parseSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  serializeSafetensors,
  type SafetensorsFile,
  type TensorToWrite,
} from "./safetensors";
import { writeFileAtomic } from "../runtime/files";

/** __metadata__.format of checkpoints written by this version. */
export const CHECKPOINT_FORMAT = "mae-nnformer/checkpoint-v2";
/** Formats of version 0.1, still read. */
export const LEGACY_FORMATS = {
  model: "mae-nnformer/nnformer-checkpoint-v1",
  mae: "mae-nnformer/mae-checkpoint-v1",
  train: "mae-nnformer/train-checkpoint-v1",
} as const;
/** Model name recorded for nnFormer weights that carry no registry name (MAE state, version-0.1 model files). */
export const NNFORMER_UNNAMED = "nnformer";

export type CheckpointKind = "model" | "mae-pretraining" | "finetune";

/** Where to use each kind (for error messages). */
const KIND_USE: Record<CheckpointKind, string> = {
  model: "it holds model weights only: load it with loadTrainedModel (or predict --checkpoint)",
  "mae-pretraining":
    "it holds MAE pretraining state: pass it as --mae-checkpoint to finetune/study, to transferEncoder, or as resume to pretrainMae",
  finetune:
    "it holds a fine-tuning run: pass it to predict --checkpoint or loadTrainedModel (or resume that run in its own --out folder)",
};

/** Where a run stands (the same fields as train/fit's FitState). */
export interface SavedFitState {
  step: number;
  bestMetric: number | null;
  bestStep: number | null;
}

/** Optimizer moments keyed by parameter name (stable across processes; tf variable names are not). */
export interface NamedOptimizerState {
  step: number;
  slots: Record<string, { m: Float32Array; s?: Float32Array }>;
}

export interface CheckpointInfo {
  kind: CheckpointKind;
  /** Registry name of the model ("nnformer-small", "unet3d-cpu"), or NNFORMER_UNNAMED. */
  model: string;
  /** The model's config (JSON-serialisable). */
  config: unknown;
  /** Intensity preprocessing the weights were trained with. */
  preprocessing?: unknown;
  fit?: SavedFitState;
  /** Anything else worth recording (MAE settings, run settings, curve). */
  extra?: Record<string, unknown>;
}

export interface Checkpoint {
  /** The file name (or "<buffer>"). */
  source: string;
  /** __metadata__.format as found. */
  format: string;
  info: CheckpointInfo;
  /** Parameters by name, our layouts. */
  params: Map<string, { shape: number[]; data: Float32Array }>;
  /** Optimizer moments, or null when the file has none. */
  optimizer: (NamedOptimizerState & { kind: string }) | null;
  metadata: Record<string, string>;
}

/**
 * Writes parameters (+ optimizer moments) and info atomically. `named`: [parameter name, variable] pairs. Async: the
 * parameters are read with `await data()`, which every backend has (webgpu cannot read synchronously).
 */
export async function saveCheckpoint(
  file: string,
  named: Iterable<[string, tf.Variable]>,
  info: CheckpointInfo,
  optimizer?: NamedOptimizerState & { kind: string },
): Promise<void> {
  const tensors = new Map<string, TensorToWrite>();
  const shapes = new Map<string, number[]>();
  for (const [name, v] of named) {
    tensors.set(`param/${name}`, { dtype: "F32", shape: v.shape, data: (await v.data()) as Float32Array });
    shapes.set(name, v.shape);
  }
  if (optimizer) {
    for (const [name, s] of Object.entries(optimizer.slots)) {
      const shape = shapes.get(name) ?? [s.m.length];
      tensors.set(`opt.m/${name}`, { dtype: "F32", shape, data: s.m });
      if (s.s) tensors.set(`opt.s/${name}`, { dtype: "F32", shape, data: s.s });
    }
  }
  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    kind: info.kind,
    kit_version: KIT_VERSION,
    layout: "tfjs",
    model: info.model,
    config: JSON.stringify(info.config),
    preprocessing: JSON.stringify(info.preprocessing ?? null),
    fit: JSON.stringify(info.fit ?? null),
    extra: JSON.stringify(info.extra ?? {}),
  };
  if (optimizer) {
    metadata.optimizer_step = String(optimizer.step);
    metadata.optimizer = optimizer.kind;
  }
  writeFileAtomic(file, serializeSafetensors(tensors, metadata));
}

/** Saves a model's weights and config as a kind "model" checkpoint. */
export async function saveModelCheckpoint(
  file: string,
  model: { name?: string; config: unknown; params: Iterable<[string, tf.Variable]> },
  extra: Record<string, unknown> = {},
): Promise<void> {
  await saveCheckpoint(file, model.params, {
    kind: "model",
    model: model.name || NNFORMER_UNNAMED,
    config: model.config,
    extra,
  });
}

/** A safetensors file given as a path, the file's bytes or already parsed, and how to name it in errors. */
export function openSafetensors(src: string | Uint8Array | SafetensorsFile): { file: SafetensorsFile; source: string } {
  if (typeof src === "string") return { file: readSafetensors(src), source: src };
  if (src instanceof Uint8Array) return { file: parseSafetensors(src), source: "<buffer>" };
  return { file: src, source: "<parsed safetensors>" };
}

/**
 * Reads a checkpoint of this version or of version 0.1 (any kind). Throws naming the file and its format when it is
 * not one, saying what to do.
 */
export function readCheckpoint(src: string | Uint8Array | SafetensorsFile): Checkpoint {
  const { file, source } = openSafetensors(src);
  const m = file.metadata;
  const json = <T>(key: string, fallback: T): T => {
    if (m[key] === undefined) return fallback;
    try {
      return JSON.parse(m[key]) as T;
    } catch (e) {
      throw new Error(
        `${source}: __metadata__.${key} is not valid JSON (${(e as Error).message}); the file is damaged`,
      );
    }
  };
  const required = (key: string) => {
    if (m[key] === undefined) throw new Error(`${source}: __metadata__.${key} is missing; the file is damaged`);
    return json<unknown>(key, null);
  };
  const params = new Map<string, { shape: number[]; data: Float32Array }>();
  const slots: NamedOptimizerState["slots"] = {};
  // prefixes of parameters and optimizer moments, by format
  let pp = "param/",
    om = "opt.m/",
    os = "opt.s/";
  let info: CheckpointInfo;
  if (m.format === CHECKPOINT_FORMAT || m.format === LEGACY_FORMATS.train) {
    // version 0.1's train-checkpoint-v1 has today's layout without a kind: it only held fine-tuning runs
    const kind = m.format === CHECKPOINT_FORMAT ? (m.kind as CheckpointKind) : "finetune";
    if (!(kind in KIND_USE))
      throw new Error(
        `${source}: __metadata__.kind = ${JSON.stringify(m.kind)}: expected model, mae-pretraining or finetune`,
      );
    info = {
      kind,
      model: m.model ?? "",
      config: required("config"),
      preprocessing: json("preprocessing", null),
      fit: json("fit", null) ?? undefined,
      extra: json("extra", {}),
    };
  } else if (m.format === LEGACY_FORMATS.mae) {
    [pp, om, os] = ["", "optimizer.m/", "optimizer.s/"];
    info = {
      kind: "mae-pretraining",
      model: NNFORMER_UNNAMED,
      config: required("config"),
      preprocessing: required("preprocessing"),
      fit: json("fit_state", null) ?? undefined,
      extra: { mae: required("mae"), train: json("train", null) },
    };
  } else if (m.format === LEGACY_FORMATS.model) {
    pp = "";
    const { format: _f, config: _c, kit_version: _k, layout: _l, ...rest } = m;
    info = { kind: "model", model: NNFORMER_UNNAMED, config: required("config"), extra: rest };
  } else {
    throw new Error(
      `${source}: not a checkpoint this version of the kit reads (__metadata__.format = ${JSON.stringify(m.format)}; ` +
        `it reads ${CHECKPOINT_FORMAT} and ${Object.values(LEGACY_FORMATS).join(", ")}). ` +
        `Official PyTorch weights load with importOfficialWeights; a file from a newer kit needs that version.`,
    );
  }
  for (const [k, t] of file.tensors) {
    if (k.startsWith(om)) {
      const name = k.slice(om.length);
      const s = file.tensors.get(os + name);
      slots[name] = { m: t.data as Float32Array, s: s ? (s.data as Float32Array) : undefined };
    } else if (k.startsWith(os)) continue;
    else if (k.startsWith(pp)) {
      if (!["F32"].includes(t.dtype))
        throw new Error(`${source}: tensor ${k} is ${t.dtype}; kit checkpoints hold F32 parameters`);
      params.set(k.slice(pp.length), { shape: t.shape, data: t.data as Float32Array });
    }
  }
  // NaN weights would predict an all-background map without a word: refuse them here, on every load path.
  assertFiniteTensors(
    [...params].map(([name, t]): [string, typeof t] => [pp + name, t]), // named as stored in the file
    source,
    "the weights are unusable (did training diverge?); use another checkpoint or train again",
  );
  const moments = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, sl] of Object.entries(slots)) {
    moments.set(om + name, { shape: [sl.m.length], data: sl.m });
    if (sl.s) moments.set(os + name, { shape: [sl.s.length], data: sl.s });
  }
  assertFiniteTensors(moments, source, "the optimizer state is unusable; delete the file to restart that run");
  const optimizer =
    m.optimizer_step !== undefined && Object.keys(slots).length
      ? { step: Number(m.optimizer_step), kind: m.optimizer ?? "", slots }
      : null;
  return { source, format: m.format, info, params, optimizer, metadata: m };
}

/**
 * The kind of a checkpoint file from its header alone (cheap, for checks before any work); undefined when it is not a
 * kit checkpoint. Throws naming the file when it is damaged or truncated.
 */
export function peekCheckpointKind(file: string): CheckpointKind | undefined {
  const m = readSafetensorsHeader(file).metadata;
  if (m.format === CHECKPOINT_FORMAT) return m.kind in KIND_USE ? (m.kind as CheckpointKind) : undefined;
  if (m.format === LEGACY_FORMATS.train) return "finetune";
  if (m.format === LEGACY_FORMATS.mae) return "mae-pretraining";
  if (m.format === LEGACY_FORMATS.model) return "model";
  return undefined;
}

/** Throws unless the checkpoint is of one of `kinds`, saying what it is and where it belongs. `use` names the caller. */
export function checkKind(ckpt: Checkpoint, kinds: CheckpointKind[], use: string): void {
  if (kinds.includes(ckpt.info.kind)) return;
  throw new Error(
    `${ckpt.source} is a "${ckpt.info.kind}" checkpoint, but ${use} needs ${kinds.map((k) => `"${k}"`).join(" or ")}; ` +
      KIND_USE[ckpt.info.kind],
  );
}

/** Fields of two config-like objects that differ, as "field: <a> X, <b> Y" (the one config diff of the kit). */
export function configDiff(a: unknown, b: unknown, names: [string, string] = ["checkpoint", "model"]): string[] {
  const ra = (a ?? {}) as Record<string, unknown>,
    rb = (b ?? {}) as Record<string, unknown>;
  const out: string[] = [];
  for (const k of new Set([...Object.keys(ra), ...Object.keys(rb)])) {
    const x = JSON.stringify(ra[k]),
      y = JSON.stringify(rb[k]);
    if (x !== y) out.push(`${k}: ${names[0]} ${x}, ${names[1]} ${y}`);
  }
  return out;
}

/**
 * Loads a checkpoint's parameters into `named` variables. Refuses one saved for another config (naming the differing
 * fields) and one whose tensors do not match (naming each: missing, unknown, mis-shaped), before changing anything.
 */
export function restoreParams(
  ckpt: Checkpoint,
  named: Iterable<[string, tf.Variable]>,
  expect: { config: unknown; what: string },
): void {
  const diff = configDiff(ckpt.info.config, expect.config);
  if (diff.length)
    throw new Error(
      `${ckpt.source}: checkpoint was saved for another ${expect.what} config; differing fields:\n  ${diff.join("\n  ")}`,
    );
  const vars = new Map(named);
  const problems: string[] = [];
  for (const [name, v] of vars) {
    const t = ckpt.params.get(name);
    if (!t) problems.push(`missing ${name}`);
    else if (t.shape.join(",") !== v.shape.join(","))
      problems.push(`mis-shaped ${name}: [${t.shape}] in the file, [${v.shape}] in the model`);
  }
  for (const name of ckpt.params.keys()) if (!vars.has(name)) problems.push(`unknown ${name}`);
  if (problems.length)
    throw new Error(`${ckpt.source}: checkpoint does not fit the ${expect.what}:\n  ${problems.join("\n  ")}`);
  for (const [name, v] of vars) tf.tidy(() => v.assign(tf.tensor(ckpt.params.get(name)!.data, v.shape)));
}

/** Optimizer state keyed by tf variable names (Optimizer.state()) -> keyed by parameter names. */
export function slotsByParamName(
  named: Iterable<[string, tf.Variable]>,
  state: NamedOptimizerState,
): NamedOptimizerState {
  const byVar = new Map([...named].map(([n, v]) => [v.name, n]));
  const slots: NamedOptimizerState["slots"] = {};
  for (const [vn, slot] of Object.entries(state.slots)) slots[byVar.get(vn) ?? vn] = slot;
  return { step: state.step, slots };
}

/** The reverse: parameter names -> these variables' tf names (for Optimizer.setState / fit's resume). */
export function slotsByVariableName(
  named: Iterable<[string, tf.Variable]>,
  state: NamedOptimizerState | null,
): NamedOptimizerState {
  const slots: NamedOptimizerState["slots"] = {};
  if (state) for (const [n, v] of named) if (state.slots[n]) slots[v.name] = state.slots[n];
  return { step: state?.step ?? 0, slots };
}
