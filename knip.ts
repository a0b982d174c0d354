// knip: unused files, exports, types and dependencies. Notebooks count as entries: their code cells are read as one
// TypeScript file, with the `./src/...` imports (relative to the kernel's working directory, the project root)
// rewritten to be relative to notebooks/.
import type { KnipConfig } from "knip";

interface NotebookCell {
  cell_type: string;
  source: string | string[];
}

const notebookCode = (text: string): string =>
  (JSON.parse(text) as { cells: NotebookCell[] }).cells
    .filter((c) => c.cell_type === "code")
    .map((c) => (Array.isArray(c.source) ? c.source.join("") : c.source))
    .join("\n")
    .replace(/(["'])\.\/src\//g, "$1../src/");

const config: KnipConfig = {
  // The folder indexes of manifest/ and report/ are public entry points of their own (imported by path).
  entry: [
    "scripts/**/*.ts",
    // the entry module of the data-parallel worker threads (started by path)
    "src/train/data_parallel_worker.ts",
    "test/**/*.test.ts",
    "test/webgpu/fixtures/*.ts", // run as child processes by the webgpu suite
    "notebooks/*.ipynb",
    "src/data/manifest.ts",
    "src/study/report.ts",
  ],
  project: ["src/**/*.ts", "test/**/*.ts", "scripts/**/*.ts", "notebooks/*.ipynb"],
  compilers: { ipynb: notebookCode },
  // mount/umount: the robustness suite mounts a small tmpfs for its disk-full cases (system tools, not packages)
  ignoreBinaries: ["mount", "umount"],
  // esbuild bundles the GPU pack (scripts/gpu_pack.sh calls node_modules/.bin/esbuild)
  ignoreDependencies: ["esbuild"],
  // An export also used in its own file is live code (often exported for tests or users); only dead code is reported.
  ignoreExportsUsedInFile: true,
};

export default config;
