// Slices of a 3D volume as plotly heatmaps: grayscale image, label map on top as semi-transparent categories.
//
// Planes are named by the voxel axis they fix: axial = fixed D, coronal = fixed H, sagittal = fixed W.
// Axial rows are H and columns W; coronal rows D, columns W; sagittal rows D, columns H. We never transpose;
// the affine only decides which way each screen axis runs (NIfTI world is RAS+): superior and anterior up,
// anterior on the left in sagittal views, and patient's right on the viewer's left ("radiological", the default)
// or on the right ("neurological"). Hover and crosshair coordinates stay voxel indices.
import { Volume } from "../data/volume";
import { Figure, PlotLayout, PlotTrace } from "./plotly";

export type SliceAxis = "axial" | "coronal" | "sagittal";
export type Convention = "radiological" | "neurological";

/** Label names by class id (index 0 = background, never drawn). */
export type LabelNames = string[] | Record<number, string>;

const AXIS_NAMES: SliceAxis[] = ["axial", "coronal", "sagittal"];
const AXIS_LETTER = ["d", "h", "w"];

/** Categorical colours for classes 1, 2, ... (cycled past the end). Picked to stay apart on a gray image. */
export const LABEL_COLORS = [
  "#e6194b",
  "#3cb44b",
  "#ffe119",
  "#4363d8",
  "#f58231",
  "#911eb4",
  "#46f0f0",
  "#f032e6",
  "#bcf60c",
  "#fabebe",
  "#008080",
  "#e6beff",
  "#9a6324",
  "#fffac8",
  "#800000",
  "#aaffc3",
  "#808000",
  "#ffd8b1",
  "#000075",
  "#808080",
];

/** Colour of class `c` (c >= 1). */
export function labelColor(c: number): string {
  return LABEL_COLORS[(c - 1) % LABEL_COLORS.length];
}

function labelName(names: LabelNames | undefined, c: number): string {
  const n = names === undefined ? undefined : (names as Record<number, string>)[c];
  return n ?? `class ${c}`;
}

/** Axis index 0 (D), 1 (H) or 2 (W) for a plane name or number. */
export function axisIndex(axis: SliceAxis | 0 | 1 | 2): 0 | 1 | 2 {
  if (axis === 0 || axis === 1 || axis === 2) return axis;
  const i = AXIS_NAMES.indexOf(axis);
  if (i < 0)
    throw new Error(`unknown slice axis ${JSON.stringify(axis)}; use "axial", "coronal", "sagittal" or 0, 1, 2`);
  return i as 0 | 1 | 2;
}

/** A 2D slice: values row-major [rows, cols], with the voxel axes (0 D, 1 H, 2 W) its rows and columns run along. */
export interface Slice2D {
  rows: number;
  cols: number;
  values: Float32Array;
  rowAxis: 0 | 1 | 2;
  colAxis: 0 | 1 | 2;
}

/** The slice of `vol` (channel `channel`) at `index` along `axis`. */
export function extractSlice(vol: Volume, axis: 0 | 1 | 2, index: number, channel = 0): Slice2D {
  const [, H, W] = vol.shape;
  const C = vol.channels;
  const n = vol.shape[axis];
  if (!Number.isInteger(index) || index < 0 || index >= n) {
    throw new Error(`slice index ${index} is outside [0, ${n - 1}] on axis ${AXIS_NAMES[axis]} of ${vol.source}`);
  }
  if (channel < 0 || channel >= C) throw new Error(`channel ${channel} is outside [0, ${C - 1}] of ${vol.source}`);
  const rowAxis = (axis === 0 ? 1 : 0) as 0 | 1 | 2;
  const colAxis = (axis === 2 ? 1 : 2) as 0 | 1 | 2;
  const rows = vol.shape[rowAxis],
    cols = vol.shape[colAxis];
  const values = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const d = axis === 0 ? index : r;
      const h = axis === 0 ? r : axis === 1 ? index : c;
      const w = axis === 2 ? index : c;
      values[r * cols + c] = vol.data[((d * H + h) * W + w) * C + channel];
    }
  }
  return { rows, cols, values, rowAxis, colAxis };
}

