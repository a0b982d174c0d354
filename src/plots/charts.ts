// Line, bar and histogram charts as plain plotly figures, plus a line chart that redraws itself while training runs.
import {
  Figure,
  FigureHtmlOptions,
  PlotLayout,
  PlotTrace,
  figureToHtml,
  newFigureId,
  updatableDisplay,
} from "./plotly";

/** Six significant digits: enough for a plot, and the figure JSON stays short. Non-finite values become gaps. */
function tidy(v: number): number | null {
  return Number.isFinite(v) ? Number(v.toPrecision(6)) : null;
}

function axisTitle(text: string | undefined): Record<string, unknown> {
  return text ? { title: { text } } : {};
}

function titled(layout: PlotLayout, title: string | undefined): PlotLayout {
  if (title) layout.title = { text: title, x: 0.5, xanchor: "center" };
  return layout;
}

/** One line of a line chart. */
export interface LineSeries {
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
}

/** Titles, y scale and size of a chart with two numeric axes (pixels; default 700 x 400). */
export interface ChartFrameOptions {
  title?: string;
  xTitle?: string;
  yTitle?: string;
  /** Logarithmic y axis (loss curves, voxel counts). */
  logY?: boolean;
  width?: number;
  height?: number;
}

export interface LineChartOptions extends ChartFrameOptions {
  /** Series longer than this are thinned to every k-th point (the last point is always kept). Default 2000. */
  maxPoints?: number;
}

function thin(s: LineSeries, maxPoints: number): { x: (number | null)[]; y: (number | null)[] } {
  if (s.x.length !== s.y.length) {
    throw new Error(`series "${s.name}" has ${s.x.length} x values but ${s.y.length} y values`);
  }
  const n = s.x.length;
  const step = Math.max(1, Math.ceil(n / maxPoints));
  const x: (number | null)[] = [],
    y: (number | null)[] = [];
  for (let i = 0; i < n; i += step) {
    x.push(tidy(s.x[i]));
    y.push(tidy(s.y[i]));
  }
  if (n > 0 && (n - 1) % step !== 0) {
    x.push(tidy(s.x[n - 1]));
    y.push(tidy(s.y[n - 1]));
  }
  return { x, y };
}

/** Lines (with markers while short) for loss and metric curves. */
export function lineChart(series: LineSeries[], options: LineChartOptions = {}): Figure {
  const maxPoints = options.maxPoints ?? 2000;
  const data: PlotTrace[] = series.map((s) => ({
    type: "scatter",
    mode: s.x.length <= 50 ? "lines+markers" : "lines",
    name: s.name,
    ...thin(s, maxPoints),
  }));
  const layout: PlotLayout = {
    width: options.width ?? 700,
    height: options.height ?? 400,
    margin: { l: 60, r: 20, t: options.title ? 50 : 20, b: 50 },
    xaxis: { ...axisTitle(options.xTitle), zeroline: false },
    yaxis: { ...axisTitle(options.yTitle), type: options.logY ? "log" : "linear", zeroline: false },
    showlegend: series.length > 1,
  };
  return { data, layout: titled(layout, options.title) };
}

export interface LiveLineChartOptions extends LineChartOptions {
  /** Redraw after this many pushes (default 10) ... */
  every?: number;
  /** ... or when this many ms passed since the last redraw (default 2000), whichever comes first. */
  intervalMs?: number;
}

/** A line chart fed point by point; in a tslab kernel it redraws in place in the cell that created it. */
export interface LiveLineChart {
  /** Add a point to the named series (created on first use); redraws when due. */
  push(seriesName: string, x: number, y: number): void;
  /** Redraw now (call after the loop); returns the HTML outside a kernel. */
  flush(): string | undefined;
  /** The current figure. */
  figure(): Figure;
  /** The current figure's HTML (fixed div id, so drawing it again replaces the old plot). */
  html(options?: FigureHtmlOptions): string;
}

/**
 * A line chart for a training loop: `const live = liveLineChart({...}); ... live.push("train", step, loss); ...
 * live.flush()`. In a kernel each redraw is a Jupyter update_display_data on one display id, so the classic
 * Notebook, nbclient and the saved notebook keep only the latest plot. Outside a kernel nothing is displayed.
 */
export function liveLineChart(options: LiveLineChartOptions = {}): LiveLineChart {
  const series = new Map<string, { x: number[]; y: number[] }>();
  const id = newFigureId();
  const slot = updatableDisplay();
  const every = Math.max(1, options.every ?? 10);
  const intervalMs = options.intervalMs ?? 2000;
  let pending = 0,
    last = 0;

  const figure = (): Figure =>
    lineChart(
      [...series].map(([name, s]) => ({ name, x: s.x, y: s.y })),
      options,
    );
  const html = (o: FigureHtmlOptions = {}): string => figureToHtml(figure(), { ...o, id });
  const flush = (): string | undefined => {
    pending = 0;
    last = Date.now();
    return slot.update(html());
  };
  return {
    push(seriesName: string, x: number, y: number): void {
      let s = series.get(seriesName);
      if (s === undefined) {
        s = { x: [], y: [] };
        series.set(seriesName, s);
      }
      s.x.push(x);
      s.y.push(y);
      pending += 1;
      if (pending >= every || Date.now() - last >= intervalMs) flush();
    },
    flush,
    figure,
    html,
  };
}

/** One group of bars (one colour): a value, and optionally an error bar, per category. */
export interface BarGroup {
  name: string;
  categories: string[];
  values: ArrayLike<number>;
  /** Half-length of each error bar (e.g. a standard deviation), same order as values. */
  errors?: ArrayLike<number>;
}

export interface BarChartOptions {
  title?: string;
  yTitle?: string;
  xTitle?: string;
  width?: number;
  height?: number;
}

