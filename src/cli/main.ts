// The `mae-nnformer` command line. Each subcommand is a thin wrapper over the library.
import { Command } from "commander";
import * as path from "path";
import { BACKEND_ENV, BACKEND_ORDER, initBackend, describeBackend } from "../runtime/backend";
import { loadManifest, resolveManifest, listManifests, SPLIT_NAMES, SplitName } from "../data/manifest";
import { predictFile, predictSplit, evaluatePredictions, writeEvaluation } from "../infer/predict";
import { formatSummary } from "../metrics/summarize";
import { assertReadableFile, assertWritableDir, assertWritableFile, writeFileAtomic } from "../runtime/files";
import { acquireRunLock } from "../runtime/lock";
import { peekCheckpointKind, type CheckpointKind } from "../io/checkpoint";
import { resolveProfile, type ProfileLayer } from "../study/profile_schema";
import { HD95_DEFINITIONS, Hd95Definition } from "../metrics/hd95";
import { formatDetections } from "../metrics/detection";
import { writePhantomDataset, loadCase, phantomManifestFor } from "../data/dataset";
import { PHANTOM_LABELS, resolvePhantomConfig } from "../data/phantom";
import { runBench } from "../bench/run";
import { resolveModelName } from "../registry";
import * as fs from "fs";
import { getProfile, shippedEncoder, StudyProfile } from "../study/profiles";
import { runLowLabelStudy, writeReports, loadStudyData, pretrainOnceForCli } from "../study/lowlabel";
import { readResults } from "../study/grid";
import { formatSeconds } from "../train/fit";
import * as os from "os";
import { defaultWorkers } from "../study/cells";
import { runCellCommand } from "../study/cell_command";
import { exitWithParent } from "../study/pool";
import { initBackendWithThreads, backendFlags } from "../runtime/threads";
import { runParallelSweep, formatParallelTable } from "../bench/parallel_bench";

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
    .option(
      "--count <n>",
      "generate N phantoms with their own manifest (<data-root>/manifest.json) instead of the shipped one",
    )
    .option("--seed <n>", "phantom seed (with --count)", "0")
    .option("--shape <DxHxW>", "phantom grid (with --count)", "64x64x64")
    .action(async (o) => {
      let manifest = loadManifest(o.manifest);
      if (o.count !== undefined) {
        if (!o.dataRoot)
          throw new Error("--count needs --data-root: the folder that receives the cases and manifest.json");
        const shape = String(o.shape)
          .split("x")
          .map((v) => positiveInt(v, "--shape")) as [number, number, number];
        if (shape.length !== 3) throw new Error(`--shape ${o.shape}: give D x H x W, e.g. 64x64x64`);
        const spacing = resolvePhantomConfig({ shape }).spacing;
        const seed = num("--seed", 0, 2 ** 31, true)(o.seed);
        manifest = phantomManifestFor(positiveInt(o.count, "--count"), seed, shape, spacing, o.dataRoot);
        writeFileAtomic(path.join(o.dataRoot, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
        console.log(
          `manifest: ${path.join(o.dataRoot, "manifest.json")} (use --manifest ${path.join(o.dataRoot, "manifest.json")})`,
        );
      }
      const t0 = Date.now();
      const r = writePhantomDataset(manifest, o.dataRoot, {
        overwrite: o.overwrite,
        onCase: (i, n, id) => process.stdout.write(`\r  ${i + 1}/${n} ${id}   `),
      });
      process.stdout.write("\n");
      console.log(
        `phantoms: ${r.written} written, ${r.kept} already there, in ${r.dataRoot} (${((Date.now() - t0) / 1000).toFixed(1)} s)`,
      );
    });

  cli
    .command("data-demo")
    .description("show the backend, write the phantom dataset and summarise a case")
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
      for (const l of PHANTOM_LABELS)
        console.log(`  ${l.name.padEnd(14)} ${String(counts.get(l.value) ?? 0).padStart(7)} voxels`);
      console.log(
        `splits: ${Object.entries(resolved.splits)
          .map(([k, v]) => `${k} ${v.length}`)
          .join(", ")}`,
      );
    });

  const studyOptions = (c: Command) =>
    c
      .option(
        "-p, --profile <name>",
        "smoke (seconds), quick (CPU demo, ~15 min) or paper (official settings, GPU)",
        "quick",
      )
      .option("-c, --config <file>", "JSON file with profile fields to override (deep-merged)")
      .option("-o, --out <dir>", "output folder (results.jsonl, runs/, pretrain/, table.md, report.html)")
      .option("--manifest <name>", "dataset manifest name or path (default: the profile's)")
      .option("--data-root <dir>", "data root for the manifest")
      .option(
        "--models <list>",
        "registered models to compare, e.g. nnformer-small,unet3d-cpu (mae arm: nnFormer only)",
      )
      .option("--fractions <list>", "label fractions, e.g. 0.1,0.25,1")
      .option("--seeds <list>", "seeds, e.g. 0,1,2")
      .option("--inits <list>", "initialisations: scratch,mae")
      .option("--steps <n>", "fine-tuning steps per run")
      .option("--pretrain-steps <n>", "MAE pretraining steps")
      .option("--mask-ratio <r>", "MAE mask ratio in (0, 1)")
      .option("--mask-mode <mode>", "sparse, simmim or compact")
      .option("--mae-checkpoint <file>", "use this MAE checkpoint instead of pretraining (or of the shipped encoder)")
      .option("--pretrain-afresh", "pretrain MAE within the study instead of starting from the shipped encoder", false)
      .option("--hd95 <definition>", "HD95 of the test scores: medpy (pooled percentile, the official one) or monai")
      .option("--pretrain-per-seed", "one MAE pretraining per seed instead of one shared by every seed")
      .option(
        "--workers <n>",
        "worker processes running the cells (default: the physical cores; 1 = one after the other)",
      )
      .option("--threads <n>", "wasm threads per process (threaded XNNPACK kernels; default 1)")
      .option(
        "--data-parallel <n>",
        "worker threads inside each fine-tuning run, each with its share of every batch (default 1)",
      )
      .option(
        "--force",
        "discard rows and checkpoints in --out made with other settings and run them again (default: refuse)",
        false,
      );

  studyOptions(
    cli
      .command("study")
      .description(
        "run (or resume) the low-label study: pretrain, fine-tune scratch vs MAE at each label fraction and seed, evaluate, report",
      ),
  ).action(async (o) => {
    await runStudyCommand(o);
  });

  studyOptions(
    cli
      .command("pretrain")
      .description("MAE pretraining only (the study's pretraining step); writes <out>/pretrain/mae_latest.safetensors"),
  ).action(async (o) => {
    const profile = studyProfile(o);
    const out = o.out ?? path.join("runs", `pretrain-${profile.name}`);
    assertWritableDir(out, `--out ${out}`);
    const backend = await initBackend();
    console.log(describeBackend(backend));
    const data = await loadStudyData(profile, console.log);
    const file = await pretrainOnceForCli(profile, data, out, { force: Boolean(o.force) });
    console.log(`pretrained encoder: ${file}`);
  });

  studyOptions(
    cli
      .command("finetune")
      .description(
        "fine-tune one model (one label fraction, seed and init); a one-cell study with its checkpoints under <out>/runs",
      ),
  ).action(async (o) => {
    if (!o.fractions) o.fractions = "1";
    if (!o.seeds) o.seeds = "0";
    if (!o.inits) o.inits = o.maeCheckpoint ? "mae" : "scratch";
    await runStudyCommand(o);
  });

  cli
    .command("predict")
    .description(
      "segment NIfTI volumes with a fine-tuned checkpoint (sliding window), writing label maps with the source affine",
    )
    .requiredOption(
      "--checkpoint <file>",
      "best.safetensors or latest.safetensors of a fine-tuning run (runs/<study>/runs/<cell>/)",
    )
    .option("--image <file>", "one NIfTI image (.nii or .nii.gz) to segment")
    .option("--manifest <name>", "or: every case of a manifest split")
    .option("--data-root <dir>", "data root for the manifest")
    .option("--split <name>", "split to predict (train, val, test, unlabeled)", "test")
    .requiredOption("-o, --out <path>", "output file (with --image) or folder (with --manifest)")
    .option("--overlap <r>", "sliding-window overlap in [0, 1)", "0.5")
    .option(
      "--mirror",
      "mirror test-time augmentation over all axes (for networks fine-tuned with mirroring; refused otherwise)",
      false,
    )
    .action(async (o) => {
      const overlap = num("--overlap", 0, 0.99)(o.overlap);
      if (!o.image && !o.manifest) throw new Error("predict: give --image FILE or --manifest NAME (with --split)");
      // every path before any work
      checkCheckpointArg(o.checkpoint, "--checkpoint", ["finetune", "model"]);
      if (o.image) {
        assertReadableFile(o.image, "--image", "NIfTI image");
        assertWritableFile(o.out, "--out");
      }
      const resolved = o.manifest
        ? resolveManifest(loadManifest(o.manifest), o.dataRoot, { only: [splitName(o.split)] })
        : undefined;
      const backend = await initBackend();
      console.log(describeBackend(backend));
      if (o.image) {
        await predictFile(o.checkpoint, o.image, o.out, { overlap, mirror: o.mirror });
        console.log(`prediction: ${o.out}`);
      } else {
        // a folder of predictions has one writer at a time
        const lock = acquireRunLock(o.out);
        try {
          const files = await predictSplit(
            o.checkpoint,
            resolved!,
            splitName(o.split),
            o.out,
            { overlap, mirror: o.mirror },
            console.log,
          );
          console.log(`${files.length} predictions in ${o.out}`);
        } finally {
          lock.release();
        }
      }
    });

  cli
    .command("evaluate")
    .description(
      "score predictions (<pred>/<case id>.nii.gz) against a manifest split: Dice and HD95 per evaluated class",
    )
    .requiredOption("--pred <dir>", "folder of predictions written by `predict --manifest`")
    .requiredOption("--manifest <name>", "manifest name or path")
    .option("--data-root <dir>", "data root for the manifest")
    .option("--split <name>", "split to score", "test")
    .option(
      "--convention <name>",
      "kit (HD95 in mm, a missed organ scores the volume diagonal) or nnformer (official: medpy HD95 in voxels, 0 when empty, Dice 1 when both are empty)",
      "kit",
    )
    .option("--hd95 <definition>", "HD95 definition with --convention kit: medpy (default) or monai", "medpy")
    .option("--json <file>", "also write the scores as JSON")
    .action(async (o) => {
      if (o.convention !== "kit" && o.convention !== "nnformer")
        throw new Error(`--convention ${o.convention}: use kit or nnformer`);
      if (!fs.existsSync(o.pred) || !fs.statSync(o.pred).isDirectory())
        throw new Error(`--pred ${o.pred}: no such folder; give the folder \`predict --manifest\` wrote`);
      if (o.json) assertWritableFile(o.json, "--json");
      const resolved = resolveManifest(loadManifest(o.manifest), o.dataRoot, { only: [splitName(o.split)] });
      const r = await evaluatePredictions(resolved, splitName(o.split), o.pred, o.convention, hd95Definition(o.hd95));
      console.log(`Dice\n${formatSummary(r.dice)}\n\nHD95 (${r.units})\n${formatSummary(r.hd95, 2)}`);
      console.log(`\nHD95: ${r.hd95Convention}`);
      console.log(
        `organs (per class over ${r.dice.caseIds.length} cases): ` +
          r.detection.perClass.map((c) => `${c.name} ${formatDetections(c)}`).join("; "),
      );
      if (o.json) {
        writeEvaluation(o.json, r);
        console.log(`written ${o.json}`);
      }
    });

  cli
    .command("report")
    .description("rebuild table.md, table.csv and report.html from a study's results.jsonl")
    .requiredOption("-o, --out <dir>", "the study's output folder")
    .option("-p, --profile <name>", "profile name for titles and convergence levels", "quick")
    .action((o) => {
      const file = path.join(o.out, "results.jsonl");
      if (!fs.existsSync(file))
        throw new Error(`${file} does not exist; run \`mae-nnformer study --out ${o.out}\` first`);
      const results = readResults(file);
      const w = writeReports(results, o.out, getProfile(o.profile));
      console.log(w.markdown);
      console.log(`\nreport: ${w.reportFile}`);
    });

  cli
    .command("bench")
    .description(
      "benchmark nnFormer training steps (fast ops vs plain autodiff), any registered model's step, and ops on the current backend",
    )
    .option(
      "--presets <list>",
      "comma-separated nnFormer presets: tiny (crop 64^3, embed 48), small, micro, quick (the demo's network) (default tiny, none with --models)",
    )
    .option(
      "--models <list>",
      "registered models for the per-model step table, e.g. nnformer-small,unet3d-cpu,unetr-cpu,swin-unetr-f12,transunet3d-cpu",
    )
    .option("--crop <DxHxW>", "crop of the per-model benchmark", "32x64x64")
    .option("--model-batch <n>", "batch of the per-model benchmark", "2")
    .option("--ops <list>", "fast, plain or fast,plain", "fast,plain")
    .option("--steps <n>", "timed steps for fast ops", "3")
    .option("--plain-steps <n>", "timed steps for the plain build", "1")
    .option("--batch <list>", "batch size (a list for the threads/workers sweep, e.g. 1,2)", "1")
    .option("--threads <list>", "sweep: wasm threads per process, e.g. 1,2 (each point in its own process)")
    .option("--workers <list>", "sweep: data-parallel worker threads, e.g. 1,2 (they must divide the batch)")
    .option("--profile", "print the per-kernel time breakdown of one step (tf.profile)", false)
    .option("--micro", "also run the op microbenchmarks", false)
    .option("--mae <list>", "also time one MAE pretraining step per masking mode on these presets: tiny, micro")
    .option("--out <file>", "JSON output", "build/bench/bench.json")
    .option("--backend <name>", `run on this backend: ${BACKEND_ORDER.join(", ")} (sets ${BACKEND_ENV})`)
    .action(async (o) => {
      assertWritableFile(o.out, "--out");
      if (o.backend) process.env[BACKEND_ENV] = String(o.backend);
      const backend = await initBackend();
      console.log(`backend flags: ${JSON.stringify(backendFlags())}`);
      const batches = list(o.batch, (v) => positiveInt(v, "--batch"), "--batch")!;
      const threads = list(o.threads, (v) => positiveInt(v, "--threads"), "--threads");
      const workers = list(o.workers, (v) => positiveInt(v, "--workers"), "--workers");
      const crop = String(o.crop)
        .split("x")
        .map((v) => positiveInt(v, "--crop"));
      if (crop.length !== 3) throw new Error(`--crop ${o.crop}: give D x H x W, e.g. 32x64x64`);
      const models = list(o.models, (s) => s, "--models");
      for (const m of models ?? []) {
        try {
          resolveModelName(m); // sized names and the old aliases
        } catch (e) {
          throw new Error(`--models: ${(e as Error).message}`);
        }
      }
      const mae = list(
        o.mae,
        (s) => {
          if (s !== "tiny" && s !== "micro") throw new Error(`--mae: unknown preset "${s}"; use tiny and/or micro`);
          return s as "tiny" | "micro";
        },
        "--mae",
      );
      const presets: string[] = o.presets ? String(o.presets).split(",") : models || mae ? [] : ["tiny"];
      if (threads || workers) {
        // the sweep alone: every point in its own process
        await benchSweep(presets, batches, threads ?? [1], workers ?? [1], positiveInt(o.steps, "--steps"), o.out);
        return;
      }
      const report = await runBench({
        mae,
        presets,
        models,
        modelCrop: crop as [number, number, number],
        modelBatch: positiveInt(o.modelBatch, "--model-batch"),
        ops: String(o.ops).split(",") as Array<"fast" | "plain">,
        steps: positiveInt(o.steps, "--steps"),
        plainSteps: positiveInt(o.plainSteps, "--plain-steps"),
        batch: batches[0],
        profile: o.profile,
        micro: o.micro,
        out: o.out,
        backend,
      });
      // the same presets on 1 thread and 1 worker: kernel vs dispatch share, and the ratio to the 2.02 s baseline
      if (presets.length) await benchSweep(presets, batches, [1], [1], positiveInt(o.steps, "--steps"), o.out);
      if (report.errors.length) {
        throw new Error(
          `bench: ${report.errors.length} requested item(s) failed (the others are in ${o.out}):\n  ${report.errors.join("\n  ")}`,
        );
      }
    });

  cli
    .command("cell", { hidden: true })
    .description("run one cell (--key) or one MAE pretraining (--pretrain) of a study from its folder's study.json")
    .requiredOption("--study <dir>", "the study folder (written by `mae-nnformer study`)")
    .option("--key <key>", 'cell key, e.g. "model=nnformer-quick|init=mae|frac=0.25|seed=0"')
    .option("--pretrain <model>", "the MAE pretraining of this model")
    .option("--seed <n>", "with --pretrain: the pretraining seed (0 unless the profile pretrains per seed)", "0")
    .action(async (o) => {
      if (Boolean(o.key) === Boolean(o.pretrain))
        throw new Error("cell: give exactly one of --key KEY or --pretrain MODEL");
      const seed = Number(o.seed);
      if (!Number.isInteger(seed) || seed < 0)
        throw new Error(`--seed must be an integer >= 0, got ${JSON.stringify(o.seed)}`);
      const checkParent = exitWithParent(); // before the slow start-up: an orphan must not load data for minutes
      console.log(describeBackend(await initBackendWithThreads()));
      checkParent();
      await runCellCommand(
        o.study,
        o.key ? { kind: "cell", key: o.key } : { kind: "pretrain", model: o.pretrain, seed },
      );
    });

  cli
    .command("manifests")
    .description("list the shipped dataset manifests")
    .action(() => {
      for (const name of listManifests()) {
        const m = loadManifest(name);
        console.log(
          `${name.padEnd(24)} ${m.modality.padEnd(9)} ${m.cases.length} cases  ${m.description.split(". ")[0]}`,
        );
      }
    });

  return cli;
}

