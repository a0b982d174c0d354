// Small pictures and a progress line for the lesson notebooks: window ids on a token grid (plain and shifted), grids of
// small integer maps side by side, box-and-arrow diagrams, and one updating status line instead of log blocks.
import type { Figure, PlotLayout, PlotTrace } from "./plotly";
import { kernelDisplay } from "./plotly";

// ---- window ids ------------------------------------------------------------------------------------------------

/**
 * The attention window of every token of a 2D slice of the token grid, in the grid's own coordinates.
 * size [H, W] tokens, window [h, w] tokens, shift [sh, sw]: a shifted block rolls the grid by -shift before cutting
 * it into windows (Swin / nnFormer), so in the original coordinates every window border moves by `shift` and the
 * windows at the far end wrap around to the first rows and columns. Ids count windows row by row.
 */
export function windowIdMap(
  size: [number, number],
  window: [number, number],
  shift: [number, number] = [0, 0],
): number[][] {
  const [H, W] = size;
  for (const [name, v] of [
    ["size", size],
    ["window", window],
  ] as const) {
    if (!v.every((x) => Number.isInteger(x) && x > 0))
      throw new Error(`windowIdMap: ${name} must be positive integers, got ${v}`);
  }
  if (H % window[0] !== 0 || W % window[1] !== 0)
    throw new Error(`windowIdMap: size ${size} is not a multiple of window ${window} (pad the grid first)`);
  const perRow = W / window[1];
  const mod = (a: number, n: number) => ((a % n) + n) % n;
  return Array.from({ length: H }, (_, y) =>
    Array.from({ length: W }, (_, x) => {
      const wy = Math.floor(mod(y - shift[0], H) / window[0]);
      const wx = Math.floor(mod(x - shift[1], W) / window[1]);
      return wy * perRow + wx;
    }),
  );
}

// ---- small integer maps side by side ---------------------------------------------------------------------------

export interface MapPanel {
  title: string;
  /** Row-major [rows][cols] small integers (window ids, labels, a 0/1 mask). */
  z: number[][];
}

export interface MapGridOptions {
  title?: string;
  /** Print each cell's value in it (default true; turn off above ~20x20). */
  showValues?: boolean;
  /** Plotly colour scale (default a qualitative one spread over the value range). */
  colorscale?: string | Array<[number, string]>;
  /** Pixels per cell (default 22). */
  cell?: number;
  /** Panels per row (default all in one row). */
  columns?: number;
}

const QUALITATIVE = ["#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5", "#d9d9d9"];

/** A stepped colour scale: value k gets colour k mod 9 (neighbouring ids differ). */
function steppedScale(maxValue: number): Array<[number, string]> {
  const n = Math.max(1, maxValue + 1);
  const out: Array<[number, string]> = [];
  for (let k = 0; k < n; k++) {
    const c = QUALITATIVE[k % QUALITATIVE.length];
    out.push([k / n, c], [(k + 1) / n, c]);
  }
  return out;
}

