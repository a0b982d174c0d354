import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as vm from "vm";
import { plotlyBundle, inlineSafe } from "../../src/plots/plotly";
import { RunResult, cellKey, expandGrid } from "../../src/study/grid";
import {
  compareInits,
  comparisonHeaders,
  comparisonTableRows,
  convergenceRatios,
  convergenceTable,
  formatP,
  meanCurve,
  organTable,
  studyTable,
  toCsv,
  toHtmlTable,
  toMarkdown,
  writeHtmlReport,
} from "../../src/study/report";
import { fakeResult } from "./fixtures";

/** A hand-made result: test Dice / HD95 as given, two organs around the mean, a curve reaching `dice` at step 400. */
function run(init: string, labelFraction: number, seed: number, dice: number, hd95 = 10): RunResult {
  const c = { init, model: "nnformer", labelFraction, seed };
  return {
    key: cellKey(c),
    ...c,
    backend: "test",
    wallTimeS: 60,
    steps: 400,
    curve: [100, 200, 300, 400].map((step) => ({ step, valDice: (dice * step) / 400, trainLoss: 1 - step / 1000 })),
    test: {
      perClassDice: { spleen: dice - 0.05, liver: dice + 0.05 },
      perClassHd95: { spleen: hd95 + 1, liver: hd95 - 1 },
      meanDice: dice,
      meanHd95: hd95,
    },
  };
}

const HAND = [
  run("mae", 0.5, 1, 0.8, 10),
  run("mae", 0.5, 2, 0.82, 12),
  run("mae", 0.5, 3, 0.84, 14),
  run("scratch", 0.5, 1, 0.7, 20),
  run("scratch", 0.5, 2, 0.72, 20),
  run("scratch", 0.5, 3, 0.71, 20),
  run("mae", 0.1, 1, 0.6),
  run("mae", 0.1, 2, 0.62),
  run("scratch", 0.1, 1, 0.5),
];