/** The threads x workers sweep of `bench`, printed and written beside the bench JSON (<out>-parallel.json). */
async function benchSweep(
  presets: string[],
  batches: number[],
  threads: number[],
  workers: number[],
  steps: number,
  out: string,
): Promise<void> {
  const dir = path.join(path.dirname(out), "parallel");
  console.log(`\nthreads x workers (each point in its own process; logs in ${dir}):`);
  const rows = await runParallelSweep({ presets, batches, threads, workers, steps, dir });
  console.log(
    `\ntraining step by threads and data-parallel workers (fast ops, AdamW); load average ${os
      .loadavg()
      .map((v) => v.toFixed(2))
      .join(" ")}; baseline 2.02 s and PyTorch 0.62 s per sample for tiny (64^3, embed 48)`,
  );
  console.log(formatParallelTable(rows));
  const file = out.replace(/\.json$/, "") + "-parallel.json";
  writeFileAtomic(file, JSON.stringify(rows, null, 2) + "\n");
  console.log(`written ${file}`);
  const failed = rows.filter((r) => r.error);
  if (failed.length) throw new Error(`bench: ${failed.length} sweep point(s) failed; their logs are in ${dir}`);
}

function splitName(s: string): SplitName {
  if (!(SPLIT_NAMES as readonly string[]).includes(s))
    throw new Error(`--split ${s}: use one of ${SPLIT_NAMES.join(", ")}`);
  return s as SplitName;
}