/** Several small integer maps side by side (rows of `columns`), one heatmap each, the value printed in every cell. */
export function mapGrid(panels: MapPanel[], options: MapGridOptions = {}): Figure {
  if (panels.length === 0) throw new Error("mapGrid needs at least one panel");
  const cell = options.cell ?? 22;
  const columns = Math.max(1, Math.min(options.columns ?? panels.length, panels.length));
  const rowsOfPanels = Math.ceil(panels.length / columns);
  const maxV = Math.max(...panels.flatMap((p) => p.z.flat()));
  const minV = Math.min(...panels.flatMap((p) => p.z.flat()));
  const cols = Math.max(...panels.map((p) => p.z[0]?.length ?? 1));
  const rows = Math.max(...panels.map((p) => p.z.length));
  const titlePx = 24,
    gapPx = 24;
  const panelW = cols * cell,
    panelH = rows * cell;
  const plotW = columns * panelW + (columns - 1) * gapPx;
  const plotH = rowsOfPanels * (panelH + titlePx) + (rowsOfPanels - 1) * gapPx;
  const top = options.title ? 50 : 10;
  const data: PlotTrace[] = [];
  const layout: PlotLayout = {
    annotations: [],
    showlegend: false,
    margin: { l: 10, r: 10, t: top, b: 10 },
    width: Math.max(440, plotW + 20),
    height: plotH + top + 10,
  };
  panels.forEach((p, i) => {
    const suffix = i === 0 ? "" : String(i + 1);
    const col = i % columns,
      row = Math.floor(i / columns);
    data.push({
      type: "heatmap",
      z: p.z,
      xaxis: `x${suffix}`,
      yaxis: `y${suffix}`,
      zmin: minV,
      zmax: maxV,
      showscale: false,
      colorscale: options.colorscale ?? steppedScale(maxV),
      xgap: 1,
      ygap: 1,
      ...((options.showValues ?? true) ? { texttemplate: "%{z}", textfont: { size: 10 } } : {}),
      hovertemplate: "row %{y}, col %{x}: %{z}<extra></extra>",
    });
    const x0 = (col * (panelW + gapPx)) / plotW;
    const x1 = (col * (panelW + gapPx) + panelW) / plotW;
    const yTop = 1 - (row * (panelH + titlePx + gapPx) + titlePx) / plotH;
    const yBottom = yTop - panelH / plotH;
    const hidden = { showticklabels: false, ticks: "", showgrid: false, zeroline: false };
    layout[`xaxis${suffix}`] = { ...hidden, domain: [x0, x1], anchor: `y${suffix}` };
    layout[`yaxis${suffix}`] = { ...hidden, domain: [yBottom, yTop], anchor: `x${suffix}`, autorange: "reversed" };
    layout.annotations.push({
      text: p.title,
      x: (x0 + x1) / 2,
      y: yTop,
      xref: "paper",
      yref: "paper",
      xanchor: "center",
      yanchor: "bottom",
      showarrow: false,
    });
  });
  if (options.title) layout.title = { text: options.title };
  return { data, layout };
}

// ---- box-and-arrow diagrams ------------------------------------------------------------------------------------

export interface DiagramBox {
  id: string;
  /** Centre, in diagram units (the canvas is [0, width] x [0, height] of `DiagramOptions.units`). */
  x: number;
  y: number;
  w: number;
  h: number;
  text: string;
  /** Fill colour (default light grey). */
  fill?: string;
}

export interface DiagramArrow {
  from: string;
  to: string;
  /** Short text at the arrow's middle. */
  text?: string;
  dashed?: boolean;
}

export interface DiagramOptions {
  title?: string;
  /** Canvas size in diagram units [width, height] (default [10, 6]). */
  units?: [number, number];
  /** Pixels (default 700 x 420). */
  width?: number;
  height?: number;
}

/** A box-and-arrow diagram as a plotly figure (shapes for boxes, annotations for text and arrows). */
export function blockDiagram(boxes: DiagramBox[], arrows: DiagramArrow[], options: DiagramOptions = {}): Figure {
  const [U, V] = options.units ?? [10, 6];
  const byId = new Map(boxes.map((b) => [b.id, b]));
  const shapes: PlotLayout[] = boxes.map((b) => ({
    type: "rect",
    x0: b.x - b.w / 2,
    x1: b.x + b.w / 2,
    y0: b.y - b.h / 2,
    y1: b.y + b.h / 2,
    line: { color: "#444", width: 1 },
    fillcolor: b.fill ?? "#eeeeee",
    layer: "below",
  }));
  const annotations: PlotLayout[] = boxes.map((b) => ({
    x: b.x,
    y: b.y,
    text: b.text,
    showarrow: false,
    font: { size: 12 },
  }));
  for (const a of arrows) {
    const f = byId.get(a.from),
      t = byId.get(a.to);
    if (!f || !t) throw new Error(`blockDiagram: arrow ${a.from} -> ${a.to} names a box that does not exist`);
    // from the edge of one box to the edge of the other, along the line between centres
    const edge = (b: DiagramBox, dx: number, dy: number) => {
      const s = Math.min(
        Math.abs(dx) > 1e-9 ? b.w / 2 / Math.abs(dx) : Infinity,
        Math.abs(dy) > 1e-9 ? b.h / 2 / Math.abs(dy) : Infinity,
      );
      return [b.x + dx * s, b.y + dy * s];
    };
    const dx = t.x - f.x,
      dy = t.y - f.y;
    const [x0, y0] = edge(f, dx, dy);
    const [x1, y1] = edge(t, -dx, -dy);
    annotations.push({
      x: x1,
      y: y1,
      ax: x0,
      ay: y0,
      xref: "x",
      yref: "y",
      axref: "x",
      ayref: "y",
      showarrow: true,
      arrowhead: 2,
      arrowwidth: 1.5,
      arrowcolor: a.dashed ? "#1f77b4" : "#333",
      text: "",
    });
    if (a.text) {
      annotations.push({
        x: (x0 + x1) / 2,
        y: (y0 + y1) / 2,
        text: a.text,
        showarrow: false,
        font: { size: 11, color: a.dashed ? "#1f77b4" : "#333" },
        bgcolor: "white",
      });
    }
  }
  const axis = (n: number) => ({ range: [0, n], showgrid: false, zeroline: false, showticklabels: false });
  const layout: PlotLayout = {
    width: options.width ?? 700,
    height: options.height ?? 420,
    margin: { l: 10, r: 10, t: options.title ? 50 : 10, b: 10 },
    xaxis: axis(U),
    yaxis: axis(V),
    shapes,
    annotations,
    plot_bgcolor: "white",
  };
  if (options.title) layout.title = { text: options.title };
  return { data: [{ type: "scatter", x: [], y: [], mode: "markers", hoverinfo: "skip" }], layout };
}

