// The study report as one self-contained HTML page: every table and figure of the other report files, in order.
import { Figure, figureToHtml, plotlyLoaderHtml } from "../../plots/plotly";
import { writeFileAtomic } from "../../runtime/files";
import { RunResult } from "../grid";
import { compareInits, comparisonHeaders, comparisonTableRows } from "./compare";
import { convergenceRatios, convergenceTable, sharedLevelConvergence } from "./convergence";
import { diceVsFractionFigure, diceVsLabelledCasesFigure, organBarsFigure, validationCurvesFigure } from "./figures";
import { MethodsOptions, methodsSentences } from "./methods";
import { powerNote } from "./power";
import { escHtml, formatFraction, toHtmlTable } from "./format";
import { distinct } from "./groups";
import { detectionTable, organTable, studyTable } from "./tables";
import { studyNotes } from "./notes";

export interface HtmlReportOptions {
  title?: string;
  /** The initialisation under test and its baseline; default "mae" and "scratch" when present, else the first two inits. */
  a?: string;
  b?: string;
  /** Display names of inits in verdicts, e.g. {mae: "MAE"}. */
  names?: Record<string, string>;
  /** Validation Dice levels of the convergence table; default [0.5, 0.7]. */
  levels?: number[];
  alpha?: number;
  /** Seed of every bootstrap and Monte Carlo test in the report; default 0. */
  seed?: number;
  /** What the methods paragraph needs beyond the results (the MAE checkpoint given, the study's pretraining). */
  methods?: MethodsOptions;
  /** Example segmentations drawn by the study (examples.ts), or the sentence saying why there are none. */
  examples?: { figure?: Figure; note: string };
}

function pickPair(results: readonly RunResult[], options: HtmlReportOptions): { a: string; b: string } | undefined {
  const inits = distinct(results.map((r) => r.init));
  if (options.a !== undefined && options.b !== undefined) return { a: options.a, b: options.b };
  if (inits.includes("mae") && inits.includes("scratch")) return { a: "mae", b: "scratch" };
  return inits.length >= 2 ? { a: inits[0], b: inits[1] } : undefined;
}

