// Data manifests: one JSON file per dataset that says which cases exist, where their files lie relative to a data
// root, which label values mean what, and how the cases are split. Manifests never hold voxels.
//
// The format, field by field, is documented in data-manifests/README.md; the zod schema below is the source of truth.
// Flow: loadManifest("btcv-synapse") -> parseManifest (shape via zod, then cross-field checks) -> resolveManifest
// (absolute paths per case and per split, every missing file reported in one error).
import * as fs from "fs";
import * as path from "path";
import { z } from "zod";

// ---------------------------------------------------------------------------------------------------------------
// Schema

/** Split names, in the order they are reported. */
export const SPLIT_NAMES = ["train", "val", "test", "unlabeled"] as const;
export type SplitName = (typeof SPLIT_NAMES)[number];

const CASE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** `{KEY}` or `{KEY:width}`: filled from the case's varsFile (see resolveManifest). */
const PLACEHOLDER = /\{([A-Za-z][A-Za-z0-9_]*)(?::(\d+))?\}/g;

const relPath = z
  .string()
  .min(1, { error: "path must not be empty" })
  .refine((p) => !path.isAbsolute(p) && !/^[A-Za-z]:[\\/]/.test(p), {
    error:
      "paths are relative to the data root; drop the leading folder and set the data root (or defaultDataRoot) instead",
  })
  .refine((p) => !p.includes("\\"), { error: "use forward slashes in paths" })
  .refine((p) => !p.split("/").includes(".."), { error: "paths must stay inside the data root (no '..')" });

const vec3 = z.tuple([z.number().positive(), z.number().positive(), z.number().positive()], {
  error: "expected three positive numbers [D, H, W]",
});

const LabelSchema = z
  .object({
    value: z.number({ error: "label value must be a number" }).int({ error: "label values must be integers" }).min(0),
    name: z.string().min(1, { error: "label name must not be empty" }),
  })
  .strict();

const CaseSchema = z
  .object({
    id: z
      .string()
      .regex(CASE_ID, { error: "case ids use letters, digits, '_', '.', '-' and start with a letter or digit" }),
    /** One path (a 3D file, or a 4D file holding every channel) or one path per channel, in `channels` order. */
    image: z.union([relPath, z.array(relPath).min(1)], {
      error: "expected a path (string) or a list of paths, one per channel",
    }),
    /** Label map path, or null for an image without labels. */
    label: z.union([relPath, z.null()], { error: "expected a path (string) or null when the case has no labels" }),
    /** Optional "KEY: value" text file (e.g. ACDC's Info.cfg) whose values fill `{KEY}` placeholders in image/label. */
    varsFile: relPath.optional(),
  })
  .strict();

const idList = z.array(z.string(), { error: "expected a list of case ids" });

const SplitsSchema = z.object({ train: idList, val: idList, test: idList, unlabeled: idList }).strict();

const SourceSchema = z
  .object({
    /** Where and how users obtain the data (registration, archive name, ...). */
    text: z.string().min(1),
    url: z.url({ error: "expected a full URL such as https://..." }).optional(),
    /** Licence or data-use terms, in a sentence. */
    licence: z.string().min(1),
  })
  .strict();

const GeneratorSchema = z
  .object({
    kind: z.literal("phantom"),
    seed: z.number().int(),
    count: z.number().int().positive(),
    shape: z.tuple([z.number().int().positive(), z.number().int().positive(), z.number().int().positive()], {
      error: "expected three positive integers [D, H, W]",
    }),
    spacing: vec3,
  })
  .strict();

/** The manifest schema (zod). Unknown fields are errors at every level. */
export const ManifestSchema = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]*$/, { error: "names are lower-case letters, digits and '-' (the file name)" }),
    description: z.string().min(1),
    modality: z.enum(["CT", "MRI", "multi-MRI", "PET", "US"]),
    /** Input channel names, in the order the model sees them. */
    channels: z.array(z.string().min(1)).min(1, { error: 'list at least one input channel, e.g. ["CT"]' }),
    /** Every value that may occur in a label map; value 0 (background) first, values ascending. */
    labels: z.array(LabelSchema).min(2, { error: "list background (0) and at least one foreground label" }),
    /** Label names reported in the study tables; default: every foreground label. */
    evaluatedLabels: z.array(z.string()).min(1).optional(),
    /** Target voxel spacing [D, H, W] in mm (the nnFormer plan's value where known). */
    spacingHint: vec3.optional(),
    source: SourceSchema,
    /** Human-readable pattern of the on-disk layout, shown when files are missing. */
    layout: z.string().min(1).optional(),
    /** Data root used when none is given: absolute, or relative to the project root. */
    defaultDataRoot: z.string().min(1).optional(),
    /** Present when the kit makes the files itself instead of downloading them. */
    generator: GeneratorSchema.optional(),
    cases: z.array(CaseSchema).min(1, { error: "list at least one case" }),
    splits: SplitsSchema,
  })
  .strict();