/** Every `stride`-th row and column: block mean for images, the block's centre voxel for labels. */
function downsample(
  s: Slice2D,
  stride: number,
  mode: "mean" | "nearest",
): { rows: number; cols: number; values: Float32Array } {
  if (stride <= 1) return s;
  const rows = Math.ceil(s.rows / stride),
    cols = Math.ceil(s.cols / stride);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const r0 = r * stride,
        c0 = c * stride;
      const r1 = Math.min(r0 + stride, s.rows),
        c1 = Math.min(c0 + stride, s.cols);
      if (mode === "nearest") {
        out[r * cols + c] = s.values[((r0 + r1) >> 1) * s.cols + ((c0 + c1) >> 1)];
        continue;
      }
      let sum = 0,
        count = 0;
      for (let rr = r0; rr < r1; rr++) {
        for (let cc = c0; cc < c1; cc++) {
          const v = s.values[rr * s.cols + cc];
          if (Number.isFinite(v)) {
            sum += v;
            count++;
          }
        }
      }
      out[r * cols + c] = count > 0 ? sum / count : NaN;
    }
  }
  return { rows, cols, values: out };
}

/** The lo/hi percentiles (0..100) of the finite values of channel `channel`, from at most ~200k samples. */
export function percentileWindow(vol: Volume, lo = 0.5, hi = 99.5, channel = 0): [number, number] {
  const n = vol.data.length / vol.channels;
  const step = Math.max(1, Math.floor(n / 200_000));
  const xs: number[] = [];
  for (let i = 0; i < n; i += step) {
    const v = vol.data[i * vol.channels + channel];
    if (Number.isFinite(v)) xs.push(v);
  }
  if (xs.length === 0) return [0, 1];
  xs.sort((a, b) => a - b);
  const at = (p: number) => xs[Math.min(xs.length - 1, Math.max(0, Math.round((p / 100) * (xs.length - 1))))];
  let a = at(lo),
    b = at(hi);
  if (!(b > a)) {
    a = xs[0];
    b = xs[xs.length - 1];
  }
  if (!(b > a)) b = a + 1;
  return [a, b];
}

/** Centroid (rounded voxel index) of label > 0, or undefined if the label map is empty. */
export function foregroundCentroid(label: Volume): [number, number, number] | undefined {
  const [D, H, W] = label.shape;
  const C = label.channels;
  let sd = 0,
    sh = 0,
    sw = 0,
    n = 0;
  for (let d = 0, i = 0; d < D; d++) {
    for (let h = 0; h < H; h++) {
      for (let w = 0; w < W; w++, i++) {
        if (label.data[i * C] > 0) {
          sd += d;
          sh += h;
          sw += w;
          n++;
        }
      }
    }
  }
  if (n === 0) return undefined;
  return [Math.round(sd / n), Math.round(sh / n), Math.round(sw / n)];
}

/** Sorted class ids > 0 present in the label maps. */
function presentClasses(labels: Volume[]): number[] {
  const seen = new Set<number>();
  for (const l of labels) {
    for (let i = 0; i < l.data.length; i += l.channels) {
      const v = l.data[i];
      if (v > 0) seen.add(Math.round(v));
    }
  }
  return [...seen].sort((a, b) => a - b);
}

/** For each voxel axis (0 D, 1 H, 2 W): the world axis (0 x R, 1 y A, 2 z S) it mostly runs along, and the sign. */
function worldDirections(vol: Volume): { world: number; sign: number }[] {
  return [0, 1, 2].map((axis) => {
    const col = 2 - axis; // affine columns are (i, j, k) = (W, H, D)
    let best = axis === 0 ? 2 : axis === 1 ? 1 : 0,
      bestAbs = 0,
      sign = 1;
    const a = vol.affine;
    if (Array.isArray(a) && a.length >= 3) {
      for (let r = 0; r < 3; r++) {
        const v = a[r]?.[col] ?? 0;
        if (Math.abs(v) > bestAbs) {
          bestAbs = Math.abs(v);
          best = r;
          sign = v < 0 ? -1 : 1;
        }
      }
    }
    return { world: best, sign };
  });
}

