// Tables and an HTML report from the results of a study, one job per file:
//   format.ts       cell values and the Markdown / CSV / HTML table writers
//   groups.ts       grouping results by model, init and label fraction (internal)
//   tables.ts       Dice and HD95 per group with bootstrap CIs, the per-organ table (nnFormer Table II), model cost
//   compare.ts      the paired comparison of two initialisations with a verdict in plain words
//   convergence.ts  steps to reach a validation Dice level, and ratios between two initialisations
//   figures.ts      plotly figures (Dice vs label fraction, validation curves, per-organ bars)
//   notes.ts        what the numbers mean: HD95 definition, organ counts, interval method, test unit, pretraining
//   html.ts         the self-contained HTML page
// This file re-exports the public names; the grouping helpers stay internal.
export type { FormatOptions, Interval, MeanStd } from "./format";
export {
  DEFAULT_HEADERS,
  formatFraction,
  formatP,
  formatValue,
  meanStd,
  toCsv,
  toHtmlTable,
  toMarkdown,
} from "./format";
export type { GroupField } from "./groups";
export type { OrganTableOptions, StudyRow, StudyTableOptions } from "./tables";
export {
  detectionTable,
  formatOrganCounts,
  modelCostRows,
  organNames,
  organTable,
  studyTable,
  sumDetections,
  table2Rows,
} from "./tables";
export type { NotesOptions } from "./notes";
export { studyNotes } from "./notes";
export type { CompareOptions, ComparisonRow } from "./compare";
export { compareInits, comparisonHeaders, comparisonTableRows } from "./compare";
export type { ConvergenceOptions, ConvergenceRatioRow, ConvergenceRow } from "./convergence";
export { convergenceRatios, convergenceTable, meanCurve } from "./convergence";
export { diceVsFractionFigure, organBarsFigure, validationCurvesFigure } from "./figures";
export type { HtmlReportOptions } from "./html";
export { htmlReport, writeHtmlReport } from "./html";
