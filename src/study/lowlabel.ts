// The low-label study, end to end: data -> one preprocessing plan -> MAE pretraining on the unlabeled split (once, or
// once per seed) -> fine-tuning at each label fraction x seed x initialisation (scratch vs MAE) under the same budget
// -> test Dice, HD95 and detection counts on each test case's own grid -> tables, paired comparison and an HTML
// report. Nothing is selected on the test split: validation curves use the val split (which must not share a case
// with test) and the test numbers come from the final weights. Finished cells are read back from results.jsonl, so
// an interrupted study resumes where it stopped; the pretrained checkpoints are reused when complete.
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { loadManifest, resolveManifest, Manifest } from "../data/manifest";
import { loadSplit, writePhantomDataset, LoadedCase } from "../data/dataset";
import { generatePhantom, PHANTOM_LABELS } from "../data/phantom";
import { computePreprocessing, Preprocessing } from "../data/preprocess";
import { pretrainMae, type PretrainOptions } from "../mae/pretrain";
import { readMaeCheckpointInfo } from "../mae/checkpoint";
import { transferEncoder } from "../mae/transfer";
import { buildModel, modelEntry } from "../registry";
import { nnFormerOf } from "../models/nnformer_segmentation";
import { selectOps } from "../layers/fast_ops";
import type { StepRecord } from "../train/fit";
import { finetune, runFolder } from "../train/recipe";
import { prepareCases } from "../train/segmentation";
import { scoreTestCases } from "../infer/evaluate";
import { formatDetections } from "../metrics/detection";
import { assertWritableDir, removeLeftoverTempFiles, writeFileAtomic } from "../runtime/files";
import { acquireRunLock } from "../runtime/lock";
import {
  cellSettings,
  checkStudyFolder,
  expected,
  fileFingerprint,
  pretrainSettings,
  type CellPlan,
  type StudyDescriptionInput,
} from "./freshness";
import { expandGrid, runStudy, selectLabelledSubset, RunResult, StudyCell } from "./grid";
import { saveStudyPlan, runStudyInPool } from "./cells";
import {
  studyTable,
  compareInits,
  comparisonTableRows,
  comparisonHeaders,
  toMarkdown,
  toCsv,
  htmlReport,
  toHtmlTable,
  convergenceRatios,
  studyNotes,
  table2Rows,
  modelCostRows,
  formatFraction,
} from "./report";
import { finetuneAt, seedsAt, StudyProfile } from "./profiles";
import { methodsSentences, powerNote, sharedLevelConvergence } from "./report";
import { readExamples, writeExampleSegmentations } from "./examples";
import type { Vec3 } from "../runtime/math";

export interface StudyData {
  name: string;
  modality: string;
  /** Class names by label value (index 0 = background). */
  labelNames: string[];
  /** Label values scored in the tables. */
  evalClasses: number[];
  unlabeled: LoadedCase[];
  train: LoadedCase[];
  val: LoadedCase[];
  test: LoadedCase[];
}

/** Loads the profile's data (writing the phantom dataset first when its files are missing). */
export async function loadStudyData(profile: StudyProfile, log: (s: string) => void = () => {}): Promise<StudyData> {
  const d = profile.data;
  if (d.kind === "phantom-memory") {
    let next = 0;
    const take = (n: number, withLabel: boolean): LoadedCase[] =>
      Array.from({ length: n }, () => {
        const index = next++;
        const p = generatePhantom(d.seed, index, { shape: d.shape });
        return { id: `phantom_${String(index).padStart(3, "0")}`, image: p.image, label: withLabel ? p.label : null };
      });
    const unlabeled = take(d.unlabeled, false),
      train = take(d.train, true),
      val = take(d.val, true),
      test = take(d.test, true);
    return {
      name: `phantom (in memory, ${d.shape.join("x")})`,
      modality: "CT",
      labelNames: PHANTOM_LABELS.map((l) => l.name),
      evalClasses: PHANTOM_LABELS.slice(1).map((l) => l.value),
      unlabeled,
      train,
      val,
      test,
    };
  }
  const manifest = loadManifest(d.manifest);
  if (manifest.generator) {
    const w = writePhantomDataset(manifest, d.dataRoot);
    if (w.written) log(`wrote ${w.written} phantom cases to ${w.dataRoot}`);
  }
  const resolved = resolveManifest(manifest, d.dataRoot);
  return {
    name: manifest.name,
    modality: manifest.modality,
    labelNames: manifest.labels.map((l) => l.name),
    evalClasses: evaluatedValues(manifest),
    unlabeled: await loadSplit(resolved, "unlabeled"),
    train: await loadSplit(resolved, "train"),
    val: await loadSplit(resolved, "val"),
    test: await loadSplit(resolved, "test"),
  };
}