/** Whether a screen axis showing voxel axis `axis` must run backwards (see the file comment for the conventions). */
function reversedOnScreen(vol: Volume, axis: number, horizontal: boolean, convention: Convention): boolean {
  const { world, sign } = worldDirections(vol)[axis];
  if (!horizontal) return sign < 0; // +world (R, A or S) points up
  if (world === 0) return convention === "radiological" ? sign > 0 : sign < 0; // +x is the patient's right
  if (world === 1) return sign > 0; // anterior on the left
  return sign < 0; // superior on the right
}

function decimalsFor(window: [number, number]): number {
  const width = window[1] - window[0];
  return Math.min(6, Math.max(0, Math.ceil(-Math.log10(width / 500))));
}

function toRows(v: Float32Array, rows: number, cols: number, map: (x: number) => number | null): (number | null)[][] {
  const z: (number | null)[][] = [];
  for (let r = 0; r < rows; r++) {
    const row: (number | null)[] = new Array(cols);
    for (let c = 0; c < cols; c++) row[c] = map(v[r * cols + c]);
    z.push(row);
  }
  return z;
}

/** Colour scale for class ids 1..K on a heatmap with zmin 0.5 and zmax K + 0.5: one flat band per class. */
function categoricalScale(numClasses: number): [number, string][] {
  const k = Math.max(1, numClasses);
  const scale: [number, string][] = [];
  for (let c = 1; c <= k; c++) {
    scale.push([(c - 1) / k, labelColor(c)], [c / k, labelColor(c)]);
  }
  return scale;
}

interface PanelSpec {
  image: Volume;
  label?: Volume;
  axis: 0 | 1 | 2;
  index: number;
  /** Crosshair position for the two in-plane axes, voxel indices [d, h, w]. */
  cross?: [number, number, number];
  title: string;
  window: [number, number];
  channel: number;
  numClasses: number;
  maxPixels: number;
  labelOpacity: number;
  convention: Convention;
}

/** The drawing settings every panel of a figure shares, defaults filled in. */
function panelStyle(o: {
  maxPixels?: number;
  labelOpacity?: number;
  convention?: Convention;
}): Pick<PanelSpec, "maxPixels" | "labelOpacity" | "convention"> {
  return {
    maxPixels: o.maxPixels ?? 256,
    labelOpacity: o.labelOpacity ?? 0.45,
    convention: o.convention ?? "radiological",
  };
}