export type Manifest = z.infer<typeof ManifestSchema>;
export type ManifestCase = Manifest["cases"][number];
export type ManifestLabel = Manifest["labels"][number];
export type ManifestSplits = Manifest["splits"];
export type ManifestSource = Manifest["source"];
export type ManifestGenerator = NonNullable<Manifest["generator"]>;

/** A manifest problem; `issues` holds one readable line per problem, `file` the manifest it came from. */
export class ManifestError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly issues: string[],
  ) {
    super(message);
    this.name = "ManifestError";
  }
}

// Which file each parsed manifest came from, so later errors can name it without threading the path around.
const sourceFiles = new WeakMap<Manifest, string>();

/** The file a manifest was parsed from (or a placeholder naming it). */
export function manifestFile(manifest: Manifest): string {
  return sourceFiles.get(manifest) ?? `manifest "${manifest.name}" (not loaded from a file)`;
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing and validation

/** `cases[3].label` from ["cases", 3, "label"]. */
export function jsonPath(parts: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const p of parts) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out === "" ? String(p) : `.${String(p)}`;
  }
  return out === "" ? "(top level)" : out;
}

function show(value: unknown): string {
  if (value === undefined) return "nothing";
  const s = JSON.stringify(value);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

// Field names allowed at a JSON path, found by walking the schema; used to suggest fixes for unknown fields.
function allowedKeys(parts: ReadonlyArray<PropertyKey>): string[] {
  let node: z.ZodType | undefined = ManifestSchema;
  const unwrap = (t: z.ZodType): z.ZodType => {
    let cur = t;
    while (cur instanceof z.ZodOptional || cur instanceof z.ZodNullable) cur = cur.unwrap() as z.ZodType;
    return cur;
  };
  for (const p of parts) {
    if (!node) return [];
    node = unwrap(node);
    if (node instanceof z.ZodObject && typeof p === "string") node = (node.shape as Record<string, z.ZodType>)[p];
    else if (node instanceof z.ZodArray && typeof p === "number") node = node.element as z.ZodType;
    else return [];
  }
  node = node && unwrap(node);
  return node instanceof z.ZodObject ? Object.keys(node.shape) : [];
}

function zodIssueLines(issues: ReadonlyArray<z.core.$ZodIssue>): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    if (issue.code === "unrecognized_keys") {
      const allowed = allowedKeys(issue.path);
      for (const key of issue.keys) {
        lines.push(
          `${jsonPath([...issue.path, key])}: unknown field "${key}"; remove it or fix the spelling` +
            (allowed.length ? ` (allowed here: ${allowed.join(", ")})` : ""),
        );
      }
      continue;
    }
    const where = jsonPath(issue.path);
    const input = (issue as { input?: unknown }).input;
    if (issue.code === "invalid_type" && input === undefined) {
      lines.push(`${where}: required field is missing (expected ${issue.expected})`);
    } else if (issue.code === "invalid_value") {
      lines.push(`${where}: got ${show(input)}; expected one of ${issue.values.map((v) => show(v)).join(", ")}`);
    } else {
      lines.push(`${where}: ${issue.message}; got ${show(input)}`);
    }
  }
  return lines;
}

function placeholders(p: string): string[] {
  return [...p.matchAll(PLACEHOLDER)].map((m) => m[1]);
}

