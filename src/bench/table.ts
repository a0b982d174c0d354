// Plain-text tables of the benchmark report: number cells and column alignment shared by every table.

/** `v` with `d` decimals, or "-" when it was not measured (NaN, infinite). */
export function fixed(v: number, d = 1): string {
  return Number.isFinite(v) ? v.toFixed(d) : "-";
}

/** The cells every timed-step row starts with after its name: ops, backend, batch, crop, parameter count. */
export function setupCells(r: { ops: string; backend: string; batch: number; crop: string; params: number }): string[] {
  return [r.ops, r.backend, String(r.batch), r.crop, r.params.toLocaleString("en-US")];
}

/** Header and rows as aligned text, two spaces between columns: right-aligned, the first column left when asked. */
export function alignedTable(head: string[], body: string[][], firstLeft = false): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (firstLeft && i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(head), ...body.map(line)];
}