/** Traces, axes and shapes for one slice drawn into subplot `n` (1-based) occupying the given paper domain. */
function panel(spec: PanelSpec, n: number, xDomain: [number, number], yDomain: [number, number]) {
  const { image, label, axis, index } = spec;
  if (label !== undefined && label.shape.join() !== image.shape.join()) {
    throw new Error(`label ${label.source} has shape [${label.shape}] but image ${image.source} has [${image.shape}]`);
  }
  const xa = n === 1 ? "x" : `x${n}`,
    ya = n === 1 ? "y" : `y${n}`;
  const slice = extractSlice(image, axis, index, spec.channel);
  const stride = Math.max(1, Math.ceil(Math.max(slice.rows, slice.cols) / spec.maxPixels));
  const img = downsample(slice, stride, "mean");
  const f = 10 ** decimalsFor(spec.window);
  const rowName = AXIS_LETTER[slice.rowAxis],
    colName = AXIS_LETTER[slice.colAxis];
  const grid = { x0: 0, dx: stride, y0: 0, dy: stride, xaxis: xa, yaxis: ya };
  const data: PlotTrace[] = [
    {
      type: "heatmap",
      name: spec.title,
      z: toRows(img.values, img.rows, img.cols, (v) => (Number.isFinite(v) ? Math.round(v * f) / f : null)),
      ...grid,
      zmin: spec.window[0],
      zmax: spec.window[1],
      zsmooth: false,
      colorscale: [
        [0, "#000000"],
        [1, "#ffffff"],
      ],
      showscale: false,
      hovertemplate: `${rowName}=%{y} ${colName}=%{x}<br>%{z}<extra></extra>`,
    },
  ];
  if (label !== undefined) {
    const lab = downsample(extractSlice(label, axis, index, 0), stride, "nearest");
    data.push({
      type: "heatmap",
      name: `${spec.title} label`,
      z: toRows(lab.values, lab.rows, lab.cols, (v) => (v > 0 ? Math.round(v) : null)), // 0 -> null = transparent
      ...grid,
      zmin: 0.5,
      zmax: spec.numClasses + 0.5,
      zsmooth: false,
      colorscale: categoricalScale(spec.numClasses),
      opacity: spec.labelOpacity,
      showscale: false,
      hovertemplate: `${rowName}=%{y} ${colName}=%{x}<br>class %{z}<extra></extra>`,
    });
  }
  const sp = image.spacing;
  const xRange = [-stride / 2, (img.cols - 1) * stride + stride / 2];
  const yRange = [-stride / 2, (img.rows - 1) * stride + stride / 2];
  const xRev = reversedOnScreen(image, slice.colAxis, true, spec.convention);
  const yRev = reversedOnScreen(image, slice.rowAxis, false, spec.convention);
  const bare = { showgrid: false, zeroline: false, showticklabels: false, ticks: "", showline: false };
  const axes: PlotLayout = {
    [n === 1 ? "xaxis" : `xaxis${n}`]: {
      ...bare,
      domain: xDomain,
      anchor: ya,
      range: xRev ? [...xRange].reverse() : xRange,
      constrain: "domain",
    },
    [n === 1 ? "yaxis" : `yaxis${n}`]: {
      ...bare,
      domain: yDomain,
      anchor: xa,
      range: yRev ? [...yRange].reverse() : yRange,
      constrain: "domain",
      constraintoward: "top",
      scaleanchor: xa,
      scaleratio: sp[slice.rowAxis] / sp[slice.colAxis],
    },
  };
  const shapes: PlotTrace[] = [];
  if (spec.cross !== undefined) {
    const line = { color: "rgba(255, 220, 0, 0.6)", width: 1, dash: "dot" };
    const cx = spec.cross[slice.colAxis],
      cy = spec.cross[slice.rowAxis];
    shapes.push(
      { type: "line", xref: xa, yref: ya, x0: cx, x1: cx, y0: yRange[0], y1: yRange[1], line },
      { type: "line", xref: xa, yref: ya, x0: xRange[0], x1: xRange[1], y0: cy, y1: cy, line },
    );
  }
  const annotation = {
    text: spec.title,
    xref: "paper",
    yref: "paper",
    x: (xDomain[0] + xDomain[1]) / 2,
    y: yDomain[1],
    xanchor: "center",
    yanchor: "bottom",
    showarrow: false,
    font: { size: 13 },
  };
  // Physical size of the slice in mm, for laying out the figure.
  const mm = { w: slice.cols * sp[slice.colAxis], h: slice.rows * sp[slice.rowAxis] };
  return { data, axes, shapes, annotation, mm };
}

/** Invisible marker traces that put the label names and colours in the legend. */
function legendTraces(classes: number[], names: LabelNames | undefined): PlotTrace[] {
  return classes.map((c) => ({
    type: "scatter",
    mode: "markers",
    x: [null],
    y: [null],
    name: labelName(names, c),
    marker: { color: labelColor(c), size: 11, symbol: "square" },
    showlegend: true,
    hoverinfo: "skip",
  }));
}

function clampIndex(i: number, n: number): number {
  return Math.min(n - 1, Math.max(0, Math.round(i)));
}

export interface OrthoSlicesOptions {
  /** Label map on the same grid, drawn over the image; 0 is transparent. */
  label?: Volume;
  /** Names by class id, for the legend. */
  labelNames?: LabelNames;
  /** Voxel [d, h, w] the three planes pass through; default the label foreground centroid, else the centre. */
  index?: [number, number, number];
  /** Intensity window [lo, hi]; default the 0.5 and 99.5 percentiles. */
  window?: [number, number];
  title?: string;
  /** Which image channel to show (multi-modal images); default 0. */
  channel?: number;
  /** Figure width in pixels; the height follows from the slices' physical sizes. Default 900. */
  width?: number;
  /** Slices longer than this many pixels on a side are downsampled (block mean). Default 256. */
  maxPixels?: number;
  /** Opacity of the label overlay, default 0.45. */
  labelOpacity?: number;
  /** Dotted lines marking where the other two planes cut; default true. */
  crosshair?: boolean;
  /** Patient's right on the viewer's left (radiological, default) or right (neurological). */
  convention?: Convention;
}