// Checks zod cannot express per field: uniqueness, references between fields, split rules.
function crossFieldIssues(m: Manifest): string[] {
  const out: string[] = [];

  // Labels: background first, integer values ascending and unique, names unique.
  if (m.labels[0].value !== 0)
    out.push(`labels[0].value: got ${m.labels[0].value}; the first label must be value 0 (background)`);
  const seenValues = new Map<number, number>();
  const seenNames = new Map<string, number>();
  m.labels.forEach((l, i) => {
    const prevV = seenValues.get(l.value);
    if (prevV !== undefined)
      out.push(`labels[${i}].value: ${l.value} is already used by labels[${prevV}]; each value appears once`);
    else if (i > 0 && l.value < m.labels[i - 1].value)
      out.push(
        `labels[${i}].value: ${l.value} comes after ${m.labels[i - 1].value}; list labels in ascending value order`,
      );
    seenValues.set(l.value, i);
    const prevN = seenNames.get(l.name);
    if (prevN !== undefined)
      out.push(`labels[${i}].name: "${l.name}" is already used by labels[${prevN}]; names must be unique`);
    seenNames.set(l.name, i);
  });
  (m.evaluatedLabels ?? []).forEach((name, i) => {
    const idx = seenNames.get(name);
    if (idx === undefined)
      out.push(`evaluatedLabels[${i}]: "${name}" is not a label name; use one of the names in labels`);
    else if (m.labels[idx].value === 0)
      out.push(`evaluatedLabels[${i}]: "${name}" is the background; list foreground labels only`);
    if (m.evaluatedLabels!.indexOf(name) !== i) out.push(`evaluatedLabels[${i}]: "${name}" is listed twice`);
  });

  // Channels.
  m.channels.forEach((c, i) => {
    if (m.channels.indexOf(c) !== i) out.push(`channels[${i}]: "${c}" is listed twice`);
  });
  if (m.modality === "multi-MRI" && m.channels.length < 2)
    out.push(`channels: "multi-MRI" needs at least two channels, got ${show(m.channels)}`);

  // Cases: unique ids, one image per channel, placeholders only with a varsFile.
  const caseIndex = new Map<string, number>();
  m.cases.forEach((c, i) => {
    const prev = caseIndex.get(c.id);
    if (prev !== undefined)
      out.push(`cases[${i}].id: "${c.id}" is already used by cases[${prev}]; case ids must be unique`);
    else caseIndex.set(c.id, i);
    if (Array.isArray(c.image) && c.image.length !== m.channels.length) {
      out.push(
        `cases[${i}].image: ${c.image.length} path(s) for ${m.channels.length} channel(s) ${show(m.channels)}; ` +
          `give one path per channel, or a single string for one file holding all channels (4D NIfTI)`,
      );
    }
    const paths: Array<[string, string]> = [
      ...(Array.isArray(c.image)
        ? c.image.map((p, k): [string, string] => [`cases[${i}].image[${k}]`, p])
        : [[`cases[${i}].image`, c.image] as [string, string]]),
      ...(c.label !== null ? [[`cases[${i}].label`, c.label] as [string, string]] : []),
    ];
    for (const [where, p] of paths) {
      const keys = placeholders(p);
      if (keys.length > 0 && c.varsFile === undefined)
        out.push(
          `${where}: ${show(p)} has placeholder(s) {${keys.join("}, {")}} but the case has no varsFile to fill them; add "varsFile"`,
        );
    }
    if (c.varsFile !== undefined && placeholders(c.varsFile).length > 0)
      out.push(`cases[${i}].varsFile: ${show(c.varsFile)} must be a plain path without placeholders`);
  });

  // Splits: ids exist, no repeats, labelled where labels are needed, no leakage between splits.
  const members = {} as Record<SplitName, Set<string>>;
  for (const split of SPLIT_NAMES) {
    members[split] = new Set();
    m.splits[split].forEach((id, k) => {
      const where = `splits.${split}[${k}]`;
      const ci = caseIndex.get(id);
      if (ci === undefined) {
        out.push(`${where}: "${id}" is not a case id; add it to cases or remove it from the split`);
        return;
      }
      if (members[split].has(id)) out.push(`${where}: "${id}" is listed twice in ${split}`);
      members[split].add(id);
      if (split !== "unlabeled" && m.cases[ci].label === null)
        out.push(
          `${where}: case "${id}" has label null; ${split} cases need labels (put unlabelled cases in splits.unlabeled)`,
        );
    });
  }
  const overlap = (a: SplitName, b: SplitName) => [...members[a]].filter((id) => members[b].has(id));
  const forbidden: Array<[SplitName, SplitName, string]> = [
    ["train", "test", "a model would be tested on cases it was trained on"],
    ["train", "val", "model selection would use training cases"],
    ["unlabeled", "test", "pretraining would see the test images"],
    ["unlabeled", "val", "pretraining would see the validation images"],
  ];
  for (const [a, b, why] of forbidden) {
    const both = overlap(a, b);
    if (both.length > 0)
      out.push(
        `splits: ${show(both)} ${both.length === 1 ? "is" : "are"} in both ${a} and ${b}; ${why}. Keep them apart`,
      );
  }
  // val and test may be the very same list (nnFormer's Synapse protocol), but not a partial overlap.
  const vt = overlap("val", "test");
  if (vt.length > 0 && !(vt.length === members.val.size && vt.length === members.test.size)) {
    out.push(`splits: ${show(vt)} are in both val and test; val and test must be either disjoint or identical`);
  }

  if (m.generator && m.generator.count !== m.cases.length)
    out.push(`generator.count: ${m.generator.count} but cases lists ${m.cases.length}; make them agree`);
  return out;
}