// ---- one updating status line ------------------------------------------------------------------------------------

/** A status line that rewrites itself: a display updated in place in a kernel, a carriage-return line elsewhere. */
export interface ProgressLine {
  /** Replace the line (updates are throttled to one every `intervalMs`; the last one is always kept by done()). */
  set(text: string): void;
  /** Use as a `log` callback: each log line replaces the status line. */
  log: (line: string) => void;
  /** Show the final text (or the latest one) and end the line. */
  done(text?: string): void;
}

export function progressLine(options: { intervalMs?: number } = {}): ProgressLine {
  const intervalMs = options.intervalMs ?? 500;
  let latest = "";
  let last = 0;
  let slot: { text(s: string): void } | undefined;
  const draw = () => {
    last = Date.now();
    const d = kernelDisplay();
    if (d !== undefined) {
      if (slot === undefined) slot = d.newDisplay();
      slot.text(latest);
    } else {
      process.stdout.write(`\r${latest}\x1b[K`);
    }
  };
  const set = (text: string) => {
    latest = text.replace(/\s*\n\s*/g, " ");
    if (Date.now() - last >= intervalMs) draw();
  };
  return {
    set,
    log: (line: string) => set(line),
    done(text?: string) {
      if (text !== undefined) latest = text.replace(/\s*\n\s*/g, " ");
      draw();
      if (kernelDisplay() === undefined) process.stdout.write("\n");
    },
  };
}

// ---- lesson sizes ------------------------------------------------------------------------------------------------

/** The step budgets of a study profile (structural, so plots need not import the study layer). */
export interface StepBudgets {
  pretrain: { steps: number; evalEvery: number };
  finetune: { steps: number; evalEvery: number };
  /** Per-label-fraction budgets (a study profile's perFraction). */
  perFraction?: Record<string, { seeds?: number; steps?: number }>;
}

/**
 * Caps every step budget of a profile at `cap` (in place; returns it): a quick check that a lesson-size notebook runs
 * end to end (`KIT_LESSON_STEPS=3 npm run nb:render -- notebooks/04_finetuning.ipynb`). cap <= 0 changes nothing.
 */
export function capSteps<T extends StepBudgets>(profile: T, cap: number): T {
  if (!Number.isFinite(cap) || cap <= 0) return profile;
  if (!Number.isInteger(cap)) throw new Error(`capSteps: the cap must be a whole number of steps, got ${cap}`);
  for (const part of [profile.pretrain, profile.finetune]) {
    part.steps = Math.min(part.steps, cap);
    part.evalEvery = Math.min(part.evalEvery, cap);
  }
  for (const f of Object.values(profile.perFraction ?? {})) if (f.steps !== undefined) f.steps = Math.min(f.steps, cap);
  return profile;
}
