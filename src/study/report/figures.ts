// Plotly figures of a study: Dice against label fraction and against labelled cases, validation curves (median
// and band over seeds), per-organ bars.
import { barChart, lineChart } from "../../plots/charts";
import { Figure, PlotTrace } from "../../plots/plotly";
import { median } from "../../runtime/math";
import { mean, tCI } from "../stats";
import { RunResult } from "../grid";
import { formatFraction, meanStd } from "./format";
import { distinct, groupBy, groupName, varyingFields } from "./groups";
import { medianBand } from "./convergence";
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

/** Line colours of the arms (plotly's first defaults), and the same colours as translucent band fills. */
const ARM_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
function translucent(hex: string, alpha: number): string {
  const v = parseInt(hex.slice(1), 16);
  return `rgba(${(v >> 16) & 255}, ${(v >> 8) & 255}, ${v & 255}, ${alpha})`;
}
const tidy = (v: number) => (Number.isFinite(v) ? Number(v.toPrecision(6)) : null);

/**
 * Validation Dice against step for one label fraction, one line per (model, init): the median over seeds, with a
 * band over seeds (min-max with fewer than 4 seeds in every arm, else the IQR; the title says which).
 */
export function validationCurvesFigure(results: readonly RunResult[], labelFraction: number): Figure {
  const mine = results.filter((r) => r.labelFraction === labelFraction);
  const varying = varyingFields(results, ["model", "init"]);
  const groups = groupBy(mine, ["model", "init"]).map((g) => ({
    name: `${groupName(g.values, varying)} (n=${g.runs.length})`,
    curve: medianBand(g.runs),
  }));
  const bands = distinct(groups.map((g) => g.curve.band));
  const bandText = bands.length === 1 ? bands[0] : bands.join(" or ");
  const data: PlotTrace[] = [];
  groups.forEach((g, i) => {
    const color = ARM_COLORS[i % ARM_COLORS.length];
    const x = g.curve.step.map(tidy);
    // the band: its lower edge (invisible), then the upper edge filled down to it
    data.push(
      {
        type: "scatter",
        mode: "lines",
        name: `${g.name} ${g.curve.band} low`,
        x,
        y: g.curve.lo.map(tidy),
        line: { width: 0, color },
        showlegend: false,
        hoverinfo: "skip",
      },
      {
        type: "scatter",
        mode: "lines",
        name: `${g.name} ${g.curve.band}`,
        x,
        y: g.curve.hi.map(tidy),
        line: { width: 0, color },
        fill: "tonexty",
        fillcolor: translucent(color, 0.2),
        showlegend: false,
        hoverinfo: "skip",
      },
      {
        type: "scatter",
        mode: x.length <= 50 ? "lines+markers" : "lines",
        name: g.name,
        x,
        y: g.curve.median.map(tidy),
        line: { color },
        customdata: g.curve.lo.map((lo, k) => [tidy(lo), tidy(g.curve.hi[k]), g.curve.n[k]]),
        hovertemplate:
          `step %{x}: median %{y:.3f} (${g.curve.band} %{customdata[0]:.3f} to %{customdata[1]:.3f}, ` +
          `n=%{customdata[2]})<extra>${g.name}</extra>`,
      },
    );
  });
  const fig = lineChart([], {
    title: `Validation Dice, ${formatFraction(labelFraction)} labels (median over seeds, band: ${bandText} over seeds)`,
    xTitle: "step",
    yTitle: "validation Dice",
  });
  fig.data = data;
  fig.layout.showlegend = true;
  return fig;
}

/** Whether the Dice-vs-cases figure's error bars are t intervals or min-max ranges. */
export type CasesErrorBars = "t95" | "min-max";

/**
 * Test mean Dice against the number of labelled training cases, one line per (model, init): mean over seeds with
 * error bars of a Student t 95 % interval of the mean (default) or the min-max over seeds. Points with one seed (or
 * identical values) carry no bar. The label fraction and seed count are in the hover text.
 */
export function diceVsLabelledCasesFigure(results: readonly RunResult[], bars: CasesErrorBars = "t95"): Figure {
  const varying = varyingFields(results, ["model", "init"]);
  const data: PlotTrace[] = groupBy(results, ["model", "init"]).map((g, i) => {
    const points = groupBy(g.runs, ["labelFraction"])
      .map((f) => {
        const dice = f.runs.map((r) => r.test.meanDice).filter((v) => Number.isFinite(v));
        const cases = distinct(f.runs.flatMap((r) => (r.labelledCases ? [r.labelledCases.length] : []))).sort(
          (x, y) => x - y,
        );
        const m = mean(dice);
        let lo = m,
          hi = m;
        if (bars === "min-max" && dice.length) {
          lo = Math.min(...dice);
          hi = Math.max(...dice);
        } else if (bars === "t95") {
          const ci = tCI(dice);
          if (ci.undefinedReason === undefined && Number.isFinite(ci.lo) && Number.isFinite(ci.hi)) {
            lo = ci.lo;
            hi = ci.hi;
          }
        }
        return {
          x: cases.length ? median(cases) : NaN,
          fraction: f.values.labelFraction as number,
          n: dice.length,
          m,
          lo,
          hi,
          cases,
        };
      })
      .sort((p, q) => p.x - q.x || p.fraction - q.fraction);
    const color = ARM_COLORS[i % ARM_COLORS.length];
    return {
      type: "scatter",
      mode: "lines+markers",
      name: groupName(g.values, varying),
      x: points.map((p) => tidy(p.x)),
      y: points.map((p) => tidy(p.m)),
      line: { color },
      error_y: {
        type: "data",
        symmetric: false,
        array: points.map((p) => tidy(Math.max(0, p.hi - p.m)) ?? 0),
        arrayminus: points.map((p) => tidy(Math.max(0, p.m - p.lo)) ?? 0),
        visible: true,
      },
      text: points.map(
        (p) =>
          `${formatFraction(p.fraction)} labels, ${p.cases.length ? p.cases.join("/") : "unrecorded"} labelled ${p.x === 1 ? "case" : "cases"}, ` +
          `n=${p.n} ${p.n === 1 ? "seed" : "seeds"}`,
      ),
      hovertemplate: "%{text}<br>mean test Dice %{y:.3f}<extra>%{fullData.name}</extra>",
    };
  });
  const fig = lineChart([], {
    title:
      "Test mean Dice vs labelled training cases (mean over seeds; bars: " +
      (bars === "t95" ? "Student t 95 % interval of the mean)" : "min-max over seeds)"),
    xTitle: "labelled training cases",
    yTitle: "test mean Dice",
  });
  fig.data = data;
  fig.layout.showlegend = true;
  const most = Math.max(0, ...results.flatMap((r) => (r.labelledCases ? [r.labelledCases.length] : [])));
  fig.layout.xaxis = { ...fig.layout.xaxis, rangemode: "tozero", ...(most <= 12 ? { dtick: 1 } : {}) };
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