function list<T>(v: string | undefined, parse: (s: string) => T, flag: string): T[] | undefined {
  if (v === undefined) return undefined;
  const items = String(v)
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
  if (!items.length) throw new Error(`${flag} is empty; give a comma-separated list`);
  return items.map(parse);
}

function num(flag: string, lo: number, hi: number, integer = false) {
  return (s: string) => {
    const n = Number(s);
    if (!Number.isFinite(n) || n < lo || n > hi || (integer && !Number.isInteger(n))) {
      throw new Error(`${flag}: ${JSON.stringify(s)} is not ${integer ? "an integer" : "a number"} in [${lo}, ${hi}]`);
    }
    return n;
  };
}

/** The JSON object of a --config file, as a profile layer named by the file. */
function configLayer(file: string): ProfileLayer {
  assertReadableFile(file, "--config", "JSON file");
  let values: unknown;
  try {
    values = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`--config ${file}: not valid JSON (${(e as Error).message})`);
  }
  return { source: file, values };
}

/** A comma-separated flag as a list (numbers when `asNumber`: anything else becomes NaN, which the schema names). */
function flagList(v: string, asNumber: boolean): Array<string | number> {
  const items = String(v)
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
  return asNumber ? items.map((x) => Number(x)) : items;
}

/** --hd95 checked: "medpy" or "monai". */
function hd95Definition(v: string): Hd95Definition {
  if (!(HD95_DEFINITIONS as readonly string[]).includes(v))
    throw new Error(`--hd95 ${v}: use ${HD95_DEFINITIONS.join(" or ")} (metrics/hd95.ts documents both)`);
  return v as Hd95Definition;
}

