// Demo design probe: fine-tunes one network on the phantom's train split and scores the VALIDATION split only (never
// test), printing the validation curve, the final per-organ validation Dice and the wall time as one JSON line. The
// demo's choices (crop, network size, steps, learning rate, batch, sampling, augmentation, pretraining) were made
// with it; README "Demo design" lists the commands and the figures.
//
//   npx tsx scripts/design/probe.ts --shape 64x64x64 --crop 16x32x32 --embed 24 --steps 600 --lr 3e-3 --train 8
//   npx tsx scripts/design/probe.ts ... --mae path/to/mae.safetensors --layer-decay 0.75
import * as tf from "@tensorflow/tfjs";
import { Command } from "commander";
import { initBackendWithThreads } from "../../src/runtime/threads";
import { loadStudyData, studyPreprocessing } from "../../src/study/lowlabel";
import { getProfile } from "../../src/study/profiles";
import { prepareCases } from "../../src/train/segmentation";
import { finetune, type FinetuneSettings } from "../../src/train/recipe";
import { buildModel } from "../../src/registry";
import { selectOps } from "../../src/layers/fast_ops";
import { evaluateDice, scoreTestCases } from "../../src/infer/evaluate";
import { transferEncoder } from "../../src/mae/transfer";
import { readMaeCheckpointInfo } from "../../src/mae/checkpoint";
import { nnFormerOf } from "../../src/models/nnformer_segmentation";
import type { Vec3 } from "../../src/runtime/math";
import { generatePhantom } from "../../src/data/phantom";

const vec3 = (s: string): Vec3 => s.split("x").map(Number) as Vec3;

