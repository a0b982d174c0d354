// Printing table rows: number formats (summaries, intervals, p-values, fractions) and the Markdown, CSV and HTML
// writers. Tables are arrays of plain row objects; a cell may be a {mean, std, n} summary or a {lo, hi} interval:
// Markdown prints "0.812 ± 0.013" and "[0.790, 0.830]", CSV spreads them over dice_mean, dice_std / diceCi_lo,
// diceCi_hi columns.
import { finiteOnly, mean, std } from "../stats";

/** Mean and sample std of the finite values of a group; n counts those values. */
export interface MeanStd {
  mean: number;
  std: number;
  n: number;
}

/** A confidence interval; `undefinedReason` ("n = 1", "all 3 values equal") when there is none, printed as n/a. */
export interface Interval {
  lo: number;
  hi: number;
  undefinedReason?: string;
}

function isMeanStd(v: unknown): v is MeanStd {
  return typeof v === "object" && v !== null && "mean" in v && "std" in v;
}

function isInterval(v: unknown): v is Interval {
  return typeof v === "object" && v !== null && "lo" in v && "hi" in v;
}

/** Summary of the finite values (NaN marks a metric that was not measured). */
export function meanStd(values: readonly number[]): MeanStd {
  const xs = finiteOnly(values);
  return { mean: mean(xs), std: std(xs), n: xs.length };
}

/** Markdown headers for the row fields this file produces; other keys print as they are. */
export const DEFAULT_HEADERS: Record<string, string> = {
  model: "model",
  init: "init",
  labelFraction: "labels",
  n: "n",
  level: "Dice level",
  share: "share of the lower arm's best median",
  dice: "Dice (mean ± std)",
  diceCi: "Dice 95% CI",
  hd95: "HD95 mm (mean ± std)",
  hd95Ci: "HD95 95% CI",
  organs: "organs over runs × test cases",
  hd95Found: "HD95 mm of found organs (undefined)",
  meanDice: "mean Dice",
  meanHd95: "mean HD95 (mm)",
  meanA: "A",
  meanB: "B",
  diff: "A − B",
  diffCi: "95% CI of A − B",
  mde: "detectable difference (80% power)",
  pPermutation: "p (permutation)",
  pWilcoxon: "p (Wilcoxon)",
  pAdjusted: "p (Holm)",
  minP: "smallest possible p",
  pFloor: "smallest possible p (Holm)",
  unmatched: "unmatched",
  verdict: "verdict",
  reached: "reached",
  medianSteps: "median steps",
  medianStepsA: "median steps A",
  medianStepsB: "median steps B",
  ratio: "ratio B / A",
  params: "parameters",
  msPerStep: "ms / step",
  runs: "runs",
};

export interface FormatOptions {
  /** Decimals for numbers, summaries and intervals: one for all, or per row key. Default 3 (2 for keys with "hd95"). */
  digits?: number | Record<string, number>;
  /** Column headers by row key (Markdown and HTML); merged over DEFAULT_HEADERS. */
  headers?: Record<string, string>;
}

const MISSING = "–";

function digitsFor(key: string, options: FormatOptions): number {
  const d = options.digits;
  if (typeof d === "number") return d;
  if (d !== undefined && d[key] !== undefined) return d[key];
  return /hd95/i.test(key) ? 2 : 3;
}

/** A p-value: three significant digits, "<0.0001" below that. */
export function formatP(p: number): string {
  if (!Number.isFinite(p)) return MISSING;
  if (p < 1e-4) return "<0.0001";
  return String(Number(p.toPrecision(3)));
}

/** A label fraction as a percentage: 0.25 -> "25%". */
export function formatFraction(f: number): string {
  return Number.isFinite(f) ? `${Number((f * 100).toPrecision(6))}%` : MISSING;
}

function fixed(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : MISSING;
}

const P_KEY = /^(p[A-Z]|minP$)/;
/** Keys holding counts or steps, printed as they are; every other number gets fixed decimals (a Dice of 1 is "1.000"). */
const COUNT_KEY = /^(n|runs|params|reached|unmatched|seed|steps|medianSteps.*)$/;

