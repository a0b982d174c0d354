import { strict as assert } from "assert";
import { barChart, binCounts, histogram, lineChart, liveLineChart } from "../../src/plots/charts";

describe("plots/charts", () => {
  it("lineChart: one scatter trace per series, log y on request, rounded values", () => {
    const fig = lineChart(
      [
        { name: "train", x: [1, 2, 3], y: [1.23456789, 0.5, 0.25] },
        { name: "val", x: [1, 3], y: [1.1, NaN] },
      ],
      { title: "loss", xTitle: "step", yTitle: "loss", logY: true },
    );
    assert.deepEqual(
      fig.data.map((t) => [t.type, t.name]),
      [
        ["scatter", "train"],
        ["scatter", "val"],
      ],
    );
    assert.deepEqual(fig.data[0].y, [1.23457, 0.5, 0.25]);
    assert.deepEqual(fig.data[1].y, [1.1, null]);
    assert.equal(fig.layout.yaxis.type, "log");
    assert.equal(fig.layout.xaxis.title.text, "step");
    assert.equal(fig.layout.title.text, "loss");
    assert.throws(() => lineChart([{ name: "bad", x: [1, 2], y: [1] }]), /"bad" has 2 x values but 1 y values/);
  });

  it("lineChart thins long series but keeps the last point", () => {
    const x = Array.from({ length: 10001 }, (_, i) => i);
    const fig = lineChart([{ name: "s", x, y: x }], { maxPoints: 1000 });
    assert.ok(fig.data[0].x.length <= 1002);
    assert.equal(fig.data[0].x[fig.data[0].x.length - 1], 10000);
  });

  it("liveLineChart collects points per series and renders with one fixed div id", () => {
    const live = liveLineChart({ title: "loss", every: 5 });
    for (let i = 0; i < 12; i++) {
      live.push("train", i, 1 / (i + 1));
      if (i % 4 === 0) live.push("val", i, 2 / (i + 1));
    }
    const fig = live.figure();
    assert.deepEqual(
      fig.data.map((t) => [t.name, t.x.length]),
      [
        ["train", 12],
        ["val", 3],
      ],
    );
    const id = (h: string) => /<div id="([^"]+)"/.exec(h)![1];
    const a = live.html(),
      b = live.flush();
    assert.ok(typeof b === "string", "outside a kernel flush returns the HTML");
    assert.equal(id(a), id(b!));
  });

  it("barChart: grouped bars with error bars", () => {
    const fig = barChart(
      [
        { name: "UNETR", categories: ["liver", "spleen"], values: [0.9, 0.8], errors: [0.02, 0.05] },
        { name: "nnFormer", categories: ["liver", "spleen"], values: [0.92, 0.85] },
      ],
      { title: "Dice", yTitle: "Dice" },
    );
    assert.equal(fig.layout.barmode, "group");
    assert.deepEqual(
      fig.data.map((t) => t.type),
      ["bar", "bar"],
    );
    assert.deepEqual(fig.data[0].error_y, { type: "data", array: [0.02, 0.05], visible: true });
    assert.equal(fig.data[1].error_y, undefined);
    assert.throws(() => barChart([{ name: "x", categories: ["a"], values: [1, 2] }]), /1 categories but 2 values/);
  });

  it("histogram: shared bins, counts computed here, density option", () => {
    const { edges, counts } = binCounts([0, 0.1, 0.5, 0.99, 1, NaN, 2], 2, [0, 1]);
    assert.deepEqual(edges, [0, 0.5, 1]);
    assert.deepEqual(counts, [2, 3]); // 1 falls into the last bin; NaN and 2 are dropped
    const big = Float32Array.from({ length: 100000 }, (_, i) => (i % 100) / 100);
    const fig = histogram(
      [
        { name: "liver", values: big },
        { name: "spleen", values: [0.2, 0.3] },
      ],
      { bins: 10, title: "HU" },
    );
    assert.equal(fig.layout.barmode, "overlay");
    assert.deepEqual(
      fig.data.map((t) => [t.name, t.x.length, t.y.length]),
      [
        ["liver", 10, 10],
        ["spleen", 10, 10],
      ],
    );
    assert.equal(
      fig.data[0].y.reduce((a: number, b: number) => a + b, 0),
      100000,
    );
    assert.deepEqual(fig.data[0].x, fig.data[1].x);
    const dens = histogram([{ name: "a", values: [0, 1, 2, 3] }], { bins: 4, density: true });
    const area = dens.data[0].y.reduce((a: number, b: number) => a + b, 0) * dens.data[0].width;
    assert.ok(Math.abs(area - 1) < 1e-5);
  });
});

describe("plots/charts heatmap", () => {
  it("keeps the matrix, rows downwards and square cells", () => {
    const { heatmap } = require("../../src/plots/charts") as typeof import("../../src/plots/charts");
    const f = heatmap(
      [
        [0, 1],
        [2, 3],
      ],
      { title: "m" },
    );
    require("assert").deepEqual(f.data[0].z, [
      [0, 1],
      [2, 3],
    ]);
    require("assert").equal(f.layout.yaxis.autorange, "reversed");
    require("assert").equal(f.layout.yaxis.scaleanchor, "x");
  });
});
