// Plotting helpers: figure builders return plain {data, layout}; show() displays them in tslab or returns HTML.
export * from "./plotly";
export * from "./volume_views";
export * from "./charts";
export * from "./lessons";