/** Grouped bars with optional symmetric error bars, e.g. Dice per organ for several models. */
export function barChart(groups: BarGroup[], options: BarChartOptions = {}): Figure {
  const data: PlotTrace[] = groups.map((g) => {
    if (g.categories.length !== g.values.length) {
      throw new Error(`bar group "${g.name}" has ${g.categories.length} categories but ${g.values.length} values`);
    }
    if (g.errors !== undefined && g.errors.length !== g.values.length) {
      throw new Error(`bar group "${g.name}" has ${g.values.length} values but ${g.errors.length} errors`);
    }
    const trace: PlotTrace = { type: "bar", name: g.name, x: [...g.categories], y: Array.from(g.values, tidy) };
    if (g.errors !== undefined) trace.error_y = { type: "data", array: Array.from(g.errors, tidy), visible: true };
    return trace;
  });
  const layout: PlotLayout = {
    width: options.width ?? 700,
    height: options.height ?? 400,
    margin: { l: 60, r: 20, t: options.title ? 50 : 20, b: 60 },
    barmode: "group",
    xaxis: axisTitle(options.xTitle),
    yaxis: axisTitle(options.yTitle),
    showlegend: groups.length > 1,
  };
  return { data, layout: titled(layout, options.title) };
}

/** Values of one histogram, e.g. the intensities inside one organ. */
export interface HistogramSeries {
  name: string;
  values: ArrayLike<number>;
}

export interface HistogramOptions extends ChartFrameOptions {
  /** Number of equal-width bins over the range, default 50. */
  bins?: number;
  /** [lo, hi]; default the smallest and largest finite value over all series. Values outside are dropped. */
  range?: [number, number];
  /** Divide counts by (count * bin width), so organs of different size compare. Default false. */
  density?: boolean;
}

/** Counts per bin and the bin edges, computed here so the figure stays small however many voxels there are. */
export function binCounts(
  values: ArrayLike<number>,
  bins: number,
  range: [number, number],
): { edges: number[]; counts: number[] } {
  const [lo, hi] = range;
  const width = (hi - lo) / bins;
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!(v >= lo && v <= hi)) continue; // also skips NaN
    counts[Math.min(bins - 1, Math.floor((v - lo) / width))] += 1;
  }
  const edges = Array.from({ length: bins + 1 }, (_, i) => lo + i * width);
  return { edges, counts };
}

/** Overlaid histograms on shared bins, one per series. */
export function histogram(series: HistogramSeries[], options: HistogramOptions = {}): Figure {
  const bins = Math.max(1, Math.floor(options.bins ?? 50));
  let range = options.range;
  if (range === undefined) {
    let lo = Infinity,
      hi = -Infinity;
    for (const s of series) {
      for (let i = 0; i < s.values.length; i++) {
        const v = s.values[i];
        if (Number.isFinite(v)) {
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
      }
    }
    range = Number.isFinite(lo) ? [lo, hi > lo ? hi : lo + 1] : [0, 1];
  }
  if (!(range[1] > range[0])) throw new Error(`histogram range [${range}] must have hi > lo`);
  const binWidth = (range[1] - range[0]) / bins;
  const data: PlotTrace[] = series.map((s) => {
    const { edges, counts } = binCounts(s.values, bins, range!);
    const total = counts.reduce((a, b) => a + b, 0);
    const y = options.density ? counts.map((c) => (total > 0 ? tidy(c / (total * binWidth)) : 0)) : counts;
    return {
      type: "bar",
      name: s.name,
      x: edges.slice(0, bins).map((e) => tidy(e + binWidth / 2)),
      y,
      width: tidy(binWidth),
      opacity: series.length > 1 ? 0.55 : 0.9,
      marker: { line: { width: 0 } },
    };
  });
  const layout: PlotLayout = {
    width: options.width ?? 700,
    height: options.height ?? 400,
    margin: { l: 60, r: 20, t: options.title ? 50 : 20, b: 50 },
    barmode: "overlay",
    bargap: 0,
    xaxis: axisTitle(options.xTitle ?? "intensity"),
    yaxis: {
      ...axisTitle(options.yTitle ?? (options.density ? "density" : "voxels")),
      type: options.logY ? "log" : "linear",
    },
    showlegend: series.length > 1,
  };
  return { data, layout: titled(layout, options.title) };
}

export interface HeatmapOptions {
  title?: string;
  xTitle?: string;
  yTitle?: string;
  /** Plotly colour scale name ("Viridis", "Greys", ...). Default "Viridis". */
  colorscale?: string;
  /** Square cells (for token grids and attention matrices). Default true. */
  square?: boolean;
  /** First row at the top (matrix convention). Default true. */
  rowsDown?: boolean;
  width?: number;
  height?: number;
}

/** A matrix as a heatmap: z is row-major [rows][cols] (e.g. an attention mask or a map of window ids). */
export function heatmap(z: ArrayLike<number>[], options: HeatmapOptions = {}): Figure {
  const data: PlotTrace[] = [
    {
      type: "heatmap",
      z: z.map((row) => Array.from(row, (v) => tidy(v))),
      colorscale: options.colorscale ?? "Viridis",
    },
  ];
  const layout: PlotLayout = {
    width: options.width ?? 450,
    height: options.height ?? 420,
    margin: { l: 60, r: 20, t: options.title ? 50 : 20, b: 50 },
    xaxis: { ...axisTitle(options.xTitle), constrain: "domain" },
    yaxis: {
      ...axisTitle(options.yTitle),
      autorange: (options.rowsDown ?? true) ? "reversed" : true,
      ...((options.square ?? true) ? { scaleanchor: "x", scaleratio: 1 } : {}),
    },
  };
  return { data, layout: titled(layout, options.title) };
}
