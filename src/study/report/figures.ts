// Plotly figures of a study: Dice against label fraction, validation curves, per-organ bars.
import { barChart, lineChart } from "../../plots/charts";
import { Figure } from "../../plots/plotly";
import { RunResult } from "../grid";
import { formatFraction, meanStd } from "./format";
import { groupBy, groupName, varyingFields } from "./groups";
import { meanCurve } from "./convergence";
import { organNames, studyTable } from "./tables";

/** Test mean Dice against label fraction, one line per (model, init), error bars one std over seeds. */
export function diceVsFractionFigure(results: readonly RunResult[], metric: "dice" | "hd95" = "dice"): Figure {
  const varying = varyingFields(results, ["model", "init"]);
  const rows = studyTable(results, { by: ["model", "init", "labelFraction"], iterations: 1 });
  const lines = groupBy(results, ["model", "init"]).map((g) => {
    const mine = rows.filter((r) => r.model === g.values.model && r.init === g.values.init);
    const s = mine.map((r) => (metric === "dice" ? r.dice : r.hd95));
    return {
      name: groupName(g.values, varying),
      x: mine.map((r) => r.labelFraction as number),
      y: s.map((v) => v.mean),
      err: s.map((v) => (Number.isFinite(v.std) ? v.std : 0)),
    };
  });
  const fig = lineChart(lines, {
    title: `Test ${metric === "dice" ? "mean Dice" : "mean HD95"} vs label fraction (mean ± std over seeds)`,
    xTitle: "label fraction",
    yTitle: metric === "dice" ? "Dice" : "HD95 (mm)",
  });
  fig.data.forEach((t, i) => {
    t.error_y = { type: "data", array: lines[i].err.map((e) => Number(e.toPrecision(6))), visible: true };
  });
  fig.layout.showlegend = true;
  fig.layout.xaxis = { ...fig.layout.xaxis, tickformat: ".0%" };
  return fig;
}

/** Validation Dice (mean over seeds) against step for one label fraction, one line per (model, init). */
export function validationCurvesFigure(results: readonly RunResult[], labelFraction: number): Figure {
  const mine = results.filter((r) => r.labelFraction === labelFraction);
  const varying = varyingFields(results, ["model", "init"]);
  const series = groupBy(mine, ["model", "init"]).map((g) => {
    const c = meanCurve(g.runs);
    return { name: `${groupName(g.values, varying)} (n=${g.runs.length})`, x: c.step, y: c.valDice };
  });
  const fig = lineChart(series, {
    title: `Validation Dice, ${formatFraction(labelFraction)} labels (mean over seeds)`,
    xTitle: "step",
    yTitle: "validation Dice",
  });
  fig.layout.showlegend = true;
  return fig;
}

/** Per-organ test Dice for one label fraction: grouped bars, one group per (model, init), error bars one std. */
export function organBarsFigure(results: readonly RunResult[], labelFraction: number): Figure {
  const mine = results.filter((r) => r.labelFraction === labelFraction);
  const organs = organNames(mine);
  const varying = varyingFields(results, ["model", "init"]);
  const groups = groupBy(mine, ["model", "init"]).map((g) => {
    const s = organs.map((o) => meanStd(g.runs.map((r) => r.test.perClassDice[o] ?? NaN)));
    return {
      name: groupName(g.values, varying),
      categories: organs,
      values: s.map((v) => v.mean),
      errors: s.map((v) => (Number.isFinite(v.std) ? v.std : 0)),
    };
  });
  const fig = barChart(groups, {
    title: `Test Dice per organ, ${formatFraction(labelFraction)} labels (mean ± std over seeds)`,
    yTitle: "Dice",
    width: 900,
  });
  fig.layout.showlegend = true;
  return fig;
}
