// Grouping study results into cells (model, init, label fraction) and naming the groups.
import { RunResult } from "../grid";
import { formatFraction } from "./format";

/** Cell fields results can be grouped by. */
export type GroupField = "model" | "init" | "labelFraction";

export interface Group {
  values: Partial<Record<GroupField, string | number>>;
  runs: RunResult[];
}

/** Groups results by the given fields: strings in order of first appearance, label fractions ascending. */
export function groupBy(results: readonly RunResult[], by: readonly GroupField[]): Group[] {
  const firstSeen = new Map<string, number>();
  for (const r of results) {
    for (const f of by) {
      const id = `${f}=${r[f]}`;
      if (!firstSeen.has(id)) firstSeen.set(id, firstSeen.size);
    }
  }
  const groups = new Map<string, Group>();
  for (const r of results) {
    const id = by.map((f) => `${f}=${r[f]}`).join("|");
    let g = groups.get(id);
    if (g === undefined) {
      g = { values: {}, runs: [] };
      for (const f of by) g.values[f] = r[f];
      groups.set(id, g);
    }
    g.runs.push(r);
  }
  const rank = (g: Group, f: GroupField): number =>
    f === "labelFraction" ? (g.values[f] as number) : firstSeen.get(`${f}=${g.values[f]}`)!;
  return [...groups.values()].sort((x, y) => {
    for (const f of by) {
      const d = rank(x, f) - rank(y, f);
      if (d !== 0) return d;
    }
    return 0;
  });
}

export function distinct<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

/** A readable name for a group: only the fields that vary across the results, e.g. "mae" or "nnformer mae". */
export function groupName(
  values: Partial<Record<GroupField, string | number>>,
  varying: readonly GroupField[],
): string {
  const parts = varying
    .filter((f) => values[f] !== undefined)
    .map((f) => (f === "labelFraction" ? formatFraction(values[f] as number) : String(values[f])));
  return parts.length > 0 ? parts.join(" ") : "all";
}

export function varyingFields(results: readonly RunResult[], among: readonly GroupField[]): GroupField[] {
  return among.filter((f) => distinct(results.map((r) => r[f])).length > 1);
}