/**
 * The profile named by --profile, overridden by --config and then by flags, checked as a whole by one schema
 * (problems named "file.json: finetune.steps" or "--steps").
 */
function studyProfile(o: Record<string, string | undefined>): StudyProfile {
  const base = getProfile(o.profile ?? "quick");
  const layers: ProfileLayer[] = [];
  if (o.config) layers.push(configLayer(o.config));
  const flag = (source: string, values: object) => layers.push({ source, values, flag: true });
  if (o.manifest) flag("--manifest", { data: { kind: "manifest", manifest: o.manifest, dataRoot: o.dataRoot } });
  else if (o.dataRoot) {
    const kind = (layers[0]?.values as { data?: { kind?: string } } | undefined)?.data?.kind ?? base.data.kind;
    if (kind !== "manifest")
      throw new Error(
        `--data-root ${o.dataRoot}: profile ${base.name} generates its data in memory; give --manifest NAME as well`,
      );
    flag("--data-root", { data: { dataRoot: o.dataRoot } });
  }
  if (o.models !== undefined) flag("--models", { models: flagList(o.models, false) });
  if (o.fractions !== undefined) flag("--fractions", { labelFractions: flagList(o.fractions, true) });
  if (o.seeds !== undefined) flag("--seeds", { seeds: flagList(o.seeds, true) });
  if (o.inits !== undefined) flag("--inits", { inits: flagList(o.inits, false) });
  if (o.steps !== undefined) flag("--steps", { finetune: { steps: Number(o.steps) } });
  if (o.pretrainSteps !== undefined) flag("--pretrain-steps", { pretrain: { steps: Number(o.pretrainSteps) } });
  if (o.maskRatio !== undefined) flag("--mask-ratio", { pretrain: { maskRatio: Number(o.maskRatio) } });
  if (o.maskMode !== undefined) flag("--mask-mode", { pretrain: { maskMode: o.maskMode } });
  if (o.hd95 !== undefined) flag("--hd95", { eval: { hd95: o.hd95 } });
  if (o.pretrainPerSeed) flag("--pretrain-per-seed", { pretrain: { perSeed: true } });
  const profile = resolveProfile(base, layers);
  // --steps is every cell's budget: it replaces the profile's per-fraction steps too
  if (o.steps !== undefined) for (const f of Object.values(profile.perFraction ?? {})) delete f.steps;
  return profile;
}