/** Validates parsed JSON as a manifest; throws a ManifestError naming `file`, each bad field's JSON path and value. */
export function parseManifest(json: unknown, file: string): Manifest {
  const result = ManifestSchema.safeParse(json, { reportInput: true });
  const fail = (lines: string[]): never => {
    throw new ManifestError(
      `invalid data manifest ${file} (${lines.length} problem${lines.length === 1 ? "" : "s"}):\n` +
        lines.map((l) => `  - ${l}`).join("\n") +
        `\nSee data-manifests/README.md for the format.`,
      file,
      lines,
    );
  };
  if (!result.success) fail(zodIssueLines(result.error.issues));
  const manifest = result.data as Manifest;
  const lines = crossFieldIssues(manifest);
  if (lines.length > 0) fail(lines);
  sourceFiles.set(manifest, file);
  return manifest;
}

// ---------------------------------------------------------------------------------------------------------------
// Finding manifests

/** The project root: the nearest folder above this file whose package.json is mae-nnformer's. */
export function projectRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, "package.json");
    if (fs.existsSync(pkg)) {
      try {
        if (JSON.parse(fs.readFileSync(pkg, "utf8")).name === "mae-nnformer") return dir;
      } catch {
        // not ours; keep walking up
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the mae-nnformer project root above ${__dirname}`);
    dir = up;
  }
}

/** Folder of the shipped manifests: <project root>/data-manifests. */
export function manifestDir(): string {
  return path.join(projectRoot(), "data-manifests");
}

/** Names of the shipped manifests ("phantom", "btcv-synapse", ...), sorted. */
export function listManifests(): string[] {
  return fs
    .readdirSync(manifestDir())
    .filter((f) => f.endsWith(".json"))
    .map((f) => f.slice(0, -".json".length))
    .sort();
}

/**
 * Loads and validates a manifest. A bare name ("phantom") means data-manifests/<name>.json in the project;
 * anything with a slash or ending in .json is a path (relative to the working directory).
 */
export function loadManifest(pathOrName: string): Manifest {
  const isName = !/[\\/]/.test(pathOrName) && !pathOrName.endsWith(".json");
  const file = isName ? path.join(manifestDir(), `${pathOrName}.json`) : path.resolve(pathOrName);
  if (!fs.existsSync(file)) {
    const hint = isName ? `known manifests: ${listManifests().join(", ")}` : "check the path";
    throw new Error(`data manifest ${file} does not exist (asked for "${pathOrName}"); ${hint}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new ManifestError(`data manifest ${file} is not valid JSON: ${(e as Error).message}`, file, [
      (e as Error).message,
    ]);
  }
  const manifest = parseManifest(json, file);
  if (isName && manifest.name !== pathOrName) {
    const line = `name: got ${show(manifest.name)} but the file is ${pathOrName}.json; make the name match the file name`;
    throw new ManifestError(`invalid data manifest ${file}:\n  - ${line}`, file, [line]);
  }
  return manifest;
}

// ---------------------------------------------------------------------------------------------------------------
// Resolving paths

/** Environment variable naming a folder with one sub-folder per dataset: $MAE_NNFORMER_DATA/<manifest name>. */
export const DATA_ENV = "MAE_NNFORMER_DATA";

/**
 * The data root for a manifest: `explicit` if given; else $MAE_NNFORMER_DATA/<name> if that folder exists; else the
 * manifest's defaultDataRoot (relative ones are relative to the project root); else $MAE_NNFORMER_DATA/<name>.
 */
export function dataRootFor(manifest: Manifest, explicit?: string): string {
  if (explicit !== undefined) return path.resolve(explicit);
  const env = process.env[DATA_ENV];
  const fromEnv = env ? path.resolve(env, manifest.name) : undefined;
  if (fromEnv && fs.existsSync(fromEnv)) return fromEnv;
  if (manifest.defaultDataRoot !== undefined) return path.resolve(projectRoot(), manifest.defaultDataRoot);
  if (fromEnv) return fromEnv;
  throw new Error(
    `no data root for manifest "${manifest.name}" (${manifestFile(manifest)}): pass one, or set ` +
      `${DATA_ENV}=/path/to/datasets so the kit looks in $${DATA_ENV}/${manifest.name}`,
  );
}

