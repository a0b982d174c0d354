// One schema for a study profile, checked before any work: the named profile, overridden by a `--config` file and
// then by flags. Every problem is reported at once and named the way the user wrote it: "my.json: finetune.steps"
// for a field of the config file, "--steps" for a flag, "profile quick: ..." for a field nobody overrode.
//
// Layers are deep-merged onto the profile: objects field by field, everything else (arrays included) replaced.
// A layer that changes `data.kind` replaces `data` as a whole (the two kinds have different fields).
// Optional profile fields (cropSize, spacing, modelOverrides, pretrain.maskUnit, pretrain.shipped, finetune.layerDecay,
// finetune.padCrops) may be
// set by a layer even when the profile leaves them out.
import { z } from "zod";
import type { StudyProfile } from "./profiles";
import { resolveModelName } from "../registry";

const posInt = (what: string) => z.number({ error: `expected ${what}` }).int({ error: `expected ${what}` });
const wholeAtLeast = (lo: number) =>
  posInt(`a whole number >= ${lo}`).min(lo, { error: `expected a whole number >= ${lo}` });
const positive = z
  .number({ error: "expected a positive number" })
  .positive({ error: "expected a positive number" })
  .refine(Number.isFinite, { error: "expected a finite number" });
const fraction = (lo: "open" | "closed", hi: "open" | "closed") => {
  const text = `${lo === "open" ? "(0" : "[0"}, ${hi === "open" ? "1)" : "1]"}`;
  return z
    .number({ error: `expected a number in ${text}` })
    .refine((v) => (lo === "open" ? v > 0 : v >= 0) && (hi === "open" ? v < 1 : v <= 1), {
      error: `expected a number in ${text}`,
    });
};
const triple = z
  .array(wholeAtLeast(1), { error: "expected three whole numbers [D, H, W]" })
  .length(3, { error: "expected three whole numbers [D, H, W]" })
  .transform((a) => a as [number, number, number]);
const nonEmpty = <T extends z.ZodType>(item: T, what: string) =>
  z
    .array(item, { error: `expected a list of ${what}` })
    .min(1, { error: `expected at least one ${what.replace(/s$/, "")}` });

const ManifestData = z.strictObject({
  kind: z.literal("manifest"),
  manifest: z
    .string({ error: "expected a manifest name or path" })
    .min(1, { error: "expected a manifest name or path" }),
  dataRoot: z.string({ error: "expected a folder path" }).optional(),
});
const PhantomData = z.strictObject({
  kind: z.literal("phantom-memory"),
  seed: z.number({ error: "expected a number" }).refine(Number.isFinite, { error: "expected a finite number" }),
  shape: triple,
  unlabeled: wholeAtLeast(0),
  train: wholeAtLeast(0),
  val: wholeAtLeast(0),
  test: wholeAtLeast(0),
});

const Pretrain = z.strictObject({
  steps: wholeAtLeast(1),
  batchSize: wholeAtLeast(1),
  lr: positive,
  maskRatio: fraction("open", "open"),
  maskMode: z.enum(["sparse", "simmim", "compact"]),
  maskUnit: triple.optional(),
  evalEvery: wholeAtLeast(0),
  perSeed: z.boolean({ error: "expected true or false" }),
  shipped: z.string({ error: "expected a checkpoint path" }).optional(),
});

const Finetune = z.strictObject({
  steps: wholeAtLeast(1),
  batchSize: wholeAtLeast(1),
  optimizer: z.enum(["adamw", "sgd"]),
  lr: positive,
  warmupFraction: fraction("closed", "open"),
  evalEvery: wholeAtLeast(0),
  augment: z.boolean({ error: "expected true or false" }),
  foregroundFraction: fraction("closed", "closed"),
  layerDecay: fraction("open", "closed").optional(),
  padCrops: z.boolean({ error: "expected true or false" }).optional(),
});