const KIND_TEXT: Record<CheckpointKind, string> = {
  finetune: "a fine-tuning checkpoint (a segmentation run's weights, from <study out>/runs/<cell>/)",
  "mae-pretraining":
    "an MAE pretraining checkpoint (encoder and decoder from `mae-nnformer pretrain` or a study's pretrain/<model>/ folder); it cannot segment",
  model: "a model-weights checkpoint",
};
const KIND_WANTED: Record<string, string> = {
  "--checkpoint": "pass best.safetensors or latest.safetensors of a fine-tuning run (<study out>/runs/<cell>/)",
  "--mae-checkpoint":
    "--mae-checkpoint needs an MAE pretraining checkpoint: mae_latest.safetensors from `mae-nnformer pretrain --out DIR` (in DIR/pretrain/<model>/) or from a study's pretrain/<model>/ folder",
};

/** Checks a checkpoint flag before any work: the file exists, is complete, and is of a kind this command takes. */
function checkCheckpointArg(file: string, flag: string, kinds: CheckpointKind[]): void {
  assertReadableFile(file, flag, "checkpoint");
  let kind: CheckpointKind | undefined;
  try {
    kind = peekCheckpointKind(file);
  } catch (e) {
    throw new Error(`${flag} ${(e as Error).message}`);
  }
  if (kind && kinds.includes(kind)) return;
  const what = kind ? `is ${KIND_TEXT[kind]}` : "is not a checkpoint written by this kit";
  throw new Error(`${flag} ${file} ${what}; ${KIND_WANTED[flag]}`);
}

