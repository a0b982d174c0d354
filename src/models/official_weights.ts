// Official PyTorch weights in and out, for any model of the kit: the reference state_dict as safetensors (torch
// layouts, official names), converted through the model's parameter specs. nnFormer adds its relative_position_index
// buffers, which are checked against the official formula on import and written on export. Layouts per spec §8.9.
// The kit's own checkpoints (our layouts, config and training state) are in io/checkpoint.ts.
import * as tf from "@tensorflow/tfjs";
import { version as KIT_VERSION } from "../../package.json";
import { serializeSafetensors, type SafetensorsFile, type TensorToWrite } from "../io/safetensors";
import { openSafetensors } from "../io/checkpoint";
import { writeFileAtomic } from "../runtime/files";
import { torchToTfPerm, type ParamHolder } from "../layers/param_specs";
import type { BufferSpec } from "./nnformer_params";

/** A model whose weights can be imported / exported: its specs and store, and any index buffers (nnFormer). */
export type OfficialWeightsModel = ParamHolder & {
  readonly bufferSpecs?: readonly BufferSpec[];
  readonly buffers?: ReadonlyMap<string, Int32Array>;
};

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

/**
 * Loads an official state_dict (safetensors with PyTorch names and layouts) into the model, converting layouts.
 * Strict (default): throws listing every unknown, missing and mis-shaped tensor and changes nothing.
 * `strict: false`: loads every tensor that fits and returns the report.
 */
export function importOfficialWeights(
  model: OfficialWeightsModel,
  src: string | SafetensorsFile | Uint8Array,
  opts: { strict?: boolean } = {},
): WeightImportReport {
  const { file, source } = openSafetensors(src);
  const strict = opts.strict ?? true;
  const report: WeightImportReport = { unknown: [], missing: [], misshapen: [], bufferMismatch: [], loaded: 0 };
  const known = new Set<string>();
  const ok: Array<{ spec: (typeof model.specs)[number]; data: Float32Array }> = [];
  for (const spec of model.specs) {
    known.add(spec.name);
    const t = file.tensors.get(spec.name);
    if (!t) report.missing.push(spec.name);
    else if (!sameShape(t.shape, spec.torchShape) || !FLOAT_DTYPES.has(t.dtype)) {
      report.misshapen.push({ name: spec.name, expected: spec.torchShape, got: t.shape, dtype: t.dtype });
    } else ok.push({ spec, data: t.data as Float32Array });
  }
  for (const b of model.bufferSpecs ?? []) {
    known.add(b.name);
    const t = file.tensors.get(b.name);
    if (!t) report.missing.push(b.name);
    else if (!sameShape(t.shape, b.shape) || !INT_DTYPES.has(t.dtype))
      report.misshapen.push({ name: b.name, expected: b.shape, got: t.shape, dtype: t.dtype });
    else {
      const ours = model.buffers!.get(b.name)!;
      if (ours.some((v, i) => v !== t.data[i])) report.bufferMismatch.push(b.name);
    }
  }
  for (const n of file.tensors.keys()) if (!known.has(n)) report.unknown.push(n);
  const problems =
    report.unknown.length + report.missing.length + report.misshapen.length + report.bufferMismatch.length;
  if (strict && problems) throw new Error(`${source}: cannot import official weights:\n${describeReport(report)}`);
  for (const { spec, data } of ok) {
    const perm = torchToTfPerm(spec.kind);
    const v = tf.tidy(() => {
      const t = tf.tensor(data, spec.torchShape);
      return perm ? tf.transpose(t, perm) : tf.reshape(t, spec.shape); // "embedding": torch [1, N, E] -> [N, E]
    });
    model.params.get(spec.name).assign(v);
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
export async function officialStateDict(model: OfficialWeightsModel): Promise<Map<string, TensorToWrite>> {
  const out = new Map<string, TensorToWrite>();
  for (const spec of model.specs) {
    const v = model.params.get(spec.name);
    const perm = torchToTfPerm(spec.kind);
    const t = perm ? tf.transpose(v, inversePerm(perm)) : v;
    const data = (await t.data()) as Float32Array; // await data(): webgpu has no synchronous read
    if (t !== v) t.dispose();
    out.set(spec.name, { dtype: "F32", shape: spec.torchShape, data });
  }
  for (const b of model.bufferSpecs ?? [])
    out.set(b.name, { dtype: "I64", shape: b.shape, data: model.buffers!.get(b.name)! });
  return out;
}

/** Writes the official state_dict as safetensors (atomically); loadable in PyTorch with safetensors.torch.load_file. */
export async function exportOfficialWeights(model: OfficialWeightsModel, file: string): Promise<void> {
  writeFileAtomic(
    file,
    serializeSafetensors(await officialStateDict(model), { format: "pt", source: `mae-nnformer ${KIT_VERSION}` }),
  );
}
