import { strict as assert } from "assert";
import { blockDiagram, capSteps, mapGrid, progressLine, windowIdMap } from "../../src/plots/lessons";

describe("plots/lessons", () => {
  it("windowIdMap: plain windows tile the slice row by row", () => {
    const z = windowIdMap([4, 4], [2, 2]);
    assert.deepEqual(z, [
      [0, 0, 1, 1],
      [0, 0, 1, 1],
      [2, 2, 3, 3],
      [2, 2, 3, 3],
    ]);
  });

  it("windowIdMap: a shift moves every border by the shift and wraps the last windows around", () => {
    const z = windowIdMap([4, 4], [2, 2], [1, 1]);
    // token (1,1) is first in window 0 after rolling the grid by -1; row/column 0 wrap to the last windows
    assert.deepEqual(z, [
      [3, 2, 2, 3],
      [1, 0, 0, 1],
      [1, 0, 0, 1],
      [3, 2, 2, 3],
    ]);
    assert.throws(() => windowIdMap([5, 4], [2, 2]), /not a multiple of window 2,2/);
    assert.throws(() => windowIdMap([4, 4], [0, 2]), /window must be positive integers/);
  });

  it("mapGrid: one heatmap per panel on its own axes, titles as annotations", () => {
    const fig = mapGrid([
      { title: "a", z: windowIdMap([4, 4], [2, 2]) },
      { title: "b", z: windowIdMap([4, 4], [2, 2], [1, 1]) },
    ]);
    assert.equal(fig.data.length, 2);
    assert.deepEqual(
      fig.data.map((t) => [t.xaxis, t.yaxis]),
      [
        ["x", "y"],
        ["x2", "y2"],
      ],
    );
    assert.deepEqual(
      fig.layout.annotations.map((a: { text: string }) => a.text),
      ["a", "b"],
    );
    assert.throws(() => mapGrid([]), /at least one panel/);
  });

  it("blockDiagram: a rectangle per box, an arrow per edge, and a clear error for an unknown box", () => {
    const boxes = [
      { id: "a", x: 2, y: 3, w: 2, h: 1, text: "A" },
      { id: "b", x: 8, y: 3, w: 2, h: 1, text: "B" },
    ];
    const fig = blockDiagram(boxes, [{ from: "a", to: "b", text: "K, V" }]);
    assert.equal(fig.layout.shapes.length, 2);
    const arrow = fig.layout.annotations.find((a: { showarrow: boolean }) => a.showarrow);
    assert.deepEqual([arrow.ax, arrow.ay, arrow.x, arrow.y], [3, 3, 7, 3]); // box edge to box edge
    assert.throws(() => blockDiagram(boxes, [{ from: "a", to: "c" }]), /a -> c names a box that does not exist/);
  });

  it("progressLine: outside a kernel, one carriage-return line ended by done()", () => {
    const writes: string[] = [];
    const orig = process.stdout.write.bind(process.stdout);
    (process.stdout as any).write = (s: string) => (writes.push(String(s)), true);
    try {
      const p = progressLine({ intervalMs: 0 });
      p.set("step 1");
      p.log("step 2\nmore");
      p.done("finished");
    } finally {
      (process.stdout as any).write = orig;
    }
    assert.ok(
      writes.every((w) => !w.includes("\n") || w === "\n"),
      JSON.stringify(writes),
    );
    assert.deepEqual(
      writes.filter((w) => w !== "\n").map((w) => w.replace(/\r|\x1b\[K/g, "")),
      ["step 1", "step 2 more", "finished"],
    );
    assert.equal(writes[writes.length - 1], "\n");
  });
});

describe("plots/lessons: capSteps", () => {
  it("caps pretraining and fine-tuning budgets in place, and leaves them alone for cap 0", () => {
    const p = { pretrain: { steps: 400, evalEvery: 200 }, finetune: { steps: 300, evalEvery: 50 }, name: "quick" };
    assert.deepEqual(capSteps(JSON.parse(JSON.stringify(p)), 0), p);
    const c = capSteps(JSON.parse(JSON.stringify(p)), 3);
    assert.deepEqual(
      [c.pretrain, c.finetune, c.name],
      [{ steps: 3, evalEvery: 3 }, { steps: 3, evalEvery: 3 }, "quick"],
    );
    assert.throws(() => capSteps(p, 2.5), /whole number of steps, got 2.5/);
  });

  it("caps the per-fraction budgets too", () => {
    const p = {
      pretrain: { steps: 400, evalEvery: 200 },
      finetune: { steps: 250, evalEvery: 50 },
      perFraction: { "1": { seeds: 1, steps: 800 }, "0.5": { seeds: 2 } },
    };
    const c = capSteps(p, 5);
    assert.deepEqual(c.perFraction, { "1": { seeds: 1, steps: 5 }, "0.5": { seeds: 2 } });
  });
});
