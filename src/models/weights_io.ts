// nnFormer weights in and out: the official PyTorch state_dict (as safetensors, torch layouts, official names) and the
// kit's own checkpoint (safetensors in our layouts + the config in __metadata__). Layouts per spec §8.9.
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
import { NnFormer, type NnFormerConfig, torchToTfPerm } from "./nnformer";

/** What an import found, by official tensor name. */
export interface WeightImportReport {
  /** Names in the file that the model does not have. */
  unknown: string[];
  /** Parameters or buffers of the model absent from the file. */
  missing: string[];
  /** Tensors whose shape (or dtype kind) differs: expected is the PyTorch shape. */
  misshapen: Array<{ name: string; expected: number[]; got: number[]; dtype: string }>;
  /** relative_position_index buffers whose values differ from the official formula. */
  bufferMismatch: string[];
  /** Parameters assigned. */
  loaded: number;
}

const FLOAT_DTYPES = new Set(["F32", "F16", "BF16", "F64"]);
const INT_DTYPES = new Set(["I64", "I32", "I16", "I8", "U8"]);
const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

function inversePerm(perm: number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

function asFile(src: string | SafetensorsFile | Uint8Array): { file: SafetensorsFile; name: string } {
  if (typeof src === "string") return { file: readSafetensors(src), name: src };
  if (src instanceof Uint8Array) return { file: parseSafetensors(src), name: "<buffer>" };
  return { file: src, name: "<parsed safetensors>" };
}

/**
 * Loads an official state_dict (safetensors with PyTorch names and layouts) into the model, converting layouts.
 * Strict (default): throws listing every unknown, missing and mis-shaped tensor and changes nothing.
 * `strict: false`: loads every tensor that fits and returns the report.
 */
export function importOfficialWeights(
  model: NnFormer,
  src: string | SafetensorsFile | Uint8Array,
  opts: { strict?: boolean } = {},
): WeightImportReport {
  const { file, name: source } = asFile(src);
  const strict = opts.strict ?? true;
  const report: WeightImportReport = { unknown: [], missing: [], misshapen: [], bufferMismatch: [], loaded: 0 };
  const known = new Set<string>();
  const ok: Array<{ spec: (typeof model.specs.params)[number]; data: Float32Array }> = [];
  for (const spec of model.specs.params) {
    known.add(spec.name);
    const t = file.tensors.get(spec.name);
    if (!t) report.missing.push(spec.name);
    else if (!sameShape(t.shape, spec.torchShape) || !FLOAT_DTYPES.has(t.dtype)) {
      report.misshapen.push({ name: spec.name, expected: spec.torchShape, got: t.shape, dtype: t.dtype });
    } else ok.push({ spec, data: t.data as Float32Array });
  }
  for (const b of model.specs.buffers) {
    known.add(b.name);
    const t = file.tensors.get(b.name);
    if (!t) report.missing.push(b.name);
    else if (!sameShape(t.shape, b.shape) || !INT_DTYPES.has(t.dtype))
      report.misshapen.push({ name: b.name, expected: b.shape, got: t.shape, dtype: t.dtype });
    else {
      const ours = model.buffers.get(b.name)!;
      if (ours.some((v, i) => v !== t.data[i])) report.bufferMismatch.push(b.name);
    }
  }
  for (const n of file.tensors.keys()) if (!known.has(n)) report.unknown.push(n);
  const problems =
    report.unknown.length + report.missing.length + report.misshapen.length + report.bufferMismatch.length;
  if (strict && problems)
    throw new Error(`${source}: cannot import official nnFormer weights:\n${describeReport(report)}`);
  for (const { spec, data } of ok) {
    const perm = torchToTfPerm(spec.kind);
    const v = tf.tidy(() => {
      const t = tf.tensor(data, spec.torchShape);
      return perm ? tf.transpose(t, perm) : t;
    });
    model.params.get(spec.name)!.assign(v);
    v.dispose();
    report.loaded++;
  }
  return report;
}

/** One line per problem kind, naming every tensor. */
export function describeReport(r: WeightImportReport): string {
  const lines: string[] = [];
  if (r.unknown.length) lines.push(`  unknown (${r.unknown.length}): ${r.unknown.join(", ")}`);
  if (r.missing.length) lines.push(`  missing (${r.missing.length}): ${r.missing.join(", ")}`);
  if (r.misshapen.length) {
    lines.push(
      `  mis-shaped (${r.misshapen.length}): ${r.misshapen.map((m) => `${m.name} ${m.dtype} [${m.got}] (expected [${m.expected}])`).join(", ")}`,
    );
  }
  if (r.bufferMismatch.length)
    lines.push(
      `  relative_position_index differs from the official formula (${r.bufferMismatch.length}): ${r.bufferMismatch.join(", ")}`,
    );
  return lines.join("\n");
}

/** The model as an official state_dict: PyTorch names, layouts, F32 parameters and I64 index buffers. */
export function officialStateDict(model: NnFormer): Map<string, TensorToWrite> {
  const out = new Map<string, TensorToWrite>();
  for (const spec of model.specs.params) {
    const v = model.params.get(spec.name)!;
    const perm = torchToTfPerm(spec.kind);
    const data = perm
      ? tf.tidy(() => tf.transpose(v, inversePerm(perm)).dataSync() as Float32Array)
      : (v.dataSync() as Float32Array);
    out.set(spec.name, { dtype: "F32", shape: spec.torchShape, data });
  }
  for (const b of model.specs.buffers)
    out.set(b.name, { dtype: "I64", shape: b.shape, data: model.buffers.get(b.name)! });
  return out;
}

/** Writes the official state_dict as safetensors (atomically); loadable in PyTorch with safetensors.torch.load_file. */
export function exportOfficialWeights(model: NnFormer, file: string): void {
  writeFileAtomic(
    file,
    serializeSafetensors(officialStateDict(model), { format: "pt", source: `mae-nnformer ${KIT_VERSION}` }),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// The kit's checkpoint: our layouts, the config in the metadata.

/** __metadata__.format of kit checkpoints. */
export const NNFORMER_CHECKPOINT_FORMAT = "mae-nnformer/nnformer-checkpoint-v1";

/** Saves parameters (our layouts, official names) with the config, kit version and any extra string metadata. */
export function saveNnFormerCheckpoint(model: NnFormer, file: string, extra: Record<string, string> = {}): void {
  const tensors = new Map<string, TensorToWrite>();
  for (const [name, v] of model.params)
    tensors.set(name, { dtype: "F32", shape: v.shape, data: v.dataSync() as Float32Array });
  const metadata = {
    ...extra,
    format: NNFORMER_CHECKPOINT_FORMAT,
    kit_version: KIT_VERSION,
    config: JSON.stringify(model.config),
    layout: "tfjs",
  };
  writeFileAtomic(file, serializeSafetensors(tensors, metadata));
}

function checkpointConfig(file: SafetensorsFile, source: string): NnFormerConfig {
  const m = file.metadata;
  if (m.format !== NNFORMER_CHECKPOINT_FORMAT) {
    throw new Error(
      `${source}: not an nnFormer checkpoint of this kit (__metadata__.format = ${JSON.stringify(m.format)}); for official PyTorch weights use importOfficialWeights`,
    );
  }
  try {
    return JSON.parse(m.config) as NnFormerConfig;
  } catch (e) {
    throw new Error(`${source}: __metadata__.config is not valid JSON (${(e as Error).message})`);
  }
}

/** Config fields that differ, as "field: checkpoint X, model Y". */
export function diffConfigs(ckpt: NnFormerConfig, model: NnFormerConfig): string[] {
  const keys = new Set([...Object.keys(ckpt), ...Object.keys(model)]) as Set<keyof NnFormerConfig>;
  const out: string[] = [];
  for (const k of keys) {
    const a = JSON.stringify(ckpt[k]),
      b = JSON.stringify(model[k]);
    if (a !== b) out.push(`${k}: checkpoint ${a}, model ${b}`);
  }
  return out;
}

/** Reads a checkpoint into an existing model; throws naming the differing config fields if it was saved for another config. */
export function restoreNnFormerCheckpoint(
  model: NnFormer,
  src: string | Uint8Array | SafetensorsFile,
): Record<string, string> {
  const { file, name: source } = asFile(src);
  const cfg = checkpointConfig(file, source);
  const diff = diffConfigs(cfg, model.config);
  if (diff.length)
    throw new Error(`${source}: checkpoint is for another nnFormer config; differing fields:\n  ${diff.join("\n  ")}`);
  const problems: string[] = [];
  for (const [name, v] of model.params) {
    const t = file.tensors.get(name);
    if (!t) problems.push(`missing ${name}`);
    else if (!sameShape(t.shape, v.shape) || !FLOAT_DTYPES.has(t.dtype))
      problems.push(`mis-shaped ${name} ${t.dtype} [${t.shape}] (expected [${v.shape}])`);
  }
  for (const name of file.tensors.keys()) if (!model.params.has(name)) problems.push(`unknown ${name}`);
  if (problems.length) throw new Error(`${source}: damaged checkpoint:\n  ${problems.join("\n  ")}`);
  for (const [name, v] of model.params) {
    const t = file.tensors.get(name)!;
    tf.tidy(() => v.assign(tf.tensor(t.data as Float32Array, v.shape)));
  }
  return file.metadata;
}

/** Builds a model from a checkpoint's config and loads its weights. */
export function loadNnFormerCheckpoint(src: string | Uint8Array): {
  model: NnFormer;
  metadata: Record<string, string>;
} {
  const { file, name } = asFile(src);
  const model = new NnFormer(checkpointConfig(file, name), { init: "zeros" });
  try {
    return { model, metadata: restoreNnFormerCheckpoint(model, file) };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