/** Axial, coronal and sagittal slices through one voxel, side by side, with an optional label overlay. */
export function orthoSlices(image: Volume, options: OrthoSlicesOptions = {}): Figure {
  const { label } = options;
  const [D, H, W] = image.shape;
  const start = options.index ??
    (label !== undefined ? foregroundCentroid(label) : undefined) ?? [D >> 1, H >> 1, W >> 1];
  const index: [number, number, number] = [clampIndex(start[0], D), clampIndex(start[1], H), clampIndex(start[2], W)];
  const channel = options.channel ?? 0;
  const window = options.window ?? percentileWindow(image, 0.5, 99.5, channel);
  const classes = label === undefined ? [] : presentClasses([label]);
  const numClasses = Math.max(classes.length > 0 ? classes[classes.length - 1] : 1, namesMax(options.labelNames));
  const width = options.width ?? 900;
  const margin = { l: 10, r: 10, t: options.title ? 60 : 30, b: classes.length > 0 ? 40 : 10 };

  // Widths in mm of the three slices decide the split of the figure width; heights then follow.
  const sp = image.spacing;
  const mmW = [W * sp[2], W * sp[2], H * sp[1]];
  const mmH = [H * sp[1], D * sp[0], D * sp[0]];
  const gap = 0.02;
  const total = mmW[0] + mmW[1] + mmW[2];
  let x0 = 0;
  const parts = [0, 1, 2].map((axis) => {
    const frac = (mmW[axis] / total) * (1 - 2 * gap);
    const domain: [number, number] = [x0, x0 + frac];
    x0 += frac + gap;
    const title = `${AXIS_NAMES[axis]} ${AXIS_LETTER[axis]}=${index[axis]}`;
    return panel(
      {
        image,
        label,
        axis: axis as 0 | 1 | 2,
        index: index[axis],
        cross: options.crosshair === false ? undefined : index,
        title,
        window,
        channel,
        numClasses,
        ...panelStyle(options),
      },
      axis + 1,
      domain,
      [0, 1],
    );
  });
  const pxPerMm = ((width - margin.l - margin.r) * (1 - 2 * gap)) / total;
  const plotHeight = Math.max(120, Math.ceil(Math.max(...mmH) * pxPerMm) + 20);
  const layout: PlotLayout = {
    width,
    height: plotHeight + margin.t + margin.b,
    margin,
    plot_bgcolor: "black",
    paper_bgcolor: "white",
    showlegend: classes.length > 0,
    legend: { orientation: "h", x: 0, y: 0, yanchor: "top" },
    shapes: parts.flatMap((p) => p.shapes),
    annotations: parts.map((p) => p.annotation),
    ...Object.assign({}, ...parts.map((p) => p.axes)),
  };
  if (options.title) layout.title = { text: options.title, x: 0.5, xanchor: "center" };
  return { data: [...parts.flatMap((p) => p.data), ...legendTraces(classes, options.labelNames)], layout };
}

function namesMax(names: LabelNames | undefined): number {
  if (names === undefined) return 0;
  const ids = Array.isArray(names) ? names.map((_, i) => i) : Object.keys(names).map(Number);
  return ids.length > 0 ? Math.max(...ids) : 0;
}

/** One panel of a sliceGrid. */
export interface GridPanel {
  title: string;
  image: Volume;
  label?: Volume;
}

export interface SliceGridOptions {
  /** [lo, hi] for every panel; "shared" (default) = percentiles of the first image; "each" = per panel. */
  window?: [number, number] | "shared" | "each";
  title?: string;
  labelNames?: LabelNames;
  /** Panels per row; default all in one row up to 4. */
  columns?: number;
  /** Figure width in pixels, default 300 per column. */
  width?: number;
  maxPixels?: number;
  labelOpacity?: number;
  channel?: number;
  convention?: Convention;
}

/**
 * The same slice of several volumes side by side (original / masked / reconstruction; prediction / ground truth).
 * `index` defaults to the first label's foreground centroid along `axis`, else the middle slice.
 */
