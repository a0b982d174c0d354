// Plotly figures, offline: the bundle is inlined into the notebook once, and each figure is a div plus a small script
// that waits for window.Plotly. Figures are plain {data, layout} objects, so library code builds them and tests
// inspect them without a browser.
//
// Inside a tslab kernel `show` displays through tslab; anywhere else it returns the HTML string. tslab is never
// imported at module load: requiring it outside a kernel works, but pulls in tslab's TypeScript compiler
// (about 0.8 s), and its display functions only throw "Not ready" there.
import * as fs from "fs";
import { writeFileAtomic } from "../runtime/files";

/** One plotly trace, as plotly's JSON schema describes it ({type: "heatmap", z, ...}). */
export type PlotTrace = Record<string, any>;
/** A plotly layout object. */
export type PlotLayout = Record<string, any>;

/** A figure is plain data: plotly's traces plus its layout. */
export interface Figure {
  data: PlotTrace[];
  layout: PlotLayout;
}

export interface FigureHtmlOptions {
  /** Pixels; default layout.width or 700. */
  width?: number;
  /** Pixels; default layout.height or 450. */
  height?: number;
  /** The div id; a fixed id lets a later figure replace this one (see liveLineChart). Default: a fresh id. */
  id?: string;
}

/** Make JavaScript source safe inside an inline <script>: the HTML parser must never see </script, <script or <!--. */
export function inlineSafe(js: string): string {
  // Inside JS strings and regexes "\x3C" is "<", so the escaped text still means the same thing.
  // The matched text is kept as it was ("<SCRIPT" stays upper case); only "<" is spelled differently.
  return js.replace(/<(\/?script|!--)/gi, (_m, rest: string) => `\\x3C${rest}`);
}