async function main(): Promise<void> {
  const o = new Command()
    .option("--shape <DxHxW>", "phantom grid", "64x64x64")
    .option("--crop <DxHxW>", "training crop", "16x32x32")
    .option("--model <name>", "registry name", "nnformer-quick")
    .option("--embed <n>", "embedding width", "24")
    .option("--steps <n>", "fine-tuning steps", "600")
    .option("--lr <x>", "peak learning rate", "3e-3")
    .option("--batch <n>", "crops per step", "2")
    .option("--optimizer <name>", "adamw or sgd", "adamw")
    .option("--fg <x>", "foreground-centred crop fraction", "0.5")
    .option("--augment", "nnU-Net-style augmentation", false)
    .option("--warmup <x>", "warm-up fraction", "0.05")
    .option("--train <n>", "labelled training cases (the first n of the train split)", "8")
    .option("--seed <n>", "seed", "0")
    .option("--eval-every <n>", "validation every n steps", "100")
    .option("--overlap <x>", "final validation sliding-window overlap", "0.5")
    .option("--mae <file>", "start the encoder from this MAE checkpoint")
    .option("--plan-from <file>", "use this MAE checkpoint's preprocessing plan (default with --mae)")
    .option("--layer-decay <x>", "layer-wise lr decay for the pretrained encoder")
    .option("--spacing <DxHxW>", "plan target spacing in mm (default: native)")
    .option("--native", "also score validation on each case's own grid (as the study scores test)", false)
    .option("--over <json>", "more preset overrides, e.g. '{\"patchSize\":[2,2,2]}'", "{}")
    .option("--train-dice <n>", "also score the first n labelled training cases (under- or overfitting?)", "0")
    .option("--tag <s>", "label of the output line", "")
    .parse()
    .opts();
  await initBackendWithThreads(1);
  const shape = vec3(o.shape);
  const crop = vec3(o.crop);
  const profile = getProfile("quick");
  // the manifest's order of splits (24 unlabeled, 8 train, 4 val), generated in memory at the probed grid
  profile.data = { kind: "phantom-memory", seed: 0, shape, unlabeled: 24, train: 8, val: 4, test: 0 };
  const data = await loadStudyData(profile);
  // a pretrained encoder brings its own plan (the study does the same); --plan-from takes it for a scratch run
  const planFrom = o.planFrom ?? o.mae;
  const plan = planFrom
    ? readMaeCheckpointInfo(planFrom).preprocessing
    : { ...studyPreprocessing(data, "kit"), spacing: o.spacing ? vec3(o.spacing) : null };
  // more than the manifest's 8 training cases: phantoms 56, 57, ... (after the manifest's test cases 36..55)
  const extra = Array.from({ length: Math.max(0, Number(o.train) - 8) }, (_, i) => {
    const p = generatePhantom(0, 56 + i, { shape });
    return { id: `phantom_${56 + i}`, image: p.image, label: p.label };
  });
  const train = prepareCases([...data.train, ...extra].slice(0, Number(o.train)), plan);
  const val = prepareCases(data.val, plan);
  const numClasses = data.labelNames.length;
  const seed = Number(o.seed);
  const model = buildModel(
    o.model,
    { inChannels: 1, numClasses, cropSize: crop, seed },
    {
      embedDim: Number(o.embed),
      ...JSON.parse(o.over),
    },
  );
  if (o.mae) transferEncoder(o.mae, nnFormerOf(model), { preprocessing: plan });
  const ops = selectOps(tf.getBackend());
  const settings: FinetuneSettings = {
    steps: Number(o.steps),
    batchSize: Number(o.batch),
    optimizer: o.optimizer,
    lr: Number(o.lr),
    warmupFraction: Number(o.warmup),
    evalEvery: Number(o.evalEvery),
    augment: o.augment,
    foregroundFraction: Number(o.fg),
    layerDecay: o.layerDecay === undefined ? undefined : Number(o.layerDecay),
  };
  const t0 = Date.now();
  const run = await finetune({
    model,
    modelName: o.model,
    ops,
    train,
    val,
    numClasses,
    cropSize: crop,
    evalClasses: data.evalClasses,
    preprocessing: plan,
    settings,
    seed,
    pretrained: Boolean(o.mae),
    progress: false,
  });
  const trainS = (Date.now() - t0) / 1000;
  const final = await evaluateDice(model, ops, val, {
    cropSize: crop,
    numClasses,
    classes: data.evalClasses,
    overlap: Number(o.overlap),
  });
  const native = o.native
    ? await scoreTestCases(model, ops, data.val, plan, {
        cropSize: crop,
        numClasses,
        classes: data.evalClasses,
        classNames: data.evalClasses.map((v) => data.labelNames[v]),
        overlap: Number(o.overlap),
        hd95: "medpy",
      })
    : null;
  const trainCases = train.slice(0, Number(o.trainDice));
  const trainFit = trainCases.length
    ? await evaluateDice(model, ops, trainCases, {
        cropSize: crop,
        numClasses,
        classes: data.evalClasses,
        overlap: Number(o.overlap),
      })
    : null;
  const line = {
    tag: o.tag,
    args: { ...o },
    params: model.numParams(),
    trainS: Math.round(trainS),
    msPerStep: Math.round((trainS * 1000) / settings.steps),
    evalS: Math.round((Date.now() - t0) / 1000 - trainS),
    curve: run.curve.map((p) => [p.step, Number(p.valDice.toFixed(3)), Number(p.trainLoss.toFixed(3))]),
    valDice: Number(final.mean.toFixed(3)),
    perOrgan: final.perClass.map((d) => Number(d.toFixed(2))),
    trainDice: trainFit ? Number(trainFit.mean.toFixed(3)) : undefined,
    trainPerOrgan: trainFit ? trainFit.perClass.map((d) => Number(d.toFixed(2))) : undefined,
    nativeDice: native ? Number(native.meanDice.toFixed(3)) : undefined,
    nativePerOrgan: native ? Object.values(native.perClassDice).map((d) => Number(d.toFixed(2))) : undefined,
  };
  console.log(JSON.stringify(line));
  model.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