export interface ResolvedCase {
  id: string;
  /** Absolute image paths: one per channel, or a single file holding every channel (see `channelsInOneFile`). */
  images: string[];
  /** True when `images` is one 4D file with manifest.channels.length channels (MSD BraTS). */
  channelsInOneFile: boolean;
  /** Absolute label path; always null in splits.unlabeled, whose labels are ignored. */
  label: string | null;
}

export interface ResolvedManifest {
  manifest: Manifest;
  /** The manifest file, for messages. */
  file: string;
  /** Absolute data root. */
  dataRoot: string;
  /** Every resolved case by id (with its label where it has one). */
  cases: Map<string, ResolvedCase>;
  /** Cases per split, in split order; unlabeled entries carry label null. */
  splits: Record<SplitName, ResolvedCase[]>;
}

export interface ResolveOptions {
  /** Check that every file exists and report all missing ones in one error (default true). */
  checkFiles?: boolean;
  /** Resolve only these splits (default all); cases outside them are skipped. */
  only?: SplitName[];
}

// Reads "KEY: value" lines (ACDC's Info.cfg); returns undefined when the file cannot be read.
function readVars(file: string): Map<string, string> | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  const vars = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([A-Za-z][A-Za-z0-9_]*)\s*[:=]\s*(.*?)\s*$/.exec(line);
    if (m) vars.set(m[1], m[2]);
  }
  return vars;
}

function fillPlaceholders(template: string, vars: Map<string, string>, where: string, varsFile: string): string {
  return template.replace(PLACEHOLDER, (_all, key: string, width?: string) => {
    const value = vars.get(key);
    if (value === undefined) throw new Error(`${where}: ${varsFile} has no "${key}:" line needed by ${template}`);
    return width ? value.padStart(Number(width), "0") : value;
  });
}

/**
 * Absolute paths for each case and split under `dataRoot` (see dataRootFor when undefined). With checkFiles (the
 * default) every missing image, label and varsFile is collected and reported in one error that lists each path.
 */
