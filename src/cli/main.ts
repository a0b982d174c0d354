// The `mae-nnformer` command line. Each subcommand is a thin wrapper over the library.
import { Command } from "commander";
import * as path from "path";
import { initBackend, describeBackend } from "../runtime/backend";
import { loadManifest, resolveManifest, listManifests } from "../data/manifest";
import { writePhantomDataset, loadCase } from "../data/dataset";
import { PHANTOM_LABELS } from "../data/phantom";
import { runBench } from "../bench/run";

function positiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

function program(): Command {
  const cli = new Command("mae-nnformer")
    .description("MAE pretraining and nnFormer segmentation on 3D medical images (TensorFlow.js)")
    .showHelpAfterError();

  cli
    .command("phantoms")
    .description("write the generated phantom dataset (NIfTI images and labels) described by a manifest")
    .option("-m, --manifest <name>", "manifest name or path", "phantom")
    .option("-d, --data-root <dir>", "where to write (default: the manifest's defaultDataRoot)")
    .option("--overwrite", "regenerate cases that already exist", false)
    .action(async (o) => {
      const manifest = loadManifest(o.manifest);
      const t0 = Date.now();
      const r = writePhantomDataset(manifest, o.dataRoot, {
        overwrite: o.overwrite,
        onCase: (i, n, id) => process.stdout.write(`\r  ${i + 1}/${n} ${id}   `),
      });
      process.stdout.write("\n");
      console.log(`phantoms: ${r.written} written, ${r.kept} already there, in ${r.dataRoot} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    });

  cli
    .command("demo")
    .description("show the backend, write the phantom dataset and summarise a case (the main job grows from here)")
    .option("-d, --data-root <dir>", "phantom data root (default data/phantom)")
    .action(async (o) => {
      const backend = await initBackend();
      console.log(describeBackend(backend));
      const manifest = loadManifest("phantom");
      const r = writePhantomDataset(manifest, o.dataRoot);
      console.log(`phantom dataset: ${r.written} cases written, ${r.kept} kept, in ${r.dataRoot}`);
      const resolved = resolveManifest(manifest, r.dataRoot);
      const c = await loadCase(resolved, resolved.splits.train[0]);
      const counts = new Map<number, number>();
      for (const v of c.label!.data) counts.set(v, (counts.get(v) ?? 0) + 1);
      console.log(`case ${c.id}: shape ${c.image.shape.join("x")}, spacing ${c.image.spacing.join("x")} mm`);
      for (const l of PHANTOM_LABELS) console.log(`  ${l.name.padEnd(14)} ${String(counts.get(l.value) ?? 0).padStart(7)} voxels`);
      console.log(`splits: ${Object.entries(resolved.splits).map(([k, v]) => `${k} ${v.length}`).join(", ")}`);
    });

  cli
    .command("bench")
    .description("benchmark nnFormer training steps (fast ops vs plain autodiff) and ops on the current backend")
    .option("--presets <list>", "comma-separated presets: tiny (crop 64^3, embed 48), small, micro", "tiny")
    .option("--ops <list>", "fast, plain or fast,plain", "fast,plain")
    .option("--steps <n>", "timed steps for fast ops", "3")
    .option("--plain-steps <n>", "timed steps for the plain build", "1")
    .option("--batch <n>", "batch size", "1")
    .option("--profile", "print the per-kernel time breakdown of one step (tf.profile)", false)
    .option("--micro", "also run the op microbenchmarks", false)
    .option("--out <file>", "JSON output", "build/bench/bench.json")
    .action(async (o) => {
      const backend = await initBackend();
      await runBench({
        presets: String(o.presets).split(","),
        ops: String(o.ops).split(",") as Array<"fast" | "plain">,
        steps: positiveInt(o.steps, "--steps"),
        plainSteps: positiveInt(o.plainSteps, "--plain-steps"),
        batch: positiveInt(o.batch, "--batch"),
        profile: o.profile,
        micro: o.micro,
        out: o.out,
        backend,
      });
    });

  cli
    .command("manifests")
    .description("list the shipped dataset manifests")
    .action(() => {
      for (const name of listManifests()) {
        const m = loadManifest(name);
        console.log(`${name.padEnd(24)} ${m.modality.padEnd(9)} ${m.cases.length} cases  ${m.description.split(". ")[0]}`);
      }
    });

  return cli;
}

/** Runs the CLI with process.argv-style arguments. */
export async function main(argv: string[]): Promise<void> {
  await program().parseAsync(argv);
}

if (require.main === module) {
  main(process.argv).catch((e) => {
    console.error(`mae-nnformer: ${e instanceof Error ? e.message : e}`);
    process.exit(1);
  });
}

export const CLI_ROOT = path.resolve(__dirname, "../..");
