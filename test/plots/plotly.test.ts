import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as vm from "vm";
import {
  figureHtml,
  inTslabKernel,
  inlineSafe,
  plotlyLoaderHtml,
  saveFigureHtml,
  scriptJson,
  show,
  showHtml,
  updatableDisplay,
} from "../../src/plots/plotly";

describe("plots/plotly", () => {
  it("inlineSafe removes every </script, <script and <!-- while keeping the meaning", () => {
    const js = `var a = "</script>"; var b = '<SCRIPT src=x>'; var c = "<!-- x";`;
    const out = inlineSafe(js);
    assert.ok(!/<\/script/i.test(out) && !/<script/i.test(out) && !out.includes("<!--"), out);
    const vals = new Function(`${out}; return [a, b, c];`)();
    assert.deepEqual(vals, ["</script>", "<SCRIPT src=x>", "<!-- x"]);
  });

  it("the loader inlines plotly with no raw </script inside", () => {
    const html = plotlyLoaderHtml();
    assert.ok(html.length > 1_000_000, `loader only ${html.length} chars`);
    assert.ok(html.includes("Plotly"));
    assert.ok(html.startsWith("<script") && html.endsWith("</script>"));
    const inner = html.slice(html.indexOf(">") + 1, html.length - "</script>".length);
    assert.ok(!/<\/script/i.test(inner), "raw </script inside the loader");
    assert.ok(!/<script/i.test(inner), "raw <script inside the loader");
    new vm.Script(inner); // the escaped bundle still parses as JavaScript
  });

  it("figureHtml escapes </script in the figure JSON and waits for window.Plotly", () => {
    const html = figureHtml(
      [{ type: "bar", x: ["</script><script>alert(1)</script>"], y: [1] }],
      { title: { text: "a<b" } },
      { width: 300, height: 200, id: "fig-1" },
    );
    assert.equal((html.match(/<\/script>/gi) ?? []).length, 1, "only the closing tag of our own script");
    assert.equal((html.match(/<script/gi) ?? []).length, 1);
    assert.ok(html.includes('<div id="fig-1"') && html.includes("width:300px;height:200px"));
    assert.ok(html.includes("window.Plotly") && html.includes("Plotly.react"));
    // the JSON still decodes to the original strings
    assert.equal(JSON.parse(scriptJson("</script>")), "</script>");
  });

  it("figureHtml's script waits for window.Plotly, then calls Plotly.react with the figure", async () => {
    const fig = { data: [{ type: "bar", x: ["</script>"], y: [1] }], layout: { title: { text: "t" } } };
    const html = figureHtml(fig.data, fig.layout, { width: 300, height: 200, id: "f1" });
    const script = html.slice(html.indexOf(">", html.indexOf("<script")) + 1, html.lastIndexOf("</script>"));
    const calls: unknown[][] = [];
    const el = { id: "f1", textContent: "" };
    const window: Record<string, any> = {};
    const sandbox = { window, setTimeout, document: { getElementById: (id: string) => (id === "f1" ? el : null) } };
    vm.runInNewContext(script, sandbox);
    assert.equal(calls.length, 0);
    window.Plotly = { react: (...args: unknown[]) => calls.push(args) };
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(calls.length, 1);
    const [target, data, layout, config] = calls[0] as [unknown, any, any, any];
    assert.equal(target, el);
    const plain = (x: unknown) => JSON.parse(JSON.stringify(x)); // objects from the sandbox have its prototypes
    assert.deepEqual(plain(data), fig.data);
    assert.deepEqual(plain(layout), { title: { text: "t" }, width: 300, height: 200 });
    assert.equal(config.displaylogo, false);
  });

  it("figureHtml sanitises ids and gives fresh ids by default", () => {
    const a = figureHtml([], {}),
      b = figureHtml([], {});
    const id = (h: string) => /<div id="([^"]+)"/.exec(h)![1];
    assert.notEqual(id(a), id(b));
    assert.equal(id(figureHtml([], {}, { id: 'x" onload="y' })), "x__onload__y");
  });

  it("outside a kernel show/showHtml return HTML and do not load tslab", () => {
    assert.equal(inTslabKernel(), false);
    assert.equal(showHtml("<b>x</b>"), "<b>x</b>");
    const html = show({ data: [{ type: "scatter", x: [1], y: [2] }], layout: { width: 320 } });
    assert.ok(typeof html === "string" && html.includes("width:320px"));
    assert.equal(updatableDisplay().update("<i>y</i>"), "<i>y</i>");
    assert.ok(
      !Object.keys(require.cache).some((k) => /[\\/]tslab[\\/]dist[\\/]public\.js$/.test(k)),
      "tslab was loaded",
    );
  });

  it("saveFigureHtml writes a standalone page with plotly inlined", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kit-plots-"));
    try {
      const file = path.join(dir, "sub", "fig.html");
      saveFigureHtml(file, {
        data: [{ type: "scatter", x: [1, 2], y: [3, 4] }],
        layout: { title: { text: "t</title>" } },
      });
      const text = fs.readFileSync(file, "utf8");
      assert.ok(text.startsWith("<!DOCTYPE html>"));
      assert.ok(text.includes("<title>t&lt;/title&gt;</title>"));
      assert.ok(text.includes("Plotly.react") && text.length > 1_000_000);
      assert.deepEqual(fs.readdirSync(path.dirname(file)), ["fig.html"], "no temporary file left behind");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
