// The committed notebooks carry the outputs of `npm run nb:render` (scripts/nb_render.py). This checks, without
// executing anything, that each one was rendered from the code it holds now (the hash of its code cells recorded at
// render time), that it has outputs with figures and no stderr blocks, that its answers are collapsed, that the files
// it cites exist, and that its HTML copy under docs/notebooks/ loads nothing from the network.
import { strict as assert } from "assert";
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";

const ROOT = path.resolve(__dirname, "..");
const NB_DIR = path.join(ROOT, "notebooks");
const HTML_DIR = path.join(ROOT, "docs", "notebooks");

interface Cell {
  cell_type: string;
  source: string | string[];
  metadata: Record<string, any>;
  outputs?: Array<Record<string, any>>;
}
interface Notebook {
  cells: Cell[];
  metadata: Record<string, any>;
}

const text = (s: string | string[]): string => (Array.isArray(s) ? s.join("") : s);

/** sha256 of the code cells' sources joined by NUL (scripts/nb_render.py computes the same). */
function codeHash(nb: Notebook): string {
  const sources = nb.cells.filter((c) => c.cell_type === "code").map((c) => text(c.source));
  return createHash("sha256").update(sources.join("\0"), "utf8").digest("hex");
}

/** Repository paths a notebook's prose cites (`docs/x.md`, `src/a/b.ts`, ...), without a section suffix. */
function citedPaths(nb: Notebook): string[] {
  const re = /\b((?:docs|src|data-manifests|scripts|notebooks|test|jupyter)\/[A-Za-z0-9_./-]*[A-Za-z0-9_])/g;
  const out = new Set<string>();
  for (const c of nb.cells) {
    if (c.cell_type !== "markdown") continue;
    for (const m of text(c.source).matchAll(re)) out.add(m[1]);
  }
  return [...out];
}

/** Everything wrong with one committed notebook, as messages that say what to do. */
function notebookProblems(nb: Notebook, name: string): string[] {
  const problems: string[] = [];
  const rerender = `run \`npm run nb:render -- notebooks/${name}\``;
  const record = nb.metadata.kit_render;
  if (record === undefined)
    problems.push(`${name}: no kit_render record in its metadata (never rendered); ${rerender}`);
  else if (record.code_sha256 !== codeHash(nb))
    problems.push(`${name}: its code cells differ from the ones rendered (kit_render.code_sha256); ${rerender}`);
  const code = nb.cells.filter((c) => c.cell_type === "code");
  const outputs = code.flatMap((c) => c.outputs ?? []);
  if (outputs.length === 0) problems.push(`${name}: no outputs; ${rerender}`);
  if (!outputs.some((o) => o.data?.["image/png"] !== undefined)) problems.push(`${name}: no figure among its outputs`);
  if (outputs.some((o) => o.output_type === "stream" && o.name === "stderr"))
    problems.push(`${name}: an output is a stderr block; progress and logs belong on one stdout line`);
  if (outputs.some((o) => o.output_type === "error")) problems.push(`${name}: an output is an error; ${rerender}`);
  const params = code.filter((c) => text(c.source).includes("process.env.KIT_SIZE"));
  if (params.length !== 1)
    problems.push(`${name}: ${params.length} cells read KIT_SIZE; the size is picked in one cell`);
  const answers = nb.cells.filter((c) => c.metadata?.jupyter?.source_hidden === true && /Answers/.test(text(c.source)));
  if (answers.length === 0) problems.push(`${name}: no collapsed answers cell (metadata jupyter.source_hidden)`);
  for (const p of citedPaths(nb)) {
    if (!fs.existsSync(path.join(ROOT, p))) problems.push(`${name}: cites ${p}, which is not in the repository`);
  }
  return problems;
}

const notebooks = fs
  .readdirSync(NB_DIR)
  .filter((f) => f.endsWith(".ipynb"))
  .sort();

const read = (f: string): Notebook => JSON.parse(fs.readFileSync(path.join(NB_DIR, f), "utf8"));

describe("notebooks: committed with rendered outputs", () => {
  it("finds the notebooks", () => {
    assert.ok(notebooks.length >= 6, `expected the six lessons in notebooks/, found ${notebooks.join(", ")}`);
  });

  for (const f of notebooks) {
    it(`${f}: rendered from its current code, with figures, collapsed answers, existing citations`, () => {
      assert.deepEqual(notebookProblems(read(f), f), []);
    });

    it(`${f}: an HTML copy under docs/notebooks/ that loads nothing from the network`, () => {
      const html = path.join(HTML_DIR, f.replace(/\.ipynb$/, ".html"));
      assert.ok(fs.existsSync(html), `${html} is missing; run \`npm run nb:render -- notebooks/${f}\``);
      const body = fs.readFileSync(html, "utf8");
      assert.doesNotMatch(body, /<script[^>]*src="https?:/, `${html} loads a script from the network`);
      assert.match(body, /data:image\/png;base64,/, `${html} has no embedded figure`);
    });
  }

  it("keeps the committed outputs small (a few MB in all)", () => {
    const files = [
      ...notebooks.map((f) => path.join(NB_DIR, f)),
      ...fs.readdirSync(HTML_DIR).map((f) => path.join(HTML_DIR, f)),
    ];
    const total = files.reduce((s, f) => s + fs.statSync(f).size, 0);
    assert.ok(total < 8e6, `notebooks and their HTML copies take ${(total / 1e6).toFixed(1)} MB`);
  });

  it("the checks fail on an edited code cell, missing outputs, stderr blocks and a missing citation", () => {
    const f = notebooks[0];
    assert.deepEqual(notebookProblems(read(f), f), []);
    const edited = read(f);
    const cell = edited.cells.find((c) => c.cell_type === "code")!;
    cell.source = text(cell.source) + "\n// edited";
    assert.match(notebookProblems(edited, f).join("\n"), /code cells differ/);
    const cleared = read(f);
    for (const c of cleared.cells) if (c.cell_type === "code") c.outputs = [];
    assert.match(notebookProblems(cleared, f).join("\n"), /no outputs/);
    const noisy = read(f);
    noisy.cells
      .find((c) => (c.outputs ?? []).length > 0)!
      .outputs!.push({
        output_type: "stream",
        name: "stderr",
        text: "50%|#####     |",
      });
    assert.match(notebookProblems(noisy, f).join("\n"), /stderr block/);
    const citing = read(f);
    citing.cells.push({ cell_type: "markdown", source: "see `docs/no_such_note.md` §2", metadata: {} });
    assert.match(notebookProblems(citing, f).join("\n"), /cites docs\/no_such_note\.md/);
  });
});