/** The full schema of a study profile. */
export const StudyProfileSchema = z.strictObject({
  name: z.string().min(1),
  data: z.discriminatedUnion("kind", [ManifestData, PhantomData], {
    error: 'expected data.kind "manifest" or "phantom-memory"',
  }),
  models: nonEmpty(z.string({ error: "expected a model name" }), "model names"),
  cropSize: triple.optional(),
  modelOverrides: z.record(z.string(), z.record(z.string(), z.unknown(), { error: "expected an object" })).optional(),
  inits: nonEmpty(z.enum(["scratch", "mae"]), "initialisations"),
  labelFractions: nonEmpty(fraction("open", "closed"), "label fractions"),
  seeds: nonEmpty(wholeAtLeast(0), "seeds"),
  perFraction: z
    .record(z.string(), z.strictObject({ seeds: wholeAtLeast(1).optional(), steps: wholeAtLeast(1).optional() }), {
      error: 'expected {"<fraction>": {"seeds": n, "steps": n}}',
    })
    .optional(),
  preprocessing: z.enum(["kit", "nnunet"], { error: 'expected "kit" or "nnunet"' }),
  spacing: z
    .array(positive, { error: "expected three spacings in mm [D, H, W]" })
    .length(3, { error: "expected three spacings in mm [D, H, W]" })
    .transform((a) => a as [number, number, number])
    .optional(),
  pretrain: Pretrain,
  finetune: Finetune,
  convergenceLevels: z.array(fraction("open", "open"), { error: "expected a list of Dice levels in (0, 1)" }),
  eval: z.strictObject({
    overlap: fraction("closed", "open"),
    mirror: z.boolean({ error: "expected true or false" }),
    hd95: z.enum(["medpy", "monai"], { error: 'expected "medpy" or "monai"' }),
  }),
});

// The schema and the StudyProfile type must describe the same thing: these fail to compile when they drift apart
// (a parsed profile must be a StudyProfile, and every field of StudyProfile must be in the schema).
type Parsed = z.infer<typeof StudyProfileSchema>;
type Same<A, B> = [Exclude<keyof A, keyof B>, Exclude<keyof B, keyof A>] extends [never, never] ? true : false;
const _schemaFitsType = (p: Parsed): StudyProfile => p;
const _sameFields: [
  Same<StudyProfile, Parsed>,
  Same<StudyProfile["pretrain"], Parsed["pretrain"]>,
  Same<StudyProfile["finetune"], Parsed["finetune"]>,
  Same<StudyProfile["eval"], Parsed["eval"]>,
] = [true, true, true, true];
void _schemaFitsType;
void _sameFields;

/** A layer: field values to put over the profile, and where they came from (a file name or a flag). */
export interface ProfileLayer {
  /** "my.json" for a config file, "--steps" for a flag. */
  source: string;
  values: unknown;
  /** true for a flag: messages then show the source alone ("--steps: ...") instead of "source: field: ...". */
  flag?: boolean;
}

/** A profile field's JSON path as users write it: "finetune.steps", "cropSize[1]". */
function fieldPath(parts: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const p of parts) out += typeof p === "number" ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || "(top level)";
}