/** The whole report as one self-contained HTML page (plotly inlined once). */
export function htmlReport(results: readonly RunResult[], options: HtmlReportOptions = {}): string {
  const title = options.title ?? "Study report";
  const fractions = distinct(results.map((r) => r.labelFraction)).sort((x, y) => x - y);
  const seeds = distinct(results.map((r) => r.seed)).sort((x, y) => x - y);
  const hours = results.reduce((s, r) => s + r.wallTimeS, 0) / 3600;
  const parts: string[] = [];
  const h2 = (t: string) => parts.push(`<h2>${escHtml(t)}</h2>`);
  const fig = (f: Figure) => parts.push(`<div class="fig">${figureToHtml(f)}</div>`);
  const para = (t: string) => parts.push(`<p>${escHtml(t)}</p>`);

  if (results.length) {
    h2("Methods");
    para(methodsSentences(results, options.methods).join(" "));
  }
  para(
    `${results.length} runs: models ${distinct(results.map((r) => r.model)).join(", ")}; inits ` +
      `${distinct(results.map((r) => r.init)).join(", ")}; label fractions ${fractions.map(formatFraction).join(", ")}; ` +
      `seeds ${seeds.join(", ")}; backends ${distinct(results.map((r) => r.backend)).join(", ")}; ` +
      `${hours.toFixed(2)} h of training in total.`,
  );
  if (results.length === 0) {
    para("No results yet.");
  } else {
    h2("Test Dice and HD95 by label fraction");
    fig(diceVsLabelledCasesFigure(results));
    fig(diceVsFractionFigure(results));
    parts.push(toHtmlTable(studyTable(results, { seed: options.seed, alpha: options.alpha })));
    para("Mean ± sample std over seeds of each run's test mean Dice / HD95.");
    const pairForNotes = pickPair(results, options);
    parts.push(
      `<ul>\n${studyNotes(results, { a: pairForNotes?.a, b: pairForNotes?.b })
        .map((n) => `<li>${escHtml(n)}</li>`)
        .join("\n")}\n</ul>`,
    );

    const pair = pickPair(results, options);
    if (pair !== undefined) {
      h2(`Paired comparison: ${options.names?.[pair.a] ?? pair.a} vs ${options.names?.[pair.b] ?? pair.b}`);
      const rows = compareInits(results, { ...pair, names: options.names, alpha: options.alpha, seed: options.seed });
      parts.push(toHtmlTable(comparisonTableRows(rows), { headers: comparisonHeaders(pair.a, pair.b, options.names) }));
      para(
        "Pairs: runs with the same model, label fraction and seed. p (permutation): exact two-sided sign-flip test of " +
          "the mean difference; p (Wilcoxon): exact two-sided signed-rank test; p (Holm): the permutation p corrected " +
          "for testing every fraction of a model; smallest possible p (Holm): the floor of p (Holm) with these pairs. " +
          `The verdict uses p (Holm) at alpha = ${options.alpha ?? 0.05}.`,
      );
      const power = powerNote(rows, { ...pair, names: options.names, alpha: options.alpha });
      if (power) para(power);

      h2("Convergence");
      const ratios = convergenceRatios(results, { ...pair, levels: options.levels });
      parts.push(toHtmlTable(ratios, { headers: comparisonHeaders(pair.a, pair.b, options.names) }));
      const shared = sharedLevelConvergence(results, pair);
      if (shared.length) {
        para(
          "Levels both arms reach: a share of the lower arm's best median validation Dice at each fraction (rounded " +
            "down), so neither arm is judged on a level only the other reaches; steps are the median over seeds of " +
            "the first step at the level.",
        );
        parts.push(toHtmlTable(shared, { headers: comparisonHeaders(pair.a, pair.b, options.names) }));
      }
    } else {
      h2("Convergence");
    }
    parts.push(toHtmlTable(convergenceTable(results, { levels: options.levels })));
    para(
      "Steps until the validation Dice first reaches the level; the median counts runs that never reach it as " +
        "infinitely slow, so it reads 'not reached' when half or more never got there.",
    );

    h2("Validation curves");
    for (const f of fractions) fig(validationCurvesFigure(results, f));

    h2("Example segmentations");
    if (options.examples?.figure) fig(options.examples.figure);
    para(options.examples?.note ?? "No example segmentations were drawn for this report.");

    h2("Per organ");
    for (const f of fractions) fig(organBarsFigure(results, f));
    parts.push(toHtmlTable(organTable(results)));
    parts.push(toHtmlTable(organTable(results, { metric: "hd95" }), { digits: 2 }));
    para("Organs found per row (found / present over the runs' test cases, + false positives):");
    parts.push(toHtmlTable(detectionTable(results)));
  }

  const css =
    "body{font-family:sans-serif;margin:24px;max-width:1100px}table{border-collapse:collapse;margin:12px 0}" +
    "th,td{border:1px solid #ccc;padding:3px 8px;font-size:13px}td.num{text-align:right;font-variant-numeric:tabular-nums}" +
    "th{background:#f3f3f3}.fig{margin:12px 0}";
  return (
    `<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>${escHtml(title)}</title>\n` +
    `<style>${css}</style>\n</head>\n<body>\n<h1>${escHtml(title)}</h1>\n${plotlyLoaderHtml()}\n${parts.join("\n")}\n` +
    `</body>\n</html>\n`
  );
}

/** Writes htmlReport(results, options) to `file` atomically (about 5 MB: plotly is inlined). Returns the path. */
export function writeHtmlReport(file: string, results: readonly RunResult[], options: HtmlReportOptions = {}): string {
  writeFileAtomic(file, htmlReport(results, options));
  return file;
}