function evaluatedValues(m: Manifest): number[] {
  const names = m.evaluatedLabels ?? m.labels.filter((l) => l.value !== 0).map((l) => l.name);
  return names.map((n) => m.labels.find((l) => l.name === n)!.value);
}

export interface StudyOptions {
  /** Output folder: results.jsonl, pretrain/, table.md, table.csv, report.html. */
  out: string;
  log?: (line: string) => void;
  /** Per fine-tuning step (live curves in notebooks); return false to stop that run early. */
  onStep?: (cell: StudyCell, r: StepRecord) => boolean | void;
  /** Per pretraining step. */
  onPretrainStep?: (r: StepRecord) => boolean | void;
  /** Print progress bars with ETA (default when stderr is a terminal). */
  progress?: boolean;
  /** Use this MAE checkpoint for the "mae" arm instead of pretraining one. */
  maeCheckpoint?: string;
  /**
   * Discard rows and checkpoints in `out` made with other settings and run those parts again (default false:
   * refuse, naming the differing fields).
   */
  force?: boolean;
  /**
   * Worker processes for the cells (default 1: run them here, one after the other). With more, each cell and each MAE
   * pretraining runs as `mae-nnformer cell` in a pool of child processes (see cells.ts); onStep and onPretrainStep are
   * then not called.
   */
  workers?: number;
  /** Data-parallel shards inside each fine-tuning run (worker threads; see train/data_parallel.ts). Default 1. */
  dataParallel?: number;
}

export interface StudyOutput {
  results: RunResult[];
  markdown: string;
  reportFile: string;
  tableFile: string;
  seconds: number;
}

/**
 * Runs (or resumes) the whole low-label study of a profile. It holds the lock of `options.out` throughout (a second
 * run on the same folder is refused), and before any training compares what the folder holds with this run's
 * settings (see freshness.ts).
 */
export async function runLowLabelStudy(profile: StudyProfile, options: StudyOptions): Promise<StudyOutput> {
  const log = options.log ?? ((s: string) => console.log(s));
  // before any training: an unwritable or busy folder must not cost an hour of compute
  assertWritableDir(options.out);
  const lock = acquireRunLock(options.out, { onStale: log });
  try {
    for (const f of removeLeftoverTempFiles(options.out)) log(`removed ${f}, left by an interrupted run`);
    return await runLocked(profile, options, log);
  } finally {
    lock.release();
  }
}

/** The parts of the study data that determine results (for fingerprints). */
function describeStudy(
  profile: StudyProfile,
  data: StudyData,
  plan: Preprocessing,
  numClasses: number,
  cropSize: Vec3,
): StudyDescriptionInput {
  const d = profile.data;
  const ids = (cases: LoadedCase[]) => cases.map((c) => c.id);
  return {
    profile,
    data: {
      source: d.kind === "phantom-memory" ? d : { kind: "manifest", manifest: data.name },
      name: data.name,
      modality: data.modality,
      labelNames: data.labelNames,
      evalClasses: data.evalClasses,
      cases: { unlabeled: ids(data.unlabeled), train: ids(data.train), val: ids(data.val), test: ids(data.test) },
    },
    plan,
    numClasses,
    cropSize,
    presetOf: (model) => modelEntry(model).preset,
  };
}