export function sliceGrid(
  panels: GridPanel[],
  axis: SliceAxis | 0 | 1 | 2 = "axial",
  index?: number,
  options: SliceGridOptions = {},
): Figure {
  if (panels.length === 0) throw new Error("sliceGrid needs at least one panel");
  const ax = axisIndex(axis);
  const first = panels[0];
  const firstLabel = panels.find((p) => p.label !== undefined)?.label;
  const centroid = firstLabel !== undefined ? foregroundCentroid(firstLabel) : undefined;
  const at = index ?? (centroid !== undefined ? centroid[ax] : first.image.shape[ax] >> 1);
  const channel = options.channel ?? 0;
  const shared: [number, number] | undefined = Array.isArray(options.window)
    ? options.window
    : options.window === "each"
      ? undefined
      : percentileWindow(first.image, 0.5, 99.5, channel);
  const labels = panels.flatMap((p) => (p.label !== undefined ? [p.label] : []));
  const classes = presentClasses(labels);
  const numClasses = Math.max(classes.length > 0 ? classes[classes.length - 1] : 1, namesMax(options.labelNames));

  const columns = Math.max(1, Math.min(options.columns ?? Math.min(4, panels.length), panels.length));
  const rows = Math.ceil(panels.length / columns);
  const width = options.width ?? 300 * columns;
  const margin = { l: 10, r: 10, t: 60, b: classes.length > 0 ? 40 : 10 };
  const gapX = columns > 1 ? 0.02 : 0,
    rowTitle = 24; // pixels above each panel for its title

  // Panel height in pixels from the tallest panel's aspect ratio (mm), at the column width.
  const colPx = ((width - margin.l - margin.r) * (1 - gapX * (columns - 1))) / columns;
  let aspect = 0;
  for (const p of panels) {
    const s = extractSliceShape(p.image, ax);
    aspect = Math.max(aspect, s.hmm / s.wmm);
  }
  const panelPx = Math.max(80, Math.ceil(colPx * aspect));
  const plotHeight = rows * panelPx + (rows - 1) * rowTitle;
  const height = plotHeight + margin.t + margin.b;
  const colFrac = (1 - gapX * (columns - 1)) / columns;

  const parts = panels.map((p, i) => {
    const r = Math.floor(i / columns),
      c = i % columns;
    const top = 1 - (r * (panelPx + rowTitle)) / plotHeight;
    const yDomain: [number, number] = [Math.max(0, top - panelPx / plotHeight), top];
    const xDomain: [number, number] = [c * (colFrac + gapX), c * (colFrac + gapX) + colFrac];
    return panel(
      {
        image: p.image,
        label: p.label,
        axis: ax,
        index: clampIndex(at, p.image.shape[ax]),
        title: p.title,
        window: shared ?? percentileWindow(p.image, 0.5, 99.5, channel),
        channel,
        numClasses,
        ...panelStyle(options),
      },
      i + 1,
      xDomain,
      yDomain,
    );
  });
  const layout: PlotLayout = {
    width,
    height,
    margin,
    plot_bgcolor: "black",
    paper_bgcolor: "white",
    showlegend: classes.length > 0,
    legend: { orientation: "h", x: 0, y: 0, yanchor: "top" },
    annotations: parts.map((p) => p.annotation),
    ...Object.assign({}, ...parts.map((p) => p.axes)),
  };
  const plane = `${AXIS_NAMES[ax]} ${AXIS_LETTER[ax]}=${clampIndex(at, first.image.shape[ax])}`;
  layout.title = { text: options.title ? `${options.title} (${plane})` : plane, x: 0.5, xanchor: "center" };
  return { data: [...parts.flatMap((p) => p.data), ...legendTraces(classes, options.labelNames)], layout };
}

/** Physical width and height (mm) of a slice along `axis`, without extracting it. */
function extractSliceShape(vol: Volume, axis: 0 | 1 | 2): { wmm: number; hmm: number } {
  const rowAxis = axis === 0 ? 1 : 0,
    colAxis = axis === 2 ? 1 : 2;
  return { wmm: vol.shape[colAxis] * vol.spacing[colAxis], hmm: vol.shape[rowAxis] * vol.spacing[rowAxis] };
}
