// Manifest errors: the ManifestError type and readable lines for zod issues (JSON path, the value, the fix).
import { z } from "zod";
import { ManifestSchema } from "./schema";

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

/** `cases[3].label` from ["cases", 3, "label"]. */
export function jsonPath(parts: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const p of parts) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out === "" ? String(p) : `.${String(p)}`;
  }
  return out === "" ? "(top level)" : out;
}

export function show(value: unknown): string {
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

export function zodIssueLines(issues: ReadonlyArray<z.core.$ZodIssue>): string[] {
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