describe("study/report", () => {
  it("studyTable: mean ± std over seeds, n and CI per group, ordered by init then fraction", () => {
    const rows = studyTable(HAND, { by: ["init", "labelFraction"] });
    assert.deepEqual(
      rows.map((r) => [r.init, r.labelFraction, r.n]),
      [
        ["mae", 0.1, 2],
        ["mae", 0.5, 3],
        ["scratch", 0.1, 1],
        ["scratch", 0.5, 3],
      ],
    );
    const r = rows[1];
    assert.ok(Math.abs(r.dice.mean - 0.82) < 1e-12 && Math.abs(r.dice.std - 0.02) < 1e-12);
    // the t interval by default: 0.82 ± t(0.975, 2) · 0.02 / √3
    const half = (4.302652729749752 * 0.02) / Math.sqrt(3);
    assert.ok(Math.abs(r.diceCi.lo - (0.82 - half)) < 1e-9 && Math.abs(r.diceCi.hi - (0.82 + half)) < 1e-9);
    // the percentile bootstrap on request stays inside the values
    const boot = studyTable(HAND, { by: ["init", "labelFraction"], interval: "bootstrap-percentile" })[1];
    assert.ok(boot.diceCi.lo >= 0.8 && boot.diceCi.hi <= 0.84 && boot.diceCi.lo < 0.82 && boot.diceCi.hi > 0.82);
    assert.deepEqual(studyTable(HAND, { by: ["init", "labelFraction"] }), rows); // deterministic

    const md = toMarkdown(rows);
    const lines = md.trim().split("\n");
    assert.equal(
      lines[0],
      "| init | labels | n | Dice (mean ± std) | Dice 95% CI | HD95 mm (mean ± std) | HD95 95% CI | " +
        "organs over runs × test cases | HD95 mm of found organs (undefined) |",
    );
    assert.equal(lines[1], "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |");
    assert.ok(lines[3].startsWith("| mae | 50% | 3 | 0.820 ± 0.020 | ["), lines[3]);
    assert.ok(lines[3].includes("| 12.00 ± 2.00 |"), lines[3]);
    // one run: no std and no interval (never a zero-width one); hand-made results carry no organ counts
    assert.ok(
      lines[4].startsWith("| scratch | 10% | 1 | 0.500 | n/a (n = 1) | 10.00 | n/a (n = 1) | – | – |"),
      lines[4],
    );
    assert.ok(toMarkdown(rows, { digits: 2 }).includes("| 0.82 ± 0.02 |"));

    const csv = toCsv(rows).trim().split("\n");
    assert.equal(
      csv[0],
      "init,labelFraction,n,dice_mean,dice_std,dice_n,diceCi_lo,diceCi_hi,hd95_mean,hd95_std,hd95_n,hd95Ci_lo,hd95Ci_hi,organs,hd95Found",
    );
    const f = csv[2].split(",");
    assert.deepEqual(f.slice(0, 3), ["mae", "0.5", "3"]);
    assert.ok(Math.abs(Number(f[3]) - 0.82) < 1e-12 && f[5] === "3");
    assert.equal(csv[3].split(",")[4], ""); // std of one run is empty, not "NaN"
  });

  it("toCsv and toMarkdown escape their separators", () => {
    const rows = [{ name: 'a,"b"', note: "x|y", v: NaN }];
    assert.equal(toCsv(rows), 'name,note,v\n"a,""b""",x|y,\n');
    assert.equal(toMarkdown(rows).split("\n")[2], '| a,"b" | x\\|y | – |');
    assert.ok(toHtmlTable([{ name: "<b>" }]).includes("<td>&lt;b&gt;</td>"));
    assert.equal(formatP(0.0625), "0.0625");
    assert.equal(formatP(0.000012), "<0.0001");
  });

  it("organTable: Table II layout — grouping fields, n, mean, one column per organ", () => {
    const rows = organTable(
      HAND.filter((r) => r.labelFraction === 0.5),
      { by: ["init"] },
    );
    assert.deepEqual(Object.keys(rows[0]), ["init", "n", "meanDice", "spleen", "liver"]);
    assert.ok(
      Math.abs((rows[0].spleen as number) - 0.77) < 1e-12 && Math.abs((rows[0].liver as number) - 0.87) < 1e-12,
    );
    const md = toMarkdown(rows).split("\n");
    assert.equal(md[0], "| init | n | mean Dice | spleen | liver |");
    assert.equal(md[2], "| mae | 3 | 0.820 | 0.770 | 0.870 |");
    const hd = organTable(
      HAND.filter((r) => r.labelFraction === 0.5),
      { by: ["init"], metric: "hd95" },
    );
    assert.equal(toMarkdown(hd, { digits: 2 }).split("\n")[2], "| mae | 3 | 12.00 | 13.00 | 11.00 |");
  });

  it("paired comparison: verdicts are honest both ways", () => {
    // n = 3: even a consistent gap cannot reach p < 0.05 (smallest possible p = 2/8)
    const small = compareInits(HAND, { a: "mae", b: "scratch", names: { mae: "MAE" } });
    const at50 = small.find((r) => r.labelFraction === 0.5)!;
    assert.equal(at50.n, 3);
    assert.ok(Math.abs(at50.diff - (0.82 - 0.71)) < 1e-12);
    assert.equal(at50.pPermutation, 0.25);
    assert.equal(at50.minP, 0.25);
    // Holm over the two fractions (floors 0.25 and 1) doubles the smallest: no p (Holm) below 0.5 is possible
    assert.equal(at50.pFloor, 0.5);
    assert.match(
      at50.verdict,
      /^no significant difference at n=3 \(with 3 pairs and Holm's correction over the fractions, p \(Holm\) cannot go below 0\.5; MAE ahead by 0\.110 Dice/,
    );
    const raw = compareInits(HAND, { a: "mae", b: "scratch", names: { mae: "MAE" }, adjust: "none" });
    assert.match(raw.find((r) => r.labelFraction === 0.5)!.verdict, /\(with 3 pairs p cannot go below 0\.25;/);
    const at10 = small.find((r) => r.labelFraction === 0.1)!;
    assert.equal(at10.n, 1);
    assert.equal(at10.unmatched, 1); // mae seed 2 has no scratch partner

    // six seeds, one fraction: every pair favours MAE -> p = 2/64
    const six: RunResult[] = [];
    for (let s = 1; s <= 6; s++)
      six.push(run("mae", 0.25, s, 0.8 + 0.01 * s), run("scratch", 0.25, s, 0.75 + 0.011 * s));
    const better = compareInits(six, { a: "mae", b: "scratch", names: { mae: "MAE" } });
    assert.equal(better[0].pPermutation, 2 / 64);
    assert.match(better[0].verdict, /^MAE better by 0\.\d{3} Dice \(p = 0\.0313, n = 6\)$/);
    const flipped = six.map((r) => ({ ...r, init: r.init === "mae" ? "scratch" : "mae" }));
    assert.match(compareInits(flipped, { a: "mae", b: "scratch" })[0].verdict, /^scratch better/);
    // HD95: lower is better
    const hd = six.map((r) => ({ ...r, test: { ...r.test, meanHd95: r.init === "mae" ? 5 + r.seed : 8 + r.seed } }));
    assert.match(
      compareInits(hd, { a: "mae", b: "scratch", metric: "hd95" })[0].verdict,
      /^mae better by 3\.00 mm HD95/,
    );
    // mixed signs: no significant difference, with the p
    const mixed = six.map((r) =>
      r.init === "mae" && r.seed % 2 === 0 ? { ...r, test: { ...r.test, meanDice: 0.7 } } : r,
    );
    assert.match(
      compareInits(mixed, { a: "mae", b: "scratch" })[0].verdict,
      /^no significant difference at n=6 \(p = /,
    );

    const md = toMarkdown(comparisonTableRows(better), {
      headers: comparisonHeaders("mae", "scratch", { mae: "MAE" }),
    });
    assert.ok(
      md.startsWith(
        "| model | labels | n | MAE | scratch | MAE − scratch | 95% CI of MAE − scratch | detectable difference (80% power) | p (permutation) |",
      ),
      md,
    );
    assert.ok(md.includes("| 0.0313 |"));
  });

  it("convergence: median steps to a level and the ratio between inits", () => {
    const runs = [
      run("mae", 0.5, 1, 0.8),
      run("mae", 0.5, 2, 0.8),
      {
        ...run("scratch", 0.5, 1, 0.8),
        curve: [
          { step: 200, valDice: 0.3, trainLoss: 1 },
          { step: 800, valDice: 0.6, trainLoss: 1 },
        ],
      },
      { ...run("scratch", 0.5, 2, 0.8), curve: [{ step: 600, valDice: 0.55, trainLoss: 1 }] },
    ];
    // mae: valDice = 0.8 * step / 400 -> reaches 0.5 at 300 (0.6), 0.7 at 400 (0.8)
    const rows = convergenceTable(runs, { levels: [0.5, 0.7], by: ["init"] });
    assert.deepEqual(
      rows.map((r) => [r.init, r.level, r.reached, r.medianSteps]),
      [
        ["mae", 0.5, 2, 300],
        ["mae", 0.7, 2, 400],
        ["scratch", 0.5, 2, 700],
        ["scratch", 0.7, 0, null],
      ],
    );
    const ratios = convergenceRatios(runs, { a: "mae", b: "scratch", levels: [0.5, 0.7] });
    assert.ok(Math.abs(ratios[0].ratio! - 700 / 300) < 1e-12);
    assert.equal(ratios[1].ratio, null);
    const md = toMarkdown(ratios).split("\n");
    assert.ok(md[2].endsWith("| 300 | 700 | 2.33 |"), md[2]);
    assert.ok(md[3].endsWith("| 400 | not reached | – |"), md[3]);
    const mc = meanCurve(runs.filter((r) => r.init === "scratch"));
    assert.deepEqual(mc.step, [200, 600, 800]);
    assert.deepEqual(mc.n, [1, 1, 1]);
  });

  it("writes a self-contained HTML report: plotly once, every figure, the tables", () => {
    const results = expandGrid({
      inits: ["mae", "scratch"],
      models: ["nnformer"],
      labelFractions: [0.1, 0.5],
      seeds: [1, 2, 3],
    }).map(fakeResult);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "study-report-"));
    const file = path.join(dir, "report.html");
    assert.equal(writeHtmlReport(file, results, { title: "MAE <vs> scratch" }), file);
    assert.deepEqual(fs.readdirSync(dir), ["report.html"]); // no temporary file left behind
    const html = fs.readFileSync(file, "utf8");
    assert.ok(html.startsWith("<!DOCTYPE html>") && html.includes("<title>MAE &lt;vs&gt; scratch</title>"));
    // the bundle is inlined exactly once
    const bundle = inlineSafe(plotlyBundle());
    const probe = bundle.slice(Math.floor(bundle.length / 2), Math.floor(bundle.length / 2) + 200);
    assert.equal(html.split(probe).length - 1, 1);
    assert.ok(html.length < bundle.length + 400_000, `report is ${html.length} chars`);
    // Dice vs labelled cases + Dice vs fraction + (curves + organ bars) per fraction; no example figure was given
    assert.equal((html.match(/class="kit-plotly"/g) ?? []).length, 2 + 2 * 2);
    assert.ok(html.includes("No example segmentations were drawn for this report."));
    assert.ok(html.includes("error_y"));
    // the tables
    const study = studyTable(results);
    const cell = `${study[0].dice.mean.toFixed(3)} ± ${study[0].dice.std.toFixed(3)}`;
    assert.ok(html.includes(`<td class="num">${cell}</td>`), cell);
    assert.ok(html.includes("no significant difference at n=3"));
    assert.ok(html.includes("<th>kidney_r</th>"));
    // every inline script still parses
    const scripts = [...html.matchAll(/<script type="text\/javascript">([\s\S]*?)<\/script>/g)].map((m) => m[1]);
    assert.equal(scripts.length, 1 + 6);
    for (const s of scripts.slice(1)) new vm.Script(s);
  });
});