/** JSON that can sit inside an inline <script>: every "<" becomes \u003c. NaN and Infinity become null. */
export function scriptJson(x: unknown): string {
  return JSON.stringify(x)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

let bundle: string | undefined;

/** The plotly.js bundle (4.8 MB), read once per process. */
export function plotlyBundle(): string {
  if (bundle === undefined) {
    const file = require.resolve("plotly.js-dist-min");
    bundle = fs.readFileSync(file, "utf8");
  }
  return bundle;
}

/** A <script> that defines window.Plotly; display it once per notebook, before any figure. */
export function plotlyLoaderHtml(): string {
  // plotly.js 4.x has no AMD branch, so the classic Notebook's require.js does not swallow it (unlike UMD bundles).
  return `<script type="text/javascript">${inlineSafe(plotlyBundle())}</script>`;
}

let figureCount = 0;

function safeId(id: string): string {
  return id.replace(/[^A-Za-z0-9_-]/g, "_");
}

/** A fresh div id, unique across kernels and processes writing into the same notebook. */
export function newFigureId(): string {
  figureCount += 1;
  return `kitfig-${process.pid}-${Date.now().toString(36)}-${figureCount}`;
}

/**
 * A self-contained <div> + <script> that draws the figure once window.Plotly exists (it polls for 10 s, then writes
 * a hint into the div). Plotly.react, so drawing again into the same id updates the plot in place.
 */
export function figureHtml(data: PlotTrace[], layout: PlotLayout = {}, options: FigureHtmlOptions = {}): string {
  const width = options.width ?? layout.width ?? 700;
  const height = options.height ?? layout.height ?? 450;
  const id = safeId(options.id ?? newFigureId());
  const fullLayout = { ...layout, width, height };
  const config = { displaylogo: false, responsive: false };
  return (
    `<div id="${id}" class="kit-plotly" style="width:${width}px;height:${height}px;"></div>\n` +
    `<script type="text/javascript">(function () {\n` +
    `  var tries = 0;\n` +
    `  function draw() {\n` +
    `    var el = document.getElementById(${scriptJson(id)});\n` +
    `    if (!el) return;\n` +
    `    if (!window.Plotly) {\n` +
    `      if (++tries < 200) { setTimeout(draw, 50); return; }\n` +
    `      el.textContent = "Plotly is not loaded: display plotlyLoaderHtml() (showPlotlyLoader()) first.";\n` +
    `      return;\n` +
    `    }\n` +
    `    window.Plotly.react(el, ${scriptJson(data)}, ${scriptJson(fullLayout)}, ${scriptJson(config)});\n` +
    `  }\n` +
    `  draw();\n` +
    `})();</script>`
  );
}

/** figureHtml for a {data, layout} figure. */
export function figureToHtml(fig: Figure, options: FigureHtmlOptions = {}): string {
  return figureHtml(fig.data, fig.layout, options);
}

/** A standalone HTML page with plotly inlined, for reports. */
export function standaloneHtml(fig: Figure, title = "figure"): string {
  const esc = title.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  return (
    `<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>${esc}</title>\n</head>\n` +
    `<body style="margin:0;background:white;">\n${plotlyLoaderHtml()}\n${figureToHtml(fig)}\n</body>\n</html>\n`
  );
}

/** Write `fig` as a standalone HTML file (plotly inlined, about 4.9 MB), atomically. Returns the path. */
export function saveFigureHtml(file: string, fig: Figure): string {
  const title = typeof fig.layout.title === "string" ? fig.layout.title : (fig.layout.title?.text ?? "figure");
  writeFileAtomic(file, standaloneHtml(fig, String(title)));
  return file;
}

// ---- display -------------------------------------------------------------------------------------------------

/** The part of tslab's Display interface we use. */
interface TslabDisplay {
  html(s: string): void;
  text(s: string): void;
}
interface TslabModule {
  display: TslabDisplay;
  newDisplay(): TslabDisplay;
}

/**
 * tslab if this process is a tslab kernel that is ready to display, else undefined.
 * The kernel's own main module loads tslab/dist/jupyter.js and sets lastWriteDisplayData once it serves Jupyter,
 * so looking in require.cache tells us without loading anything.
 */
function kernelTslab(): TslabModule | undefined {
  const key = Object.keys(require.cache).find((k) => /[\\/]tslab[\\/]dist[\\/]jupyter\.js$/.test(k));
  const jupyter = key === undefined ? undefined : require.cache[key]?.exports;
  if (jupyter == null || jupyter.lastWriteDisplayData == null) return undefined;
  // Inside the kernel tslab hooks require("tslab") so this is the kernel's own instance.
  return require("tslab") as TslabModule;
}

/** tslab's display module inside a ready tslab kernel (for text displays updated in place), else undefined. */
export function kernelDisplay(): { newDisplay(): { text(s: string): void } } | undefined {
  return kernelTslab();
}

/** True when running inside a tslab Jupyter kernel, where show() displays instead of returning HTML. */
export function inTslabKernel(): boolean {
  return kernelTslab() !== undefined;
}

let loaderShown = false;

/** Display the plotly bundle (in a kernel); returns the loader HTML elsewhere. Safe to call once per notebook. */
export function showPlotlyLoader(): string | undefined {
  const tslab = kernelTslab();
  const html = plotlyLoaderHtml();
  if (tslab === undefined) return html;
  tslab.display.html(html);
  loaderShown = true;
  return undefined;
}

/**
 * Display HTML in a tslab kernel (returns undefined), or return it unchanged elsewhere.
 * In a kernel, the first call also displays the plotly loader if showPlotlyLoader() was not called yet.
 */
export function showHtml(html: string): string | undefined {
  const tslab = kernelTslab();
  if (tslab === undefined) return html;
  if (!loaderShown) showPlotlyLoader();
  tslab.display.html(html);
  return undefined;
}

/** Display a figure in a tslab kernel (returns undefined), or return its HTML elsewhere. */
export function show(fig: Figure, options: FigureHtmlOptions = {}): string | undefined {
  return showHtml(figureToHtml(fig, options));
}

/** A display slot that can be redrawn in place: in a kernel each update replaces the earlier output. */
export interface UpdatableDisplay {
  /** Show (first call) or replace (later calls) this slot's content; returns the HTML outside a kernel. */
  update(html: string): string | undefined;
}

/** A display slot backed by tslab.newDisplay() (Jupyter update_display_data) in a kernel. */
export function updatableDisplay(): UpdatableDisplay {
  let slot: TslabDisplay | undefined;
  return {
    update(html: string): string | undefined {
      const tslab = kernelTslab();
      if (tslab === undefined) return html;
      if (!loaderShown) showPlotlyLoader();
      if (slot === undefined) slot = tslab.newDisplay();
      slot.html(html);
      return undefined;
    },
  };
}

/** Display Markdown (tables from the study reports) in a tslab kernel, or return it unchanged elsewhere. */
export function showMarkdown(markdown: string): string | undefined {
  const tslab = kernelTslab();
  if (tslab === undefined) return markdown;
  (tslab.display as unknown as { markdown(s: string): void }).markdown(markdown);
  return undefined;
}