/** One table value as text, the way Markdown and HTML tables show it. */
export function formatValue(key: string, v: unknown, options: FormatOptions = {}): string {
  const digits = digitsFor(key, options);
  if (v === null || v === undefined) return key.startsWith("medianSteps") ? "not reached" : MISSING;
  if (typeof v === "string") return v;
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "number") {
    if (Number.isNaN(v)) return MISSING;
    if (key === "labelFraction" || key === "share") return formatFraction(v);
    if (key === "level") return String(v);
    if (P_KEY.test(key)) return formatP(v);
    if (COUNT_KEY.test(key)) return String(v);
    if (key === "ratio") return fixed(v, 2);
    return fixed(v, digits);
  }
  if (isMeanStd(v))
    return Number.isFinite(v.std) ? `${fixed(v.mean, digits)} ± ${fixed(v.std, digits)}` : fixed(v.mean, digits);
  if (isInterval(v)) {
    if (v.undefinedReason !== undefined) return `n/a (${v.undefinedReason})`;
    // a zero-width interval claims a certainty no study here has: never print one
    if (!Number.isFinite(v.lo) || !Number.isFinite(v.hi) || v.lo === v.hi) return MISSING;
    return `[${fixed(v.lo, digits)}, ${fixed(v.hi, digits)}]`;
  }
  return JSON.stringify(v);
}

/** Row keys in order of first appearance. */
function columnsOf(rows: readonly object[]): string[] {
  const seen = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) seen.add(k);
  return [...seen];
}

function headerOf(key: string, options: FormatOptions): string {
  return options.headers?.[key] ?? DEFAULT_HEADERS[key] ?? key;
}

/** A GitHub-flavoured Markdown table of the rows (columns: every key, in order of first appearance). */
export function toMarkdown(rows: readonly object[], options: FormatOptions = {}): string {
  if (rows.length === 0) return "_(no rows)_\n";
  const cols = columnsOf(rows);
  const esc = (s: string) => s.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
  const numeric = cols.map((k) =>
    rows.every((r) => {
      const v = (r as Record<string, unknown>)[k];
      return typeof v === "number" || isMeanStd(v) || isInterval(v) || v == null;
    }),
  );
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const out = [
    line(cols.map((k) => esc(headerOf(k, options)))),
    line(cols.map((_, j) => (numeric[j] ? "---:" : "---"))),
    ...rows.map((r) => line(cols.map((k) => esc(formatValue(k, (r as Record<string, unknown>)[k], options))))),
  ];
  return `${out.join("\n")}\n`;
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csvNumber(v: number): string {
  return Number.isFinite(v) ? String(v) : "";
}

/**
 * CSV of the rows, for spreadsheets and other tools: full-precision numbers, empty for NaN or null; a {mean, std, n}
 * value becomes KEY_mean, KEY_std, KEY_n columns and a {lo, hi} value KEY_lo, KEY_hi.
 */
export function toCsv(rows: readonly object[]): string {
  const cols = columnsOf(rows);
  const kind = cols.map((k) => {
    for (const r of rows) {
      const v = (r as Record<string, unknown>)[k];
      if (isMeanStd(v)) return "meanStd";
      if (isInterval(v)) return "interval";
      if (v != null) return "plain";
    }
    return "plain";
  });
  const header: string[] = [];
  cols.forEach((k, j) => {
    if (kind[j] === "meanStd") header.push(`${k}_mean`, `${k}_std`, `${k}_n`);
    else if (kind[j] === "interval") header.push(`${k}_lo`, `${k}_hi`);
    else header.push(k);
  });
  const lines = [header.map(csvField).join(",")];
  for (const r of rows) {
    const fields: string[] = [];
    cols.forEach((k, j) => {
      const v = (r as Record<string, unknown>)[k];
      if (kind[j] === "meanStd") {
        const m = isMeanStd(v) ? v : undefined;
        fields.push(m ? csvNumber(m.mean) : "", m ? csvNumber(m.std) : "", m ? String(m.n) : "");
      } else if (kind[j] === "interval") {
        const iv = isInterval(v) ? v : undefined;
        fields.push(iv ? csvNumber(iv.lo) : "", iv ? csvNumber(iv.hi) : "");
      } else if (typeof v === "number") fields.push(csvNumber(v));
      else if (v == null) fields.push("");
      else fields.push(csvField(typeof v === "string" ? v : JSON.stringify(v)));
    });
    lines.push(fields.join(","));
  }
  return `${lines.join("\n")}\n`;
}

export function escHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** An HTML <table> of the rows, formatted as toMarkdown formats them. */
export function toHtmlTable(rows: readonly object[], options: FormatOptions = {}): string {
  if (rows.length === 0) return "<p><em>(no rows)</em></p>";
  const cols = columnsOf(rows);
  const head = cols.map((k) => `<th>${escHtml(headerOf(k, options))}</th>`).join("");
  const body = rows.map((r) => {
    const tds = cols.map((k) => {
      const v = (r as Record<string, unknown>)[k];
      const cls = typeof v === "string" ? "" : ' class="num"';
      return `<td${cls}>${escHtml(formatValue(k, v, options))}</td>`;
    });
    return `<tr>${tds.join("")}</tr>`;
  });
  return `<table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body.join("\n")}\n</tbody>\n</table>`;
}
