// The public surface of mae-nnformer: what notebooks and users need, in pipeline order. Everything else is internal
// and imported by path (e.g. "./src/layers/fast/conv3d"), so it can change without breaking users.

// Runtime: backend selection, seeded randomness, atomic writes.
export { initBackend, describeBackend, backendReport, type BackendName } from "./runtime/backend";
export { makeRng, seedFrom, normal, randInt, type Rng } from "./runtime/random";
export type { Vec3 } from "./runtime/math";
export { writeFileAtomic, assertWritableDir } from "./runtime/files";

// Data: volumes, NIfTI, manifests, the phantom dataset, preprocessing.
export { numVoxels, type Volume, type Shape3, type Affine } from "./data/volume";
export { readNifti, writeNifti, readNiftiHeader, checkSameGrid } from "./data/nifti";
export {
  loadManifest,
  resolveManifest,
  listManifests,
  SPLIT_NAMES,
  type Manifest,
  type SplitName,
} from "./data/manifest";
export { generatePhantom, generatePhantoms, PHANTOM_LABELS, type PhantomConfig } from "./data/phantom";
export { loadCase, loadSplit, writePhantomDataset, type LoadedCase } from "./data/dataset";
export {
  computePreprocessing,
  applyPreprocessing,
  nnunetTargetSpacing,
  preprocessCase,
  predictionToSource,
  type Preprocessing,
} from "./data/preprocess";
export { AUGMENT_DEFAULT, AUGMENT_OFF, augment, type AugmentConfig } from "./data/augment";

// Layers: the op implementations every model runs on, and the parameter contract.
export { plainOps } from "./layers/plain_ops";
export { fastOps, selectOps } from "./layers/fast_ops";
export type { Ops } from "./layers/ops";
export { ParamStore, SpecList, countParams, paramTable, type ParamSpec, type ParamHolder } from "./layers/param_specs";

// Models: nnFormer (presets, plan, parameters, official weights), the baselines, the registry.
export {
  NnFormer,
  planNnFormer,
  checkNnFormerConfig,
  nnFormerParamSpecs,
  nnFormerParamTable,
  type NnFormerConfig,
  type NnFormerOutput,
} from "./models/nnformer";
export * from "./models/nnformer_presets";
export { NnFormerSegmentation, nnFormerOf } from "./models/nnformer_segmentation";
export { nnFormerForwardMacs, nnFormerStepFlops } from "./models/nnformer_flops";
export { importOfficialWeights, exportOfficialWeights, officialStateDict } from "./models/official_weights";
export { Unet3d, UNET3D_CPU, UNET3D_NNUNET, type Unet3dConfig } from "./models/unet3d";
export { Unetr, UNETR_CPU, UNETR_BTCV, type UnetrConfig } from "./models/unetr";
export { SwinUnetr, SWIN_UNETR_F12, SWIN_UNETR_F48, type SwinUnetrConfig } from "./models/swin_unetr";
export { TransUnet3d, TRANSUNET3D_CPU, TRANSUNET3D_BASE, type TransUnet3dConfig } from "./models/transunet3d";
export { mainLogits, type SegmentationModel } from "./models/types";
export {
  MODELS,
  MODEL_ALIASES,
  buildModel,
  modelEntry,
  modelNames,
  resolveModelName,
  loadTrainedModel,
  type ModelName,
} from "./registry";

// Checkpoints: one format with a kind (model, mae-pretraining, finetune).
export {
  readCheckpoint,
  saveCheckpoint,
  saveModelCheckpoint,
  restoreParams,
  configDiff,
  type Checkpoint,
  type CheckpointKind,
} from "./io/checkpoint";

// Losses and metrics.
export { diceCeLoss, deepSupervisionLoss } from "./losses/dice_ce";
export { diceScores, nanMean } from "./metrics/dice";
export {
  hd95,
  hd95Scores,
  HD95_DEFINITIONS,
  KIT_HD95,
  NNFORMER_HD95,
  NNFORMER_EVALUATED_LABELS,
  type Hd95Definition,
} from "./metrics/hd95";
export { detections, countDetections, formatDetections, meanDefined, type Detection } from "./metrics/detection";
export { scoreCase, summarizeScoredCases, type TestScores } from "./metrics/case_scores";
export { evaluateCase, summarizeCases, formatSummary, kitEvaluation, NNFORMER_EVAL } from "./metrics/summarize";

// Inference: sliding windows, evaluation, predicting with a checkpoint.
export { slidingWindowPredict, predictToNifti } from "./infer/sliding_window";
export { evaluateDice, scoreTestCases } from "./infer/evaluate";
export { predictFile, predictSplit, evaluatePredictions } from "./infer/predict";

// Training: the loop, optimizers and schedules, the segmentation task, the fine-tuning recipe.
export { fit, type FitState, type StepRecord, type TrainConfig } from "./train/fit";
export { Optimizer, SGD_NNUNET, ADAMW_DEFAULT, ADAMW_MAE } from "./train/optim";
export { learningRate, type Schedule } from "./train/schedule";
export { SegmentationTask, prepareCases, type PreparedCase } from "./train/segmentation";
export { finetune, finetuneTrainConfig, runFolder, type FinetuneSettings } from "./train/recipe";

// MAE: masking, the MAE model, pretraining, checkpoints, transfer into nnFormer.
export { drawMask, defaultMaskConfig, MASK_MODES, type MaskConfig, type MaskMode } from "./mae/masking";
export { MaeNnFormer, defaultMaeConfig, type MaeConfig } from "./mae/mae3d";
export { pretrainMae, type PretrainOptions } from "./mae/pretrain";
export { saveMaeCheckpoint, loadMaeCheckpoint, readMaeCheckpointInfo } from "./mae/checkpoint";
export { transferEncoder, type TransferReport } from "./mae/transfer";

// Studies: profiles, the low-label study, results and statistics.
export { getProfile, PROFILES, type StudyProfile } from "./study/profiles";
export { runLowLabelStudy, loadStudyData, studyPreprocessing, writeReports } from "./study/lowlabel";
export { readResults, type RunResult } from "./study/grid";
export {
  bootstrapCI,
  bcaCI,
  tCI,
  meanCI,
  formatInterval,
  holmFloors,
  INTERVAL_METHOD_TEXT,
  pairedComparison,
} from "./study/stats";

// Plots (notebooks).
export * from "./plots/index";