function show(v: unknown): string {
  if (v === undefined) return "nothing";
  if (typeof v === "number" && !Number.isFinite(v)) return String(v);
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function unwrap(t: z.ZodType): z.ZodType {
  let cur = t;
  while (cur instanceof z.ZodOptional || cur instanceof z.ZodNullable) cur = cur.unwrap() as z.ZodType;
  return cur;
}

/** The schema node at a path, for the list of allowed fields; data's two kinds are merged. */
function nodeAt(parts: ReadonlyArray<PropertyKey>): z.ZodType | undefined {
  let node: z.ZodType | undefined = StudyProfileSchema;
  for (const p of parts) {
    if (!node) return undefined;
    node = unwrap(node);
    if (node instanceof z.ZodObject && typeof p === "string") node = (node.shape as Record<string, z.ZodType>)[p];
    else if (node instanceof z.ZodDiscriminatedUnion && typeof p === "string") {
      node = (node.options as z.ZodObject[]).map((o) => o.shape[p] as z.ZodType).find(Boolean);
    } else if (node instanceof z.ZodArray) node = node.element as z.ZodType;
    else return undefined;
  }
  return node && unwrap(node);
}

function allowedFields(parts: ReadonlyArray<PropertyKey>): string[] {
  const node = nodeAt(parts);
  if (node instanceof z.ZodObject) return Object.keys(node.shape);
  if (node instanceof z.ZodDiscriminatedUnion)
    return [...new Set((node.options as z.ZodObject[]).flatMap((o) => Object.keys(o.shape)))];
  return [];
}

/** One line per problem: "finetune.steps: expected a whole number >= 1; got 0". */
function issueLines(issues: ReadonlyArray<z.core.$ZodIssue>): Array<{ path: PropertyKey[]; text: string }> {
  const out: Array<{ path: PropertyKey[]; text: string }> = [];
  for (const issue of issues) {
    const input = (issue as { input?: unknown }).input;
    if (issue.code === "unrecognized_keys") {
      const allowed = allowedFields(issue.path);
      for (const key of issue.keys)
        out.push({
          path: [...issue.path, key],
          text: `unknown field "${key}"; remove it or fix the spelling${allowed.length ? ` (allowed here: ${allowed.join(", ")})` : ""}`,
        });
    } else if (issue.code === "invalid_union" && (issue as { note?: string }).note === "No matching discriminator") {
      out.push({ path: [...issue.path, "kind"], text: `expected "manifest" or "phantom-memory"; got ${show(input)}` });
    } else if (issue.code === "invalid_value") {
      out.push({
        path: [...issue.path],
        text: `expected one of ${issue.values.map(show).join(", ")}; got ${show(input)}`,
      });
    } else if (issue.code === "invalid_type" && input === undefined) {
      out.push({ path: [...issue.path], text: `required field is missing (${issue.message})` });
    } else {
      out.push({ path: [...issue.path], text: `${issue.message}; got ${show(input)}` });
    }
  }
  return out;
}

/** Every field path (objects walked, arrays and primitives as leaves) that `values` sets. */
function leafPaths(values: unknown, at: string[] = []): string[] {
  if (values && typeof values === "object" && !Array.isArray(values)) {
    const keys = Object.keys(values);
    if (!keys.length) return [at.join(".")];
    return keys.flatMap((k) => leafPaths((values as Record<string, unknown>)[k], [...at, k]));
  }
  return [at.join(".")];
}

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);

/** Deep merge (objects field by field, anything else replaced); a different data.kind replaces data. */
function mergeInto(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
  at: string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const cur = out[k];
    const kindChanges =
      at.length === 0 && k === "data" && isObject(v) && isObject(cur) && "kind" in v && v.kind !== cur.kind;
    out[k] = isObject(cur) && isObject(v) && !kindChanges ? mergeInto(cur, v, [...at, k]) : v;
  }
  return out;
}

/** A layer's own shape: the profile's fields, each optional, and no unknown ones. */
function layerSchema(): z.ZodType {
  const partial = (o: z.ZodObject) =>
    z.strictObject(
      Object.fromEntries(
        Object.entries(o.shape as Record<string, z.ZodType>).map(([k, t]) => [k, unwrap(t).optional()]),
      ),
    );
  const shape = { ...(StudyProfileSchema.shape as Record<string, z.ZodType>) };
  for (const k of ["pretrain", "finetune", "eval"]) shape[k] = partial(shape[k] as z.ZodObject).optional();
  // data: either kind, any subset of its fields (checked as a whole after merging)
  shape.data = z
    .strictObject({
      ...ManifestData.partial().shape,
      ...PhantomData.partial().shape,
      kind: z.enum(["manifest", "phantom-memory"]).optional(),
    })
    .optional();
  for (const k of Object.keys(shape))
    if (!["pretrain", "finetune", "eval", "data"].includes(k)) shape[k] = unwrap(shape[k]).optional();
  return z.strictObject(shape);
}

