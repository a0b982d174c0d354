// The methods paragraph at the top of a study report: data, network, pretraining, fine-tuning budget and test split,
// every number read from the results (and from the pretrained encoder's card when one is named), none typed in.
import * as fs from "fs";
import * as path from "path";
import { fileFingerprint } from "../freshness";
import { RunResult } from "../grid";
import { formatFraction } from "./format";
import { distinct, groupBy } from "./groups";

export interface MethodsOptions {
  /** The MAE checkpoint the "mae" arm started from, when it was given (or shipped) rather than pretrained here. */
  maeCheckpoint?: string;
  /**
   * The profile's pretraining settings: its steps are cited when the "mae" arm was pretrained within the study; its
   * shipped encoder (path relative to the kit) is cited when the runs' recorded checkpoint fingerprint matches it.
   */
  pretrain?: { steps: number; maskRatio?: number; batchSize?: number; shipped?: string };
  /** The initialisation pretrained with MAE; default "mae". */
  mae?: string;
}

/** The fields of an encoder card (card.json beside a shipped mae.safetensors) the methods cite; all optional here. */
export interface CardFacts {
  file: string;
  steps?: number;
  wallTimeS?: number;
  unlabeled?: number;
  heldOutLoss?: number;
  meanBaseline?: number;
  commit?: string;
}

function obj(x: unknown): Record<string, unknown> | undefined {
  return x !== null && typeof x === "object" && !Array.isArray(x) ? (x as Record<string, unknown>) : undefined;
}
const num = (x: unknown) => (typeof x === "number" && Number.isFinite(x) ? x : undefined);
const list = (xs: readonly (string | number)[]) => xs.join(", ");
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * Reads card.json next to an MAE checkpoint; undefined when there is none. A card that cannot be read is reported in
 * `problem` rather than thrown: the report is still written, and says why the card is not cited.
 */
export function readEncoderCard(checkpoint: string): { card?: CardFacts; problem?: string } {
  const file = path.join(path.dirname(checkpoint), "card.json");
  if (!fs.existsSync(file)) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    return { problem: `${file} is not valid JSON (${(e as Error).message})` };
  }
  const c = obj(raw);
  if (!c) return { problem: `${file} is not a JSON object` };
  const data = obj(c.data),
    held = obj(c.heldOut);
  return {
    card: {
      file,
      steps: num(c.steps),
      wallTimeS: num(c.wallTimeS),
      unlabeled: num(data?.unlabeled),
      heldOutLoss: num(held?.loss),
      meanBaseline: num(held?.meanBaseline),
      commit: typeof c.commit === "string" && c.commit ? c.commit : undefined,
    },
  };
}

/** A checkpoint path named in a run's pretraining record (meta.pretraining or meta.pretrainedFrom), if any. */
function checkpointNamedIn(r: RunResult): string | undefined {
  const meta = obj(r.meta);
  for (const v of [meta?.pretrainedFrom, meta?.maeCheckpoint, meta?.pretraining]) {
    if (typeof v !== "string") continue;
    const m = /(\S*\.safetensors)/.exec(v);
    if (m) return m[1];
  }
  return undefined;
}

/** The kit's root folder (src/study/report -> the root), where shipped files are named from. */
const KIT_ROOT = path.resolve(__dirname, "..", "..", "..");

/**
 * The shipped encoder the runs started from, when the profile names one and its file's fingerprint is the one the
 * runs recorded (settings.pretrained "file <fingerprint>"); undefined otherwise (pretrained afresh, another file).
 */
function shippedCheckpointUsed(runs: readonly RunResult[], shipped: string | undefined): string | undefined {
  if (!shipped) return undefined;
  const file = path.resolve(KIT_ROOT, shipped);
  const recorded = distinct(runs.map((r) => settingsOf(r)?.pretrained));
  if (recorded.length !== 1 || typeof recorded[0] !== "string" || !recorded[0].startsWith("file ")) return undefined;
  try {
    return fs.existsSync(file) && `file ${fileFingerprint(file)}` === recorded[0] ? file : undefined;
  } catch {
    return undefined;
  }
}

