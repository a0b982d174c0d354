// The dependency order of src/: each folder (or top-level file) sits in a layer, and a module may import only from
// its own layer or lower ones. `npm test` checks it (test/architecture.test.ts); ARCHITECTURE.md explains the order.
//
// Run it alone with `npx tsx scripts/lint/dependency_order.ts` (exit code 1 and one line per upward import).
import * as fs from "fs";
import * as path from "path";
import * as ts from "typescript";

/** One layer: the folders and top-level files of src/ it holds (paths relative to src/, folders without a slash). */
export interface Layer {
  name: string;
  members: string[];
}

/** Lowest first. Plots draw volumes and charts (data below them, no models); bench measures ops, models, MAE and
 * training; index.ts is the public surface and may re-export anything. */
export const LAYERS: readonly Layer[] = [
  { name: "runtime", members: ["runtime"] },
  { name: "io", members: ["io"] },
  { name: "data", members: ["data"] },
  { name: "plots", members: ["plots"] },
  { name: "layers", members: ["layers"] },
  { name: "models", members: ["models", "registry.ts"] },
  { name: "losses & metrics", members: ["losses", "metrics"] },
  { name: "infer", members: ["infer"] },
  { name: "train", members: ["train"] },
  { name: "mae", members: ["mae"] },
  { name: "study & bench", members: ["study", "bench"] },
  { name: "cli", members: ["cli"] },
  { name: "public surface", members: ["index.ts"] },
];

/** An import that breaks the order, or a module that no layer holds. */
export interface Violation {
  /** Importing file, relative to the source root. */
  from: string;
  /** Imported file, relative to the source root (undefined for a module outside every layer). */
  to?: string;
  line: number;
  message: string;
}

function layerIndex(rel: string, layers: readonly Layer[]): number {
  const top = rel.split("/")[0];
  const key = rel.includes("/") ? top : rel;
  return layers.findIndex((l) => l.members.includes(key));
}

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listTs(p));
    else if (e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) out.push(p);
  }
  return out.sort();
}

/** Resolves a relative specifier the way Node does for TypeScript sources: file.ts, or folder/index.ts. */
function resolveRelative(fromFile: string, spec: string): string | undefined {
  const base = path.resolve(path.dirname(fromFile), spec);
  for (const c of [base, `${base}.ts`, path.join(base, "index.ts")]) {
    if (fs.existsSync(c) && fs.statSync(c).isFile()) return c;
  }
  return undefined;
}

/** Every upward import (and every module outside the layers) under `srcDir`, in file order. */
export function findViolations(srcDir: string, layers: readonly Layer[] = LAYERS): Violation[] {
  const root = path.resolve(srcDir);
  const out: Violation[] = [];
  for (const file of listTs(root)) {
    const from = path.relative(root, file).split(path.sep).join("/");
    const li = layerIndex(from, layers);
    if (li < 0) {
      out.push({
        from,
        line: 1,
        message: `${from} is in no layer: add its folder to LAYERS in scripts/lint/dependency_order.ts`,
      });
      continue;
    }
    const text = fs.readFileSync(file, "utf8");
    // import, export ... from, import(), require(): type-only imports count too (they couple the files as well)
    for (const ref of ts.preProcessFile(text, true, true).importedFiles) {
      if (!ref.fileName.startsWith(".")) continue; // packages
      const target = resolveRelative(file, ref.fileName);
      if (target === undefined || !target.startsWith(root + path.sep)) continue;
      const to = path.relative(root, target).split(path.sep).join("/");
      const lj = layerIndex(to, layers);
      if (lj <= li) continue;
      const line = text.slice(0, ref.pos).split("\n").length;
      out.push({
        from,
        to,
        line,
        message:
          `${from}:${line} imports ${to}: ${layers[li].name} may not import ${layers[lj].name} (upward); ` +
          `move the shared piece down or invert the dependency`,
      });
    }
  }
  return out;
}

if (require.main === module) {
  const src = path.join(__dirname, "..", "..", "src");
  const v = findViolations(src);
  for (const x of v) console.log(x.message);
  console.log(v.length === 0 ? "dependency order: ok" : `dependency order: ${v.length} violation(s)`);
  process.exitCode = v.length === 0 ? 0 : 1;
}