async function runStudyCommand(o: Record<string, string | undefined>): Promise<void> {
  // everything the user gave is checked before any work: settings, input files, then the output folder
  const profile = studyProfile(o);
  if (o.maeCheckpoint && o.pretrainAfresh)
    throw new Error("--mae-checkpoint and --pretrain-afresh contradict each other; give one of them");
  if (o.maeCheckpoint) checkCheckpointArg(o.maeCheckpoint, "--mae-checkpoint", ["mae-pretraining"]);
  // the "mae" arm starts from: --mae-checkpoint, else the profile's shipped encoder, else a pretraining in the study
  const maeCheckpoint =
    o.maeCheckpoint ?? (o.pretrainAfresh || !profile.inits.includes("mae") ? undefined : shippedEncoder(profile));
  const out = o.out ?? path.join("runs", profile.name);
  const workers = o.workers !== undefined ? positiveInt(o.workers, "--workers") : defaultWorkers();
  const threads = o.threads !== undefined ? positiveInt(o.threads, "--threads") : undefined;
  const dataParallel = o.dataParallel !== undefined ? positiveInt(o.dataParallel, "--data-parallel") : undefined;
  if (dataParallel && profile.finetune.batchSize % dataParallel !== 0)
    throw new Error(
      `--data-parallel ${dataParallel}: the fine-tuning batch (${profile.finetune.batchSize}) must be a multiple of it`,
    );
  assertWritableDir(out, `--out ${out}`);
  const backend = await initBackendWithThreads(threads);
  console.log(describeBackend(backend));
  console.log(
    `profile ${profile.name}: ${profile.models.join(" + ")}, fractions ${profile.labelFractions.join(", ")}, seeds ${profile.seeds.join(", ")}, inits ${profile.inits.join(", ")}; output ${out}`,
  );
  const r = await runLowLabelStudy(profile, {
    out,
    maeCheckpoint,
    force: Boolean(o.force),
    workers,
    dataParallel,
  });
  console.log("\n" + r.markdown);
  console.log(`\nwall time ${formatSeconds(r.seconds)} on ${backend.name}, ${workers} worker process(es)`);
  console.log(`report: ${path.resolve(r.reportFile)}\ntable:  ${path.resolve(r.tableFile)}`);
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