function settingsOf(r: RunResult): Record<string, unknown> | undefined {
  return obj(obj(r.meta)?.settings);
}

function seedsText(seeds: number[]): string {
  const s = [...seeds].sort((x, y) => x - y);
  const consecutive = s.length > 2 && s.every((v, i) => i === 0 || v === s[i - 1] + 1);
  return consecutive ? `${s[0]}-${s[s.length - 1]}` : list(s);
}

/** The methods paragraph as sentences (plain text), in reading order. */
export function methodsSentences(results: readonly RunResult[], options: MethodsOptions = {}): string[] {
  const out: string[] = [];
  if (results.length === 0) return out;
  const mae = options.mae ?? "mae";
  const first = results[0];
  const meta = obj(first.meta) ?? {};
  const settings = settingsOf(first);

  // data
  const dataNames = distinct(results.map((r) => String(obj(r.meta)?.data ?? "not recorded")));
  const cases = obj(obj(settings?.data)?.cases);
  const split = (k: string) => (Array.isArray(cases?.[k]) ? (cases![k] as unknown[]).length : undefined);
  const testN = Array.isArray(meta.testCases) ? meta.testCases.length : split("test");
  const valN = Array.isArray(meta.valCases) ? meta.valCases.length : split("val");
  const splits = [
    ["unlabeled", split("unlabeled")],
    ["labelled training", split("train")],
    ["validation", valN],
    ["test", testN],
  ].filter((x): x is [string, number] => typeof x[1] === "number");
  const pre = obj(settings?.preprocessing);
  const spacing = Array.isArray(pre?.spacing) ? (pre!.spacing as number[]) : null;
  const planName = distinct(results.map((r) => String(obj(r.meta)?.preprocessing ?? ""))).filter((p) => p);
  const intensity = obj(pre?.intensity);
  out.push(
    `Data: ${dataNames.join("; ")}` +
      (splits.length ? `; cases: ${splits.map(([k, n]) => `${n} ${k}`).join(", ")}` : "") +
      `. Preprocessing plan${planName.length ? ` "${planName.join('", "')}"` : ""}: ` +
      (spacing ? `resampled to ${spacing.join(" x ")} mm` : "each case at its own spacing") +
      (intensity?.kind === "ct" && Array.isArray(intensity.clip)
        ? `, CT intensities clipped to [${(intensity.clip as number[]).map((v) => v.toFixed(0)).join(", ")}] and ` +
          `standardised (statistics from ${String(pre?.statsFrom ?? "the training images")})`
        : intensity
          ? `, ${String(intensity.kind)} intensity normalisation`
          : "") +
      ".",
  );

  // network
  const nets = groupBy(results, ["model"]).map((g) => {
    const params = distinct(g.runs.map((r) => num(obj(r.meta)?.params)).filter((p): p is number => p !== undefined));
    const crop = obj(settingsOf(g.runs[0])?.model)?.cropSize;
    return (
      `${g.values.model}` +
      (params.length ? ` (${params.map((p) => p.toLocaleString("en-US")).join(" / ")} parameters` : " (") +
      (Array.isArray(crop)
        ? `${params.length ? ", " : ""}crops of ${(crop as number[]).join(" x ")} voxels)`
        : params.length
          ? ")"
          : "parameters not recorded)")
    );
  });
  out.push(`Network: ${nets.join("; ")}.`);

  // pretraining
  const maeRuns = results.filter((r) => r.init === mae);
  if (maeRuns.length) {
    const how = distinct(maeRuns.map((r) => String(obj(r.meta)?.pretraining ?? "not recorded")));
    const ckpt =
      options.maeCheckpoint ??
      distinct(maeRuns.map(checkpointNamedIn).filter((c): c is string => !!c))[0] ??
      shippedCheckpointUsed(maeRuns, options.pretrain?.shipped);
    let text = `Pretraining: the "${mae}" arm's encoder starts from MAE pretraining (${how.join("; ")})`;
    if (ckpt) {
      const shipped = /(?:^|[\\/])pretrained[\\/]([^\\/]+)[\\/]mae\.safetensors$/.exec(ckpt);
      text += shipped
        ? `, the kit's shipped encoder "${shipped[1]}" (${path.basename(ckpt)})`
        : `, checkpoint ${path.basename(ckpt)}`;
      const { card, problem } = readEncoderCard(ckpt);
      if (card) {
        const facts = [
          card.steps !== undefined ? `${card.steps.toLocaleString("en-US")} steps` : undefined,
          card.unlabeled !== undefined ? `on ${plural(card.unlabeled, "unlabeled volume")}` : undefined,
          card.wallTimeS !== undefined ? `${(card.wallTimeS / 3600).toFixed(2)} h of wall time` : undefined,
          card.heldOutLoss !== undefined
            ? `held-out masked-reconstruction loss ${card.heldOutLoss.toFixed(4)}` +
              (card.meanBaseline !== undefined ? ` vs ${card.meanBaseline.toFixed(4)} for predicting the mean` : "")
            : undefined,
          card.commit ? `kit commit ${card.commit.slice(0, 12)}` : undefined,
        ].filter((f): f is string => !!f);
        text += facts.length ? `; its model card records ${facts.join(", ")}` : "; its model card records no figures";
      } else if (problem) {
        text += `; its model card could not be read: ${problem}`;
      } else {
        text += "; no model card (card.json) beside it";
      }
    } else if (how.some((h) => h.startsWith("given"))) {
      text += ", a checkpoint these results do not name (its model card cannot be cited)";
    } else if (options.pretrain) {
      text +=
        `, pretrained within the study for ${options.pretrain.steps.toLocaleString("en-US")} steps on the unlabeled split` +
        (split("unlabeled") !== undefined ? ` (${plural(split("unlabeled")!, "volume")})` : "") +
        (options.pretrain.maskRatio !== undefined ? `, mask ratio ${options.pretrain.maskRatio}` : "");
    }
    out.push(`${text}.`);
  }

  // fine-tuning budget per fraction
  const ft = obj(settings?.finetune);
  const recipe = ft
    ? ` (${[
        ft.optimizer,
        ft.lr !== undefined ? `lr ${ft.lr}` : undefined,
        ft.batchSize !== undefined ? `batch ${ft.batchSize}` : undefined,
      ]
        .filter((x) => x !== undefined)
        .join(", ")})`
    : "";
  const perFraction = groupBy(results, ["labelFraction"])
    .sort((x, y) => (x.values.labelFraction as number) - (y.values.labelFraction as number))
    .map((g) => {
      const f = g.values.labelFraction as number;
      const nCases = distinct(g.runs.flatMap((r) => (r.labelledCases ? [r.labelledCases.length] : []))).sort(
        (a, b) => a - b,
      );
      const steps = distinct(g.runs.map((r) => r.steps)).sort((a, b) => a - b);
      const inits = distinct(g.runs.map((r) => r.init));
      const seeds = inits.map((i) => distinct(g.runs.filter((r) => r.init === i).map((r) => r.seed)));
      const sameSeeds = seeds.every((s) => s.length === seeds[0].length && s.every((v) => seeds[0].includes(v)));
      return (
        `${formatFraction(f)} labels` +
        (nCases.length
          ? ` (${nCases.join("/")} labelled ${nCases.length === 1 && nCases[0] === 1 ? "case" : "cases"})`
          : "") +
        `: ${steps.join("/")} steps, ` +
        (sameSeeds
          ? `${plural(seeds[0].length, "seed")} (${seedsText(seeds[0])}) per arm`
          : inits.map((i, k) => `${i} ${plural(seeds[k].length, "seed")} (${seedsText(seeds[k])})`).join(", "))
      );
    });
  out.push(
    `Fine-tuning${recipe}, the same budget for every arm: ${perFraction.join("; ")}. Arms: ${distinct(results.map((r) => r.init)).join(", ")}.`,
  );

  // test split
  if (testN !== undefined) {
    out.push(
      `Test: ${plural(testN, "case")}, never seen in training or validation, scored with each run's final weights` +
        (valN !== undefined ? `; validation curves on ${plural(valN, "other case")}` : "") +
        ".",
    );
  }
  return out;
}
