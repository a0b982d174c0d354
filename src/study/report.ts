// Tables and an HTML report from the results of a study, one job per file:
//   format.ts       cell values and the Markdown / CSV / HTML table writers
//   groups.ts       grouping results by model, init and label fraction (internal)
//   tables.ts       Dice and HD95 per group with bootstrap CIs, the per-organ table (nnFormer Table II), model cost
//   compare.ts      the paired comparison of two initialisations with a verdict in plain words
//   convergence.ts  steps to reach a validation Dice level, and ratios between two initialisations
//   power.ts        minimum detectable difference of the paired design, and the power sentence
//   methods.ts      the methods paragraph (data, network, pretraining and its card, fine-tuning budget, test split)
//   figures.ts      plotly figures (Dice vs label fraction and vs labelled cases, validation curves, per-organ bars)
//   notes.ts        what the numbers mean: HD95 definition, organ counts, interval method, test unit, pretraining
//   html.ts         the self-contained HTML page
// This file re-exports the public names; the grouping helpers stay internal.
export type { FormatOptions, Interval, MeanStd } from "./report/format";
export {
  DEFAULT_HEADERS,
  formatFraction,
  formatP,
  formatValue,
  meanStd,
  toCsv,
  toHtmlTable,
  toMarkdown,
} from "./report/format";
export type { GroupField } from "./report/groups";
export type { OrganTableOptions, StudyRow, StudyTableOptions } from "./report/tables";
export {
  detectionTable,
  formatOrganCounts,
  modelCostRows,
  organNames,
  organTable,
  studyTable,
  sumDetections,
  table2Rows,
} from "./report/tables";
export type { NotesOptions } from "./report/notes";
export { studyNotes } from "./report/notes";
export type { CompareOptions, ComparisonRow } from "./report/compare";
export { compareInits, comparisonHeaders, comparisonTableRows } from "./report/compare";
export type {
  ConvergenceOptions,
  ConvergenceRatioRow,
  ConvergenceRow,
  MedianBand,
  SharedLevelRow,
} from "./report/convergence";
export {
  convergenceRatios,
  convergenceTable,
  meanCurve,
  medianBand,
  sharedLevelConvergence,
} from "./report/convergence";
export type { CasesErrorBars } from "./report/figures";
export {
  diceVsFractionFigure,
  diceVsLabelledCasesFigure,
  organBarsFigure,
  validationCurvesFigure,
} from "./report/figures";
export type { MdeOptions, PowerRow } from "./report/power";
export { minimumDetectableDifference, pairedMde, powerNote } from "./report/power";
export type { CardFacts, MethodsOptions } from "./report/methods";
export { methodsSentences, readEncoderCard } from "./report/methods";
export type { HtmlReportOptions } from "./report/html";
export { htmlReport, writeHtmlReport } from "./report/html";
