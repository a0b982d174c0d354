// No stale results: every result row and checkpoint a study writes records a fingerprint of everything that
// determines it (the settings of its cell, the model config, the data and preprocessing plan, the kit version).
// Before a study runs, what its output folder already holds is compared with what this run would write:
// - a row or checkpoint with the same fingerprint is reused (that is resuming);
// - one with another fingerprint (or none: written by an older kit) is refused, naming the fields that differ,
//   unless `force` is set, in which case those rows are removed from results.jsonl and those checkpoints deleted,
//   so the cells run again with the new settings.
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { version as KIT_VERSION } from "../../package.json";
import { describeDiff, diffFields, fingerprint } from "../runtime/fingerprint";
import { writeFileAtomic } from "../runtime/files";
import { readSafetensorsHeader } from "../io/safetensors";
import type { Preprocessing } from "../data/preprocess";
import { finetuneAt, type StudyProfile } from "./profiles";
import type { Vec3 } from "../runtime/math";
import { cellRecordFile } from "./cells";

export { KIT_VERSION };

/** What a run of one thing (a study cell, a pretraining) should have been made with. */
export interface Expected {
  /** For messages: "cell model=...|seed=0", "MAE pretraining of nnformer-micro". */
  label: string;
  settings: unknown;
  fingerprint: string;
}

/** Settings plus their fingerprint. */
export function expected(label: string, settings: unknown): Expected {
  return { label, settings, fingerprint: fingerprint(settings) };
}

/** What a row or checkpoint records about its settings (both absent when it was written without them). */
export interface Recorded {
  fingerprint?: string;
  settings?: unknown;
}

/** One thing in the folder that does not match this run. */
export interface StaleEntry {
  label: string;
  /** Where it was found: "results.jsonl line 3", a checkpoint path. */
  where: string;
  /** The differing fields, or why they cannot be compared. */
  why: string;
}

/** undefined when `found` matches `want`, else what differs. */
export function compareRecorded(want: Expected, found: Recorded, where: string): StaleEntry | undefined {
  if (found.fingerprint === want.fingerprint) return undefined;
  let why: string;
  if (found.fingerprint === undefined) why = "it records no settings (written by an earlier version of the kit)";
  else if (found.settings === undefined) why = `fingerprint ${found.fingerprint} vs ${want.fingerprint}`;
  else {
    const d = diffFields(found.settings, want.settings);
    why = d.length ? describeDiff(d) : `fingerprint ${found.fingerprint} vs ${want.fingerprint}`;
  }
  return { label: want.label, where, why };
}

/** The fingerprint fields of a row's meta or a checkpoint's extra. */
export function recordedIn(meta: unknown): Recorded {
  const m = (meta ?? {}) as { fingerprint?: unknown; settings?: unknown };
  return {
    fingerprint: typeof m.fingerprint === "string" ? m.fingerprint : undefined,
    settings: m.settings,
  };
}

/** One cell of the study as this run would make it. */
export interface CellPlan {
  key: string;
  /** The cell's checkpoint folder (runs/<cell>). */
  dir: string;
  want: Expected;
}

/** A pretraining as this run would make it. */
export interface PretrainPlan {
  /** Its folder (pretrain/<model>); its checkpoints are the *.safetensors there. */
  dir: string;
  want: Expected;
}

export interface FreshnessOptions {
  /** Discard what does not match instead of refusing. */
  force?: boolean;
  log?: (line: string) => void;
  /** Reads the fingerprint a checkpoint records (default: `fingerprint` and `settings` of its extra metadata). */
  readCheckpoint?: (file: string) => Recorded;
}

/**
 * Default reader: {fingerprint, settings} in __metadata__.extra (fine-tuning checkpoints) or in its `train` record
 * (MAE pretraining checkpoints); files of older versions have neither.
 */
export function recordedInCheckpoint(file: string): Recorded {
  const { metadata } = readSafetensorsHeader(file);
  let extra: { train?: unknown } = {};
  try {
    extra = JSON.parse(metadata.extra ?? "{}") ?? {};
  } catch {
    return {}; // damaged metadata: nothing recorded (the loader reports the damage itself)
  }
  const direct = recordedIn(extra);
  return direct.fingerprint ? direct : recordedIn(extra.train);
}

/**
 * Compares the folder `out` with this run (see the top of the file). Throws, listing each stale row and checkpoint
 * with its differing fields and how to proceed, unless `force`, which discards them (and says so through `log`).
 * A checkpoint that cannot be read (truncated by a crash or a full disk) is reported the same way.
 */
