// Fingerprints of settings: a stable hash of a JSON-able description, and a field-by-field diff that says what
// changed. A study stores the description and its fingerprint with each result row and checkpoint, so that a rerun
// with other settings is refused (naming the fields) instead of answered with an old row.
//
// The canonical form is JSON with object keys sorted at every level, undefined fields left out (as JSON.stringify
// does), and numbers JSON cannot hold written as strings ("NaN", "Infinity", "-Infinity") so they do not collide
// with null. Key order therefore never changes a fingerprint; array order does.
import * as crypto from "crypto";

/** Values a description may hold. */
export type Jsonish = null | boolean | number | string | undefined | Jsonish[] | { [key: string]: Jsonish };

function canonical(value: unknown, where: string): unknown {
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number") return Number.isFinite(value) ? (Object.is(value, -0) ? 0 : value) : String(value);
  if (Array.isArray(value)) return value.map((v, i) => (v === undefined ? null : canonical(v, `${where}[${i}]`)));
  if (typeof value === "object") {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      throw new Error(
        `fingerprint: ${where || "value"} is a ${proto?.constructor?.name ?? "?"}; describe it with plain JSON`,
      );
    }
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = canonical(v, where ? `${where}.${k}` : k);
    }
    return out;
  }
  throw new Error(`fingerprint: ${where || "value"} is a ${typeof value}; describe it with plain JSON`);
}

/** The canonical JSON text of `value` (sorted keys; see the top of the file). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonical(value, ""));
}

/** Hex SHA-256 (first 16 digits) of the canonical JSON of `value`. */
export function fingerprint(value: unknown): string {
  return crypto.createHash("sha256").update(canonicalJson(value)).digest("hex").slice(0, 16);
}

/** One field that differs between two descriptions: its path ("finetune.steps", "models[1]") and both values. */
export interface FieldDiff {
  path: string;
  /** Value in the first description (undefined: the field is missing there). */
  before: unknown;
  /** Value in the second description. */
  after: unknown;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The fields in which `before` and `after` differ, in sorted key order, compared on their canonical forms.
 * Objects are compared field by field; arrays of equal length element by element; anything else as a whole.
 */
export function diffFields(before: unknown, after: unknown): FieldDiff[] {
  const out: FieldDiff[] = [];
  const walk = (a: unknown, b: unknown, at: string) => {
    if (isPlainObject(a) && isPlainObject(b)) {
      for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort())
        walk(a[k], b[k], at ? `${at}.${k}` : k);
      return;
    }
    if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
      a.forEach((v, i) => walk(v, b[i], `${at}[${i}]`));
      return;
    }
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ path: at || "(whole value)", before: a, after: b });
  };
  walk(canonical(before, ""), canonical(after, ""), "");
  return out;
}

function show(v: unknown): string {
  if (v === undefined) return "(missing)";
  const s = JSON.stringify(v);
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}

/** "finetune.steps: 2 -> 4; models: [...] -> [...]" (at most `max` fields, then "and N more"). */
export function describeDiff(diffs: FieldDiff[], max = 8): string {
  const shown = diffs.slice(0, max).map((d) => `${d.path}: ${show(d.before)} -> ${show(d.after)}`);
  if (diffs.length > max) shown.push(`and ${diffs.length - max} more`);
  return shown.join("; ");
}