export function resolveManifest(manifest: Manifest, dataRoot?: string, options: ResolveOptions = {}): ResolvedManifest {
  const checkFiles = options.checkFiles ?? true;
  const file = manifestFile(manifest);
  const root = dataRootFor(manifest, dataRoot);
  const wanted = options.only ?? [...SPLIT_NAMES];

  // Which cases to resolve, and whether their labels are needed (labelled splits) or ignored (unlabeled only).
  const needLabel = new Map<string, boolean>();
  for (const split of wanted) {
    for (const id of manifest.splits[split]) needLabel.set(id, (needLabel.get(id) ?? false) || split !== "unlabeled");
  }
  if (options.only === undefined)
    for (const c of manifest.cases) if (!needLabel.has(c.id)) needLabel.set(c.id, c.label !== null);

  const missing = new Map<string, string[]>(); // path -> what needs it (a label or Info.cfg may serve several cases)
  const problems: string[] = [];
  let varsMissing = false;
  const abs = (p: string) => path.join(root, ...p.split("/"));
  const note = (p: string, what: string) => {
    if (!checkFiles) return;
    if (missing.has(p)) missing.get(p)!.push(what);
    else if (!fs.existsSync(p)) missing.set(p, [what]);
  };
  const varsCache = new Map<string, Map<string, string> | undefined>();

  const cases = new Map<string, ResolvedCase>();
  manifest.cases.forEach((c, i) => {
    if (!needLabel.has(c.id)) return;
    let vars: Map<string, string> | undefined;
    if (c.varsFile !== undefined) {
      const varsPath = abs(c.varsFile);
      if (!varsCache.has(varsPath)) varsCache.set(varsPath, readVars(varsPath));
      vars = varsCache.get(varsPath);
      if (vars === undefined) {
        varsMissing = true;
        note(varsPath, `case ${c.id}, varsFile`);
      }
    }
    const fill = (template: string, where: string): string => {
      if (vars === undefined || c.varsFile === undefined) return template; // unfilled: checkFiles off or varsFile missing
      try {
        return fillPlaceholders(template, vars, where, abs(c.varsFile));
      } catch (e) {
        problems.push(`  ${(e as Error).message}`);
        return template;
      }
    };
    const canCheck = c.varsFile === undefined || vars !== undefined;
    const templates = Array.isArray(c.image) ? c.image : [c.image];
    const images = templates.map((t, k) => {
      const p = abs(fill(t, `cases[${i}].image${Array.isArray(c.image) ? `[${k}]` : ""}`));
      if (canCheck) note(p, `case ${c.id}, ${Array.isArray(c.image) ? `channel ${manifest.channels[k]}` : "image"}`);
      return p;
    });
    let label: string | null = null;
    if (c.label !== null) {
      label = abs(fill(c.label, `cases[${i}].label`));
      if (canCheck && needLabel.get(c.id)) note(label, `case ${c.id}, label`);
    }
    cases.set(c.id, {
      id: c.id,
      images,
      channelsInOneFile: !Array.isArray(c.image) && manifest.channels.length > 1,
      label,
    });
  });

  if (missing.size > 0 || problems.length > 0) {
    const lines: string[] = [];
    const missingLines = [...missing].map(([p, uses]) => `  ${p}  (${uses.join("; ")})`);
    if (missing.size > 0) {
      lines.push(
        `${missing.size} file(s) of data manifest "${manifest.name}" (${file}) are missing under data root ${root}:`,
      );
      if (!fs.existsSync(root)) lines.push(`  (the data root ${root} itself does not exist)`);
      lines.push(...missingLines);
      if (varsMissing) lines.push(`  (images and labels of cases whose varsFile is missing could not be checked yet)`);
    }
    if (problems.length > 0) {
      lines.push(`data manifest "${manifest.name}" (${file}): cannot fill path placeholders under data root ${root}:`);
      lines.push(...problems);
    }
    if (manifest.layout) lines.push(`Expected layout: ${manifest.layout}`);
    if (manifest.generator) {
      lines.push(
        `These files are made by the kit, not downloaded: generate them with \`npm run phantoms\` into ${root}.`,
      );
    } else {
      lines.push(
        `Fix: get the data as described in data-manifests/README.md (${manifest.source.url ?? manifest.source.text}) and lay it ` +
          `out as above, or point the kit at the right folder (pass a data root or set ${DATA_ENV}).`,
      );
    }
    throw new ManifestError(lines.join("\n"), file, [...missing.keys(), ...problems.map((l) => l.trim())]);
  }

  const splits = {} as Record<SplitName, ResolvedCase[]>;
  for (const split of SPLIT_NAMES) {
    splits[split] = wanted.includes(split)
      ? manifest.splits[split].map((id) => {
          const rc = cases.get(id)!;
          return split === "unlabeled" ? { ...rc, label: null } : rc;
        })
      : [];
  }
  return { manifest, file, dataRoot: root, cases, splits };
}

// ---------------------------------------------------------------------------------------------------------------
// Label maps

/** Foreground label names to report: evaluatedLabels, or every non-background label. */
export function evaluatedLabelNames(manifest: Manifest): string[] {
  return manifest.evaluatedLabels ?? manifest.labels.filter((l) => l.value !== 0).map((l) => l.name);
}

/** Throws, naming `file` and the offending values, when a label map holds values the manifest does not list. */
export function checkLabelValues(labelVolumeData: ArrayLike<number>, manifest: Manifest, file: string): void {
  const allowed = new Set(manifest.labels.map((l) => l.value));
  const unexpected = new Map<number, number>(); // value -> voxel count
  let last = NaN; // label maps are mostly runs of one value, so skip the set lookup when the value repeats
  let lastOk = false;
  for (let i = 0; i < labelVolumeData.length; i++) {
    const v = labelVolumeData[i];
    if (v === last && lastOk) continue;
    last = v;
    lastOk = allowed.has(v);
    if (!lastOk) unexpected.set(v, (unexpected.get(v) ?? 0) + 1);
  }
  if (unexpected.size === 0) return;
  const values = [...unexpected.keys()].sort((a, b) => a - b);
  const shown = values.slice(0, 20).map((v) => `${v} (${unexpected.get(v)} voxels)`);
  throw new Error(
    `label map ${file} holds value(s) not in data manifest "${manifest.name}" (${manifestFile(manifest)}): ` +
      `${shown.join(", ")}${values.length > 20 ? `, and ${values.length - 20} more` : ""}. ` +
      `Allowed: ${[...allowed].join(", ")}. Check that the file is a label map of this dataset, or add the labels to the manifest.`,
  );
}