/**
 * The profile `base` with `layers` put over it in order, checked as a whole. Throws one error listing every problem,
 * each named by the layer that set the field ("my.json: finetune.steps: ...", "--steps: ...") or by the profile.
 */
export function resolveProfile(base: StudyProfile, layers: ProfileLayer[]): StudyProfile {
  const problems: string[] = [];
  // a flag names itself (and the list item when it is a list): "--steps", "--fractions (item 2)"
  const name = (l: ProfileLayer, p: string) => {
    if (!l.flag) return `${l.source}: ${p}`;
    const item = /\[(\d+)\]$/.exec(p);
    return item ? `${l.source} (item ${Number(item[1]) + 1})` : l.source;
  };
  let merged: Record<string, unknown> = JSON.parse(JSON.stringify(base));
  const setBy = new Map<string, ProfileLayer>();
  const schema = layerSchema();
  for (const layer of layers) {
    if (!isObject(layer.values)) {
      problems.push(`${layer.source}: expected a JSON object of profile fields; got ${show(layer.values)}`);
      continue;
    }
    const r = schema.safeParse(layer.values, { reportInput: true });
    if (!r.success) {
      for (const i of issueLines(r.error.issues)) problems.push(`${name(layer, fieldPath(i.path))}: ${i.text}`);
      continue;
    }
    for (const p of leafPaths(layer.values)) setBy.set(p, layer);
    const data = layer.values.data;
    if (isObject(data) && "kind" in data && data.kind !== (merged.data as { kind?: unknown }).kind)
      setBy.set("data", layer);
    merged = mergeInto(merged, layer.values, []);
  }
  if (!problems.length) {
    const r = StudyProfileSchema.safeParse(merged, { reportInput: true });
    const issues = r.success ? [] : issueLines(r.error.issues);
    if (r.success) {
      r.data.models.forEach((m, k) => {
        try {
          resolveModelName(m); // registered names and their aliases
        } catch (e) {
          issues.push({ path: ["models", k], text: (e as Error).message });
        }
      });
      for (const m of Object.keys(r.data.modelOverrides ?? {}))
        if (!r.data.models.includes(m))
          issues.push({
            path: ["modelOverrides", m],
            text: `"${m}" is not one of the study's models (${r.data.models.join(", ")}); remove it or add the model`,
          });
      // mirror test-time augmentation only makes sense for a network trained on mirrored images (nnU-Net pairs them)
      if (r.data.eval.mirror && !r.data.finetune.augment)
        issues.push({
          path: ["eval", "mirror"],
          text:
            "true, but finetune.augment is false: mirror test-time augmentation averages predictions of flipped " +
            "images the network never saw flipped, which swaps left and right organs (on the demo's trained networks " +
            "validation Dice fell from 0.65 to 0.09); set finetune.augment to true (mirroring in training, as " +
            "nnU-Net) or eval.mirror to false",
        });
      if (!issues.length) return r.data as StudyProfile;
    }
    for (const i of issues) {
      const p = fieldPath(i.path);
      // the layer that set this field (or an enclosing object of it), else the profile itself
      let layer: ProfileLayer | undefined;
      for (let parts = i.path.map(String); parts.length && !layer; parts = parts.slice(0, -1))
        layer = setBy.get(parts.join("."));
      problems.push(`${layer ? name(layer, p) : `profile ${base.name}: ${p}`}: ${i.text}`);
    }
  }
  throw new Error(
    `invalid study settings (${problems.length} problem${problems.length > 1 ? "s" : ""}):\n  - ${problems.join("\n  - ")}`,
  );
}