async function runLocked(
  profile: StudyProfile,
  options: StudyOptions,
  log: (line: string) => void,
): Promise<StudyOutput> {
  const t0 = Date.now();
  const study = await openStudy(profile, options, log);
  study.checkFolder();
  const workers = options.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`workers must be a positive integer, got ${workers}`);
  let results: RunResult[];
  if (workers > 1) {
    // the children read the plan; the folder was checked (and with force, cleaned) here, so they do not check again
    saveStudyPlan(options.out, { profile, maeCheckpoint: options.maeCheckpoint, dataParallel: options.dataParallel });
    const outcome = await runStudyInPool({
      out: options.out,
      cells: study.cells,
      workers,
      pretrainFor: study.pretrainFor,
      log,
      progress: options.progress,
      cost: (cell) => finetuneAt(profile, cell.labelFraction).steps,
    });
    results = outcome.results;
  } else {
    for (const job of study.pretrainJobs) await study.pretrain(job.model, job.seed);
    const resultsFile = path.join(options.out, "results.jsonl");
    const outcome = await runStudy(study.cells, (cell) => study.runCell(cell), {
      resultsFile,
      onCellStart: (c, p) => log(`[${p.index + 1}/${p.total}] ${c.key}`),
      onCellEnd: (res, p) =>
        log(
          `    test Dice ${res.test.meanDice.toFixed(3)}, HD95 ${res.test.meanHd95.toFixed(1)} mm` +
            (res.test.detection ? ` (organs ${formatDetections(res.test.detection)})` : "") +
            `, ${p.seconds.toFixed(0)} s`,
        ),
      onCellSkip: (c) => log(`    ${c.key}: already in ${resultsFile}`),
    });
    results = outcome.results;
  }
  await writeExampleSegmentations(
    results,
    options.out,
    async () => {
      const data = await loadStudyData(profile);
      return data.test.length ? { ...data.test[0], labelNames: data.labelNames } : undefined;
    },
    { names: { mae: "MAE" } },
  );
  const written = writeReports(results, options.out, profile, { maeCheckpoint: options.maeCheckpoint });
  return { results, ...written, seconds: (Date.now() - t0) / 1000 };
}

/** A study ready to run: its cells, and how to run one cell or one MAE pretraining in this process. */
export interface OpenedStudy {
  /** The grid, in order ("mae" cells only for models MAE can pretrain). */
  cells: StudyCell[];
  /** Compares what the folder holds with these settings (refused, or discarded with force); before any work. */
  checkFolder(): void;
  /** The MAE pretrainings the study needs (none with a given checkpoint), in order. */
  pretrainJobs: { model: string; seed: number }[];
  /** The pretraining a cell waits for, or undefined. */
  pretrainFor(cell: StudyCell): { model: string; seed: number } | undefined;
  /** Pretrains (or finds complete) the MAE encoder of `model` for `seed`; returns the checkpoint. */
  pretrain(model: string, seed: number, onStep?: (r: StepRecord) => void): Promise<string>;
  /** Fine-tunes and tests one cell; a "mae" cell needs its finished pretraining (or the given checkpoint). */
  runCell(cell: StudyCell, onStep?: (r: StepRecord) => void): Promise<RunResult>;
}

/**
 * Loads a study's data (writing the phantom files when missing), plans it and fingerprints what it would write: the
 * shared setup of a whole study run here and of one job run by another process (`mae-nnformer cell`, see cells.ts).
 */
