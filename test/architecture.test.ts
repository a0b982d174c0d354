import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { LAYERS, findViolations } from "../scripts/lint/dependency_order";

describe("architecture: dependency order", () => {
  it("finds upward imports (also type-only, re-exports and folder imports) and files in no layer", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "deporder-"));
    try {
      const write = (rel: string, text: string) => {
        fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
        fs.writeFileSync(path.join(root, rel), text);
      };
      write("runtime/files.ts", 'import { x } from "../data/volume";\nexport const f = x;\n'); // upward
      write("data/volume.ts", 'import { f } from "../runtime/files";\nexport const x = 1;\n'); // downward: fine
      write("data/phantom.ts", 'import type { M } from "../models/net";\nexport type P = M;\n'); // upward, type only
      write("models/net.ts", 'export type M = number;\nexport * from "../study/report";\n'); // upward re-export
      write("study/report/index.ts", 'import { x } from "../../data/volume";\nexport const r = x;\n');
      write("metrics/dice.ts", 'import * as tf from "@tensorflow/tfjs";\nexport const d = tf;\n'); // package: fine
      write("extras/thing.ts", "export const t = 1;\n"); // in no layer
      const v = findViolations(root, LAYERS);
      assert.deepEqual(
        v.map((x) => [x.from, x.to, x.line]),
        [
          ["data/phantom.ts", "models/net.ts", 1],
          ["extras/thing.ts", undefined, 1],
          ["models/net.ts", "study/report/index.ts", 2],
          ["runtime/files.ts", "data/volume.ts", 1],
        ],
      );
      assert.match(
        v[3].message,
        /runtime\/files\.ts:1 imports data\/volume\.ts: runtime may not import data \(upward\)/,
      );
      assert.match(v[1].message, /extras\/thing\.ts is in no layer/);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  const order = LAYERS.map((l) => l.name).join(" < ");
  it(`src/ has no import that runs upward (${order})`, () => {
    const v = findViolations(path.join(__dirname, "..", "src"));
    assert.equal(v.length, 0, `${v.length} upward import(s):\n  ${v.map((x) => x.message).join("\n  ")}`);
  });
});
