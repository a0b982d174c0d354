// Resolving a manifest against a data root: absolute paths per case and per split, placeholders filled from each
// case's vars file, every missing file reported in one error.
import * as fs from "fs";
import * as path from "path";
import { projectRoot } from "./discovery";
import { ManifestError } from "./errors";
import { manifestFile } from "./parse";
import { Manifest, PLACEHOLDER, SplitName, SPLIT_NAMES } from "./schema";

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