export async function openStudy(
  profile: StudyProfile,
  options: StudyOptions,
  log: (line: string) => void = options.log ?? ((s: string) => console.log(s)),
): Promise<OpenedStudy> {
  const data = await loadStudyData(profile, log);
  log(
    `data: ${data.name}: ${data.unlabeled.length} unlabeled, ${data.train.length} train, ${data.val.length} val, ${data.test.length} test`,
  );
  if (data.train.length === 0)
    throw new Error(`data ${data.name}: the train split has no labelled cases; fine-tuning needs labels`);
  if (data.test.length === 0) throw new Error(`data ${data.name}: the test split is empty; the study needs test cases`);
  checkNoTestInSelection(data);

  const plan = studyPlan(profile, data, options.maeCheckpoint);
  log(
    `preprocessing (${options.maeCheckpoint && profile.preprocessing === "kit" ? "the pretrained encoder's" : profile.preprocessing}): spacing ${plan.spacing ? plan.spacing.join(" x ") + " mm" : "native"}`,
  );
  const numClasses = data.labelNames.length;
  const cropSize = profile.cropSize ?? registeredCrop(profile.models[0]);
  const ops = selectOps(tf.getBackend());
  if (options.maeCheckpoint) readMaeCheckpointInfo(options.maeCheckpoint); // a wrong file fails before any training

  // MAE initialisation exists only for nnFormer models; baselines run from scratch under the same budget.
  const cells = expandGrid({
    inits: profile.inits,
    models: profile.models,
    labelFractions: profile.labelFractions,
    seeds: profile.seeds,
  }).filter(
    (c) => (c.init !== "mae" || isMaePretrainable(c.model)) && seedsAt(profile, c.labelFraction).includes(c.seed),
  );
  const trainIds = data.train.map((c) => c.id);

  // What this run would write, described and fingerprinted, compared with what the folder holds (before any work).
  const described = describeStudy(profile, data, plan, numClasses, cropSize);
  const pretrainModels = profile.inits.includes("mae") ? profile.models.filter(isMaePretrainable) : [];
  // MAE pretraining per nnFormer model: once with seed 0, shared by every fine-tuning seed, or once per seed
  // (profile.pretrain.perSeed), keyed "model|seed".
  const pretrainSeeds = profile.pretrain.perSeed ? profile.seeds : [0];
  const maeKey = (model: string, seed: number) => `${model}|${profile.pretrain.perSeed ? seed : 0}`;
  const pretrains = options.maeCheckpoint
    ? []
    : pretrainModels.flatMap((name) =>
        pretrainSeeds.map((seed) => ({
          key: maeKey(name, seed),
          model: name,
          seed,
          dir: pretrainDir(options.out, name, profile.pretrain.perSeed ? seed : null),
          want: expected(
            `MAE pretraining of ${name}` + (profile.pretrain.perSeed ? ` (seed ${seed})` : ""),
            pretrainSettings(described, name, seed),
          ),
        })),
      );
  const userMae = options.maeCheckpoint ? `file ${fileFingerprint(options.maeCheckpoint)}` : null;
  const pretrainedFrom = (model: string, seed: number) =>
    userMae ?? pretrains.find((p) => p.key === maeKey(model, seed))!.want.fingerprint;
  const cellPlans = new Map<string, CellPlan>(
    cells.map((cell) => [
      cell.key,
      {
        key: cell.key,
        dir: runFolder(options.out, cell.key),
        want: expected(
          `cell ${cell.key}`,
          cellSettings(
            described,
            cell,
            selectLabelledSubset(trainIds, cell.labelFraction, cell.seed),
            cell.init === "mae" ? pretrainedFrom(cell.model, cell.seed) : null,
          ),
        ),
      },
    ]),
  );
  const checkFolder = () =>
    checkStudyFolder(options.out, [...cellPlans.values()], pretrains, { force: options.force, log });

  // the checkpoints pretrained by this process; a cell run alone uses the study's finished one
  const maeCheckpoints = new Map<string, string>();
  const pretrain = async (name: string, seed: number, onStep?: (r: StepRecord) => void) => {
    const job = pretrains.find((p) => p.key === maeKey(name, seed));
    if (!job) throw new Error(`the study has no MAE pretraining of ${name} for seed ${seed}`);
    const file = await pretrainOnce(
      profile,
      name,
      data,
      plan,
      numClasses,
      cropSize,
      options,
      log,
      job.want,
      seed,
      onStep,
    );
    maeCheckpoints.set(job.key, file);
    return file;
  };
  const maeCheckpointFor = (cell: StudyCell): string => {
    if (options.maeCheckpoint) return options.maeCheckpoint;
    const key = maeKey(cell.model, cell.seed);
    const here = maeCheckpoints.get(key);
    if (here) return here;
    const job = pretrains.find((p) => p.key === key)!;
    const file = path.join(job.dir, "mae_latest.safetensors");
    const step = fs.existsSync(file) ? readMaeCheckpointInfo(file).fitState?.step : undefined;
    if (step === undefined || step < profile.pretrain.steps)
      throw new Error(
        `${file} is ${step === undefined ? "missing" : `at step ${step} of ${profile.pretrain.steps}`}: the "mae" ` +
          `cells need the finished pretraining; run \`mae-nnformer cell --study ${options.out} --pretrain ${job.model} ` +
          `--seed ${job.seed}\` first`,
      );
    return file;
  };

  const train = prepareCases(data.train, plan);
  const val = prepareCases(data.val, plan);

  const runCell = async (cell: StudyCell, onStep?: (r: StepRecord) => void): Promise<RunResult> => {
    const tc = Date.now();
    const want = cellPlans.get(cell.key)!.want;
    const ids = selectLabelledSubset(trainIds, cell.labelFraction, cell.seed);
    const subset = train.filter((c) => ids.includes(c.id));
    const model = buildModel(
      cell.model,
      { inChannels: plan.channels, numClasses, cropSize, seed: cell.seed },
      profile.modelOverrides?.[cell.model],
    );
    try {
      let transferred = 0;
      if (cell.init === "mae") {
        transferred = transferEncoder(maeCheckpointFor(cell), nnFormerOf(model), {
          preprocessing: plan,
        }).transferred.length;
      } else if (cell.init !== "scratch") {
        throw new Error(`unknown initialisation "${cell.init}"; use "scratch" or "mae"`);
      }
      const run = await finetune({
        model,
        modelName: cell.model,
        ops,
        train: subset,
        val,
        numClasses,
        cropSize,
        evalClasses: data.evalClasses,
        preprocessing: plan,
        settings: finetuneAt(profile, cell.labelFraction),
        seed: cell.seed,
        dataParallel: options.dataParallel,
        pretrained: cell.init === "mae",
        dir: runFolder(options.out, cell.key),
        extra: { cell: cell.key, fingerprint: want.fingerprint, settings: want.settings },
        progress: options.progress,
        label: `${cell.init} ${Math.round(cell.labelFraction * 100)}% s${cell.seed}`,
        onStep: (rec) => {
          onStep?.(rec);
          return options.onStep?.(cell, rec);
        },
        log,
      });
      const metrics = await scoreTestCases(model, ops, data.test, plan, {
        cropSize,
        numClasses,
        classes: data.evalClasses,
        classNames: data.evalClasses.map((v) => data.labelNames[v]),
        overlap: profile.eval.overlap,
        mirror: profile.eval.mirror,
        hd95: profile.eval.hd95,
        batchSize: TEST_WINDOW_BATCH,
      });
      return {
        key: cell.key,
        init: cell.init,
        model: cell.model,
        labelFraction: cell.labelFraction,
        seed: cell.seed,
        backend: tf.getBackend(),
        wallTimeS: (Date.now() - tc) / 1000,
        steps: run.fit.step,
        curve: run.curve,
        test: metrics,
        labelledCases: ids,
        meta: {
          transferredTensors: transferred,
          profile: profile.name,
          data: data.name,
          params: model.numParams(),
          msPerStep: meanStepMs(run.stepMs),
          fingerprint: want.fingerprint,
          settings: want.settings,
          preprocessing: profile.preprocessing,
          pretraining:
            cell.init !== "mae"
              ? undefined
              : options.maeCheckpoint
                ? "given checkpoint"
                : profile.pretrain.perSeed
                  ? `per seed (seed ${cell.seed})`
                  : "shared (seed 0)",
          valCases: data.val.map((c) => c.id),
          testCases: data.test.map((c) => c.id),
        },
      };
    } finally {
      model.dispose();
    }
  };

  return {
    cells,
    checkFolder,
    pretrainJobs: pretrains.map((p) => ({ model: p.model, seed: p.seed })),
    pretrainFor: (cell) =>
      cell.init === "mae" && !options.maeCheckpoint
        ? { model: cell.model, seed: profile.pretrain.perSeed ? cell.seed : 0 }
        : undefined,
    pretrain,
    runCell,
  };
}