export function checkStudyFolder(
  out: string,
  cells: CellPlan[],
  pretrains: PretrainPlan[],
  options: FreshnessOptions = {},
): void {
  const log = options.log ?? (() => {});
  const readCk = options.readCheckpoint ?? recordedInCheckpoint;
  const stale: StaleEntry[] = [];
  const staleKeys = new Set<string>();
  const staleDirs = new Set<string>();

  const resultsFile = path.join(out, "results.jsonl");
  const lines = fs.existsSync(resultsFile) ? fs.readFileSync(resultsFile, "utf8").split("\n") : [];
  const rowOf = new Map<string, { line: number; meta: unknown }>();
  lines.forEach((text, i) => {
    if (!text.trim()) return;
    try {
      const row = JSON.parse(text) as { key?: unknown; meta?: unknown };
      if (typeof row.key === "string" && !rowOf.has(row.key)) rowOf.set(row.key, { line: i + 1, meta: row.meta });
    } catch {
      // an incomplete last line: the study runner reports or repairs it
    }
  });

  const checkpoints = (dir: string) =>
    fs.existsSync(dir)
      ? fs
          .readdirSync(dir)
          .filter((f) => f.endsWith(".safetensors"))
          .sort()
          .map((f) => path.join(dir, f))
      : [];
  const checkCheckpoints = (dir: string, want: Expected, what: string) => {
    for (const file of checkpoints(dir)) {
      let found: Recorded;
      try {
        found = readCk(file);
      } catch (e) {
        stale.push({
          label: want.label,
          where: file,
          why: `${(e as Error).message}; delete ${file} to restart ${what} from the beginning`,
        });
        staleDirs.add(dir);
        continue;
      }
      const s = compareRecorded(want, found, file);
      if (s) {
        stale.push(s);
        staleDirs.add(dir);
      }
    }
  };

  for (const p of pretrains) checkCheckpoints(p.dir, p.want, "that pretraining");
  // a finished cell of a parallel run not yet merged into results.jsonl (cells/<cell>.json) is a row like the others
  const staleRecords: string[] = [];
  for (const c of cells) {
    const file = cellRecordFile(out, c.key);
    if (!fs.existsSync(file)) continue;
    let meta: unknown = undefined;
    try {
      meta = (JSON.parse(fs.readFileSync(file, "utf8")) as { result?: { meta?: unknown } }).result?.meta;
    } catch {
      // unreadable: stale as well (the message below names it)
    }
    const s = compareRecorded(c.want, recordedIn(meta), file);
    if (s) {
      stale.push(s);
      staleRecords.push(file);
      staleDirs.add(c.dir);
    }
  }
  for (const c of cells) {
    const row = rowOf.get(c.key);
    if (row) {
      const s = compareRecorded(c.want, recordedIn(row.meta), `${resultsFile} line ${row.line}`);
      if (s) {
        stale.push(s);
        staleKeys.add(c.key);
        staleDirs.add(c.dir);
      }
    } else {
      checkCheckpoints(c.dir, c.want, "that cell");
    }
  }
  if (!stale.length) return;

  const listing = stale.map((s) => `  - ${s.label} (${s.where}): ${s.why}`).join("\n");
  if (!options.force) {
    throw new Error(
      `${out} holds results or checkpoints made with other settings than this run:\n${listing}\n` +
        `Use another --out folder to keep them, or add --force to discard them and run those parts again.`,
    );
  }
  log(`--force: discarding what was made with other settings:\n${listing}`);
  if (staleKeys.size) {
    const kept = lines.filter((text) => {
      try {
        return !staleKeys.has((JSON.parse(text) as { key?: string }).key ?? "");
      } catch {
        return true;
      }
    });
    writeFileAtomic(resultsFile, kept.join("\n"));
  }
  for (const dir of staleDirs) for (const file of checkpoints(dir)) fs.rmSync(file, { force: true });
  for (const file of staleRecords) fs.rmSync(file, { force: true });
}

// ---------------------------------------------------------------------------------------------------------------
// What determines a study's results, as JSON: the descriptions the fingerprints are taken of.

/** The parts of a study's data that determine results (not where the files lie: moving the data changes nothing). */
export interface StudyDataDescription {
  /** The profile's data source without dataRoot (phantom settings, or the manifest name). */
  source: unknown;
  name: string;
  modality: string;
  labelNames: string[];
  evalClasses: number[];
  /** Case ids per split, in order. */
  cases: { unlabeled: string[]; train: string[]; val: string[]; test: string[] };
}

/** Everything a study run needs to describe its cells and pretrainings. */
export interface StudyDescriptionInput {
  profile: StudyProfile;
  data: StudyDataDescription;
  plan: Preprocessing;
  numClasses: number;
  cropSize: Vec3;
  /** Registry preset of a model (its config before the study's overrides and data fields). */
  presetOf: (model: string) => unknown;
}

function modelDescription(input: StudyDescriptionInput, model: string, overrides: unknown) {
  return {
    name: model,
    preset: input.presetOf(model),
    overrides: overrides ?? null,
    inChannels: input.plan.channels,
    numClasses: input.numClasses,
    cropSize: input.cropSize,
  };
}

/** Settings of the MAE pretraining of `model` in a study (held-out cases: val, else the last train case). */
export function pretrainSettings(input: StudyDescriptionInput, model: string, seed = 0): unknown {
  const c = input.data.cases;
  return {
    kit: KIT_VERSION,
    what: "mae-pretraining",
    seed,
    // MAE pretraining builds the registered preset: the study's modelOverrides are for fine-tuning only
    model: modelDescription(input, model, null),
    pretrain: input.profile.pretrain,
    data: { ...input.data, cases: { unlabeled: c.unlabeled, heldOut: c.val.length ? c.val : c.train.slice(-1) } },
    preprocessing: input.plan,
  };
}

/** Settings of one fine-tuning cell. `pretrained`: what the encoder starts from (a fingerprint), null for scratch. */
export function cellSettings(
  input: StudyDescriptionInput,
  cell: { init: string; model: string; labelFraction: number; seed: number },
  labelledCases: string[],
  pretrained: string | null,
): unknown {
  return {
    kit: KIT_VERSION,
    what: "finetune",
    model: modelDescription(input, cell.model, input.profile.modelOverrides?.[cell.model]),
    init: cell.init,
    pretrained,
    labelFraction: cell.labelFraction,
    seed: cell.seed,
    labelledCases,
    finetune: finetuneAt(input.profile, cell.labelFraction),
    eval: input.profile.eval,
    data: input.data,
    preprocessing: input.plan,
  };
}

/** SHA-256 (first 16 hex digits) of a file's bytes, read in pieces. */
export function fileFingerprint(file: string): string {
  const hash = crypto.createHash("sha256");
  const fd = fs.openSync(file, "r");
  try {
    const buf = Buffer.alloc(1 << 20);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex").slice(0, 16);
}