/** Sliding windows per forward pass when scoring test cases (4: about half the time of 1 on wasm for small crops). */
const TEST_WINDOW_BATCH = 4;

/** Mean training-step time, leaving out the first step (one-off warm-up) when there are others; NaN without steps. */
function meanStepMs(ms: number[]): number {
  const xs = ms.length > 1 ? ms.slice(1) : ms;
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** True for models whose encoder MAE can pretrain and transfer (a registry capability). */
function isMaePretrainable(name: string): boolean {
  return modelEntry(name).capabilities.maePretrainable;
}

/** The training crop of a registered model's preset. */
function registeredCrop(name: string): Vec3 {
  return [...(modelEntry(name).preset as { cropSize: Vec3 }).cropSize] as Vec3;
}

/**
 * The study's pretraining step on its own (CLI `pretrain`): plans preprocessing like the study, then pretrains, holding
 * the lock of `out` and checking its pretraining checkpoints against these settings first (as the study does).
 */
export async function pretrainOnceForCli(
  profile: StudyProfile,
  data: StudyData,
  out: string,
  options: { force?: boolean; log?: (line: string) => void } = {},
): Promise<string> {
  const log = options.log ?? ((s: string) => console.log(s));
  const name = profile.models.find(isMaePretrainable);
  if (!name) throw new Error(`pretraining needs an nnFormer model; the profile lists ${profile.models.join(", ")}`);
  assertWritableDir(out);
  const lock = acquireRunLock(out, { onStale: log });
  try {
    for (const f of removeLeftoverTempFiles(out)) log(`removed ${f}, left by an interrupted run`);
    const plan = studyPlan(profile, data);
    const cropSize = profile.cropSize ?? registeredCrop(name);
    const described = describeStudy(profile, data, plan, data.labelNames.length, cropSize);
    const want = expected(`MAE pretraining of ${name}`, pretrainSettings(described, name, 0));
    checkStudyFolder(out, [], [{ dir: pretrainDir(out, name, profile.pretrain.perSeed ? 0 : null), want }], {
      force: options.force,
      log,
    });
    return await pretrainOnce(profile, name, data, plan, data.labelNames.length, cropSize, { out }, log, want);
  } finally {
    lock.release();
  }
}

/**
 * The one plan of a study. With an MAE checkpoint given (or shipped) and the "kit" plan, it is the plan stored in the
 * checkpoint: the encoder learned on inputs normalised that way, and the scratch arm gets the same inputs. Otherwise
 * it is computed from the study's data (studyPreprocessing).
 */
export function studyPlan(profile: StudyProfile, data: StudyData, maeCheckpoint?: string): Preprocessing {
  if (!maeCheckpoint || profile.preprocessing !== "kit")
    return studyPreprocessing(data, profile.preprocessing, profile.spacing);
  const plan = readMaeCheckpointInfo(maeCheckpoint).preprocessing;
  const want = profile.spacing ?? null;
  const same = want === null ? plan.spacing === null : plan.spacing?.every((s, a) => Math.abs(s - want[a]) < 1e-6);
  if (!same)
    throw new Error(
      `${maeCheckpoint}: the encoder was pretrained at spacing ${plan.spacing ? plan.spacing.join(" x ") + " mm" : "native"}, ` +
        `but profile ${profile.name} asks for ${want ? want.join(" x ") + " mm" : "native"}; set "spacing" to the ` +
        `checkpoint's or pretrain afresh (--pretrain-afresh)`,
    );
  return plan;
}

/**
 * One plan for every arm of a study. "kit": native spacing, statistics over the body voxels of the unlabeled and
 * training images. "nnunet": nnU-Net's target spacing and CT statistics over the labelled foreground, both from the
 * training cases only (never val or test).
 */
export function studyPreprocessing(
  data: StudyData,
  kind: StudyProfile["preprocessing"] = "kit",
  spacing: StudyProfile["spacing"] = undefined,
): Preprocessing {
  if (kind === "nnunet") {
    return computePreprocessing(
      data.train.map((c) => c.image),
      data.modality,
      {
        spacing: "nnunet",
        foreground: data.train.map((c) => {
          if (!c.label)
            throw new Error(`training case ${c.id} has no label map; the nnunet plan needs labelled training cases`);
          return c.label;
        }),
        statsFrom: `labelled foreground of the ${data.train.length} training cases of ${data.name} (nnU-Net)`,
      },
    );
  }
  if (kind !== "kit") throw new Error(`preprocessing ${JSON.stringify(kind)}: use "kit" or "nnunet"`);
  return computePreprocessing(
    [...data.unlabeled, ...data.train].map((c) => c.image),
    data.modality,
    {
      statsFrom: `body voxels of the unlabeled + train images of ${data.name}`,
      ...(spacing ? { spacing: [...spacing] as Vec3 } : {}),
    },
  );
}

/**
 * Refuses a study whose validation split shares a case with the test split: the validation curves, best.safetensors
 * and anything else chosen on validation would then be chosen on test cases.
 */
export function checkNoTestInSelection(data: Pick<StudyData, "name" | "val" | "test" | "train">): void {
  const test = new Set(data.test.map((c) => c.id));
  const shared = data.val.filter((c) => test.has(c.id)).map((c) => c.id);
  if (shared.length) {
    throw new Error(
      `data ${data.name}: the val split shares ${shared.length} case(s) with the test split (${shared.slice(0, 4).join(", ")}${shared.length > 4 ? ", ..." : ""}); ` +
        `validation curves and best.safetensors would be chosen on test cases. Carve the val split from the training cases (the btcv-synapse manifest does)`,
    );
  }
  const inTrain = data.train.filter((c) => test.has(c.id)).map((c) => c.id);
  if (inTrain.length)
    throw new Error(`data ${data.name}: the train split shares case(s) ${inTrain.join(", ")} with the test split`);
}

/**
 * The settings of a study's MAE pretraining (the encoder config of the model at the study's crop, the profile's
 * pretrain block, the unlabeled split; held out: the val split, else the last training case). The study, the CLI
 * `pretrain` and the shipped encoder's reproduction test all pretrain through it.
 */
export function studyPretrainOptions(
  profile: StudyProfile,
  modelName: string,
  data: StudyData,
  plan: Preprocessing,
  numClasses: number,
  cropSize: Vec3,
  seed: number,
): PretrainOptions {
  const p = profile.pretrain;
  const model = buildModel(modelName, { inChannels: plan.channels, numClasses, cropSize, seed });
  const config = nnFormerOf(model).config;
  model.dispose();
  const heldOut = data.val.length ? data.val : data.train.slice(-1);
  return {
    model: config,
    mae: { mask: { mode: p.maskMode, ratio: p.maskRatio, ...(p.maskUnit ? { unit: p.maskUnit } : {}) } },
    data: {
      kind: "volumes",
      modality: data.modality,
      train: data.unlabeled.map((c) => c.image),
      heldOut: heldOut.map((c) => c.image),
    },
    preprocessing: plan,
    maxSteps: p.steps,
    batchSize: p.batchSize,
    lr: p.lr,
    evalEvery: p.evalEvery,
    seed,
  };
}

/** Folder of a pretraining: the shared one keeps its historical place; per-seed pretrainings get one folder each. */
function pretrainDir(out: string, model: string, seed: number | null): string {
  return seed === null ? path.join(out, "pretrain", model) : path.join(out, "pretrain", model, `seed${seed}`);
}

async function pretrainOnce(
  profile: StudyProfile,
  modelName: string,
  data: StudyData,
  plan: Preprocessing,
  numClasses: number,
  cropSize: Vec3,
  options: StudyOptions,
  log: (s: string) => void,
  want: { fingerprint: string; settings: unknown },
  seed = 0,
  onStep?: (r: StepRecord) => void,
): Promise<string> {
  const dir = pretrainDir(options.out, modelName, profile.pretrain.perSeed ? seed : null);
  const latest = path.join(dir, "mae_latest.safetensors");
  const p = profile.pretrain;
  // checkStudyFolder has compared the checkpoints here with `want` (same fingerprint, or discarded with --force)
  if (fs.existsSync(latest)) {
    const info = readMaeCheckpointInfo(latest);
    if (info.fitState && info.fitState.step >= p.steps) {
      log(`pretraining: reusing ${latest} (${info.fitState.step} steps)`);
      return latest;
    }
  }
  log(
    `pretraining MAE (${p.maskMode}, ratio ${p.maskRatio}, seed ${seed}) for ${p.steps} steps on ${data.unlabeled.length} unlabeled volumes`,
  );
  const r = await pretrainMae({
    ...studyPretrainOptions(profile, modelName, data, plan, numClasses, cropSize, seed),
    outDir: dir,
    resume: fs.existsSync(latest) ? latest : undefined,
    record: { fingerprint: want.fingerprint, settings: want.settings },
    onStep: (r) => {
      onStep?.(r);
      return options.onPretrainStep?.(r);
    },
    progress: options.progress,
  });
  const last = r.evals[r.evals.length - 1];
  if (last)
    log(
      `pretraining done: held-out reconstruction loss ${last.loss.toFixed(4)} vs ${last.meanBaseline.toFixed(4)} for predicting the mean`,
    );
  r.mae.dispose();
  return latest;
}

/**
 * Writes table.md, table.csv and report.html; returns the Markdown shown to the user. With more than one model it
 * adds the Table II analogue (test Dice per organ by model and init, with a bootstrap CI of the mean Dice) and the
 * cost per model (parameters, mean step time): in table.md, as table2.csv, and at the top of report.html.
 */
export function writeReports(
  results: RunResult[],
  out: string,
  profile: Pick<StudyProfile, "name" | "convergenceLevels"> & Partial<Pick<StudyProfile, "pretrain">>,
  extra: { maeCheckpoint?: string } = {},
): { markdown: string; reportFile: string; tableFile: string } {
  const names = { mae: "MAE", scratch: "scratch" };
  const table = studyTable(results, { by: ["model", "init", "labelFraction"] });
  const methods = { maeCheckpoint: extra.maeCheckpoint, pretrain: profile.pretrain };
  const methodsText = methodsSentences(results, methods);
  const parts = [
    ...(methodsText.length ? [`## Methods (${profile.name} profile)\n`, methodsText.join(" ") + "\n"] : []),
    `## Low-label study (${profile.name} profile): test Dice / HD95 over seeds\n`,
    toMarkdown(table),
  ];
  const multiModel = new Set(results.map((r) => r.model)).size > 1;
  const t2 = multiModel ? table2Rows(results) : [];
  const cost = multiModel ? modelCostRows(results) : [];
  const costFormat = { digits: { msPerStep: 0 } };
  if (multiModel) {
    const fractions = [...new Set(results.map((r) => r.labelFraction))]
      .sort((a, b) => a - b)
      .map(formatFraction)
      .join(", ");
    parts.unshift(
      `## Table II analogue (${profile.name} profile; labels ${fractions}): test Dice per organ, mean over runs (CI: t interval over runs)\n`,
      toMarkdown(t2),
      "\n## Parameters and training-step time per model\n",
      toMarkdown(cost, costFormat),
      "\n",
    );
  }
  const inits = new Set(results.map((r) => r.init));
  let power: string | undefined;
  if (inits.has("mae") && inits.has("scratch")) {
    const cmp = compareInits(results, { a: "mae", b: "scratch", metric: "dice", names });
    parts.push(
      "\n## MAE vs scratch (paired by seed)\n",
      toMarkdown(comparisonTableRows(cmp), { headers: comparisonHeaders("mae", "scratch", names) }),
    );
    power = powerNote(cmp, { a: "mae", b: "scratch", names });
    const conv = convergenceRatios(results, { a: "mae", b: "scratch", levels: profile.convergenceLevels });
    if (conv.length) {
      parts.push(
        "\n## Convergence (validation Dice; median steps to first reach each level)\n",
        toMarkdown(conv as object[], { headers: comparisonHeaders("mae", "scratch", names) }),
      );
    }
    const shared = sharedLevelConvergence(results, { a: "mae", b: "scratch" });
    if (shared.length) {
      parts.push(
        "\n## Convergence at levels both arms reach (shares of the lower arm's best median validation Dice)\n",
        toMarkdown(shared, { headers: comparisonHeaders("mae", "scratch", names) }),
      );
    }
  }
  const examples = readExamples(out, results);
  parts.push(
    "\n## Notes\n",
    [
      ...studyNotes(results),
      ...(power ? [power] : []),
      examples.figure ? `${examples.note} The figure is in report.html.` : examples.note,
    ]
      .map((n) => `- ${n}`)
      .join("\n") + "\n",
  );
  const markdown = parts.join("\n");
  const tableFile = path.join(out, "table.md");
  writeFileAtomic(tableFile, markdown + "\n");
  writeFileAtomic(path.join(out, "table.csv"), toCsv(table));
  if (multiModel) {
    const costByModel = new Map(cost.map((c) => [c.model, c]));
    writeFileAtomic(
      path.join(out, "table2.csv"),
      toCsv(
        t2.map((r) => {
          const c = costByModel.get(String(r.model));
          return { model: r.model, init: r.init, params: c?.params, msPerStep: c?.msPerStep, ...r };
        }),
      ),
    );
  }
  let html = htmlReport(results, {
    title: `Low-label study (${profile.name})`,
    a: "mae",
    b: "scratch",
    names,
    levels: profile.convergenceLevels,
    methods,
    examples,
  });
  if (multiModel) {
    const section = [
      "<h2>Table II analogue: test Dice per organ</h2>",
      toHtmlTable(t2),
      "<p>Mean over runs of each run&#39;s test mean Dice and per-organ Dice; CI: Student t interval over runs (n/a with one run).</p>",
      "<h2>Parameters and training-step time per model</h2>",
      toHtmlTable(cost, costFormat),
    ].join("\n");
    // before the report's first section (the plotly script above it is not searched), else at the end of the body
    const first = html.lastIndexOf("<h2>Test Dice and HD95");
    const at = first >= 0 ? first : html.lastIndexOf("</body>");
    html = `${html.slice(0, at)}${section}\n${html.slice(at)}`;
  }
  const reportFile = path.join(out, "report.html");
  writeFileAtomic(reportFile, html);
  return { markdown, reportFile, tableFile };
}
