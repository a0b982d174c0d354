// Model name -> typed builder. Names carry the settings that differ (nnformer-e24-16x32x32 = embed 24 on 16×32×32
// crops; swin-unetr-f12 vs -f48); the old nnFormer names are kept as aliases (MODEL_ALIASES). Every builder takes the
// data-dependent fields (channels, classes, crop) and a seed, and returns a SegmentationModel. Each entry says what
// the model can do (capabilities), so callers never decide by name prefix.

import type { SegmentationModel } from "./models/types";
import type { Preprocessing } from "./data/preprocess";
import {
  NNFORMER_UNNAMED,
  checkKind,
  readCheckpoint,
  restoreParams,
  type Checkpoint,
  type CheckpointInfo,
} from "./io/checkpoint";
import {
  NNFORMER_E12_16X32X32,
  NNFORMER_E24_16X32X32,
  NNFORMER_E24_32X64X64,
  NNFORMER_E48_64X64X64,
  NNFORMER_SYNAPSE,
  NnFormer,
  type NnFormerConfig,
} from "./models/nnformer";
import { NnFormerSegmentation } from "./models/nnformer_segmentation";
import { UNET3D_CPU, UNET3D_MICRO, UNET3D_NNUNET, Unet3d, type Unet3dConfig } from "./models/unet3d";
import { UNETR_BTCV, UNETR_CPU, UNETR_MICRO, Unetr, type UnetrConfig } from "./models/unetr";
import { SWIN_UNETR_F12, SWIN_UNETR_F48, SWIN_UNETR_MICRO, SwinUnetr, type SwinUnetrConfig } from "./models/swin_unetr";
import {
  TRANSUNET3D_BASE,
  TRANSUNET3D_CPU,
  TRANSUNET3D_MICRO,
  TransUnet3d,
  type TransUnet3dConfig,
} from "./models/transunet3d";
import type { Vec3 } from "./runtime/math";

/** What every builder needs from the data and the run. */
export interface BuildOptions {
  inChannels: number;
  numClasses: number;
  /** Training crop [D, H, W]. */
  cropSize: Vec3;
  seed: number;
}

/** Builds a model named `name`; `overrides` replaces preset fields other than the BuildOptions ones. */
export type ModelBuilder<C = unknown> = (
  opts: BuildOptions,
  overrides?: Partial<C>,
  name?: string,
) => SegmentationModel<C>;

/** What a registered model can do beyond segmentation. */
export interface ModelCapabilities {
  /** Has an nnFormer encoder that MAE can pretrain and transfer (nnFormerOf gives it). */
  maePretrainable: boolean;
}

export interface RegistryEntry<C = unknown> {
  description: string;
  capabilities: ModelCapabilities;
  /** The preset the builder starts from (its inChannels/numClasses/cropSize are the defaults to show). */
  preset: C;
  build: ModelBuilder<C>;
  /** Builds from a complete config (as stored in a checkpoint), weights zero until loaded. */
  fromConfig: (config: C, name: string) => SegmentationModel<C>;
  /** Unit-test size: a crop and preset overrides that keep the structure but run in well under a second. */
  tiny: { cropSize: Vec3; overrides: Partial<C> };
}

type Common = { inChannels: number; numClasses: number; cropSize: Vec3 };

function entry<C extends Common>(
  registeredName: string,
  description: string,
  preset: C,
  tiny: C,
  make: (c: C, seed: number, name: string) => SegmentationModel<C>,
  capabilities: ModelCapabilities = { maePretrainable: false },
): RegistryEntry<C> {
  const { inChannels: _i, numClasses: _n, cropSize, ...rest } = tiny;
  return {
    description,
    capabilities,
    preset,
    tiny: { cropSize, overrides: rest as unknown as Partial<C> },
    fromConfig: (config, name) => make(config, 0, name),
    build: (opts, overrides = {}, name = registeredName) =>
      make(
        {
          ...preset,
          ...overrides,
          inChannels: opts.inChannels,
          numClasses: opts.numClasses,
          cropSize: opts.cropSize,
        },
        opts.seed,
        name,
      ),
  };
}

const nnFormer = (c: NnFormerConfig, seed: number, name: string) =>
  new NnFormerSegmentation(name, new NnFormer(c, { seed }));
const unet3d = (c: Unet3dConfig, seed: number, name: string) => new Unet3d(c, { seed, name });
const unetr = (c: UnetrConfig, seed: number, name: string) => new Unetr(c, { seed, name });
const swinUnetr = (c: SwinUnetrConfig, seed: number, name: string) => new SwinUnetr(c, { seed, name });
const transUnet3d = (c: TransUnet3dConfig, seed: number, name: string) => new TransUnet3d(c, { seed, name });

const NNFORMER = { maePretrainable: true };

/** Every registered model, by its sized name. */
export const MODELS = {
  "nnformer-e48-64x64x64": entry(
    "nnformer-e48-64x64x64",
    "nnFormer, Synapse structure at embed 48, crop 64x64x64 (CPU benchmark)",
    NNFORMER_E48_64X64X64,
    NNFORMER_E12_16X32X32,
    nnFormer,
    NNFORMER,
  ),
  "nnformer-e24-32x64x64": entry(
    "nnformer-e24-32x64x64",
    "nnFormer, Synapse structure at embed 24, crop 32x64x64",
    NNFORMER_E24_32X64X64,
    NNFORMER_E12_16X32X32,
    nnFormer,
    NNFORMER,
  ),
  "nnformer-e24-16x32x32": entry(
    "nnformer-e24-16x32x32",
    "nnFormer, Synapse structure at embed 24, crop 16x32x32 (the quick CPU study)",
    NNFORMER_E24_16X32X32,
    NNFORMER_E12_16X32X32,
    nnFormer,
    NNFORMER,
  ),
  "nnformer-e12-16x32x32": entry(
    "nnformer-e12-16x32x32",
    "nnFormer, Synapse structure at embed 12, crop 16x32x32 (smoke tests)",
    NNFORMER_E12_16X32X32,
    NNFORMER_E12_16X32X32,
    nnFormer,
    NNFORMER,
  ),
  "nnformer-synapse": entry(
    "nnformer-synapse",
    "nnFormer, official Synapse network (embed 192, crop 64x128x128, 150M)",
    NNFORMER_SYNAPSE,
    NNFORMER_E12_16X32X32,
    nnFormer,
    NNFORMER,
  ),
  "unet3d-cpu": entry("unet3d-cpu", "nnU-Net-style U-Net, 8-16-32-64 channels", UNET3D_CPU, UNET3D_MICRO, unet3d),
  "unet3d-nnunet": entry(
    "unet3d-nnunet",
    "nnU-Net-style U-Net, 32…320 channels, 6 stages",
    UNET3D_NNUNET,
    UNET3D_MICRO,
    unet3d,
  ),
  "unetr-cpu": entry("unetr-cpu", "UNETR, 4 blocks of width 192, decoder width 8", UNETR_CPU, UNETR_MICRO, unetr),
  "unetr-btcv": entry(
    "unetr-btcv",
    "UNETR as in the paper's BTCV setting (ViT-B/16, feature 16)",
    UNETR_BTCV,
    UNETR_MICRO,
    unetr,
  ),
  "swin-unetr-f12": entry(
    "swin-unetr-f12",
    "Swin UNETR, feature 12, window 4 (CPU)",
    SWIN_UNETR_F12,
    SWIN_UNETR_MICRO,
    swinUnetr,
  ),
  "swin-unetr-f48": entry(
    "swin-unetr-f48",
    "Swin UNETR, feature 48, window 7 (paper)",
    SWIN_UNETR_F48,
    SWIN_UNETR_MICRO,
    swinUnetr,
  ),
  "transunet3d-cpu": entry(
    "transunet3d-cpu",
    "TransUNet-3D (our adaptation), width 192, 4 blocks",
    TRANSUNET3D_CPU,
    TRANSUNET3D_MICRO,
    transUnet3d,
  ),
  "transunet3d-base": entry(
    "transunet3d-base",
    "TransUNet-3D (our adaptation), ViT-B widths",
    TRANSUNET3D_BASE,
    TRANSUNET3D_MICRO,
    transUnet3d,
  ),
};

export type ModelName = keyof typeof MODELS;

/**
 * Old names, still accepted everywhere a model name is (profiles, --models, checkpoints, results keys keep the name
 * they were given). "nnformer-tiny" (embed 48) was larger than "nnformer-small" (embed 24), hence the sized names.
 */
export const MODEL_ALIASES: Record<string, ModelName> = {
  "nnformer-tiny": "nnformer-e48-64x64x64",
  "nnformer-small": "nnformer-e24-32x64x64",
  "nnformer-quick": "nnformer-e24-16x32x32",
  "nnformer-micro": "nnformer-e12-16x32x32",
};

/** Registered names in table order (aliases not included). */
export function modelNames(): ModelName[] {
  return Object.keys(MODELS) as ModelName[];
}

/** The registered name for a name or alias; throws listing the names for an unknown one. */
export function resolveModelName(name: string): ModelName {
  if (name in MODELS) return name as ModelName;
  const alias = MODEL_ALIASES[name];
  if (alias) return alias;
  throw new Error(
    `unknown model "${name}"; registered: ${modelNames().join(", ")} (aliases: ${Object.keys(MODEL_ALIASES).join(", ")})`,
  );
}

/** The registry entry of a name or alias. */
export function modelEntry(name: string): RegistryEntry<any> {
  return (MODELS as Record<ModelName, RegistryEntry<any>>)[resolveModelName(name)];
}

/**
 * Builds a registered model (name or alias; the model keeps the name it was asked for). `overrides` replaces preset
 * fields other than the BuildOptions ones (e.g. a registry entry's `tiny.overrides` for smoke runs).
 */
export function buildModel(name: string, opts: BuildOptions, overrides?: object): SegmentationModel {
  return modelEntry(name).build(opts, overrides, name);
}

/**
 * Builds the model a checkpoint of kind "finetune" or "model" was saved from (its registry name and full config) and
 * loads its weights. Refuses other kinds, saying what they are and where they belong.
 */
export function loadTrainedModel(src: string | Uint8Array | Checkpoint): {
  model: SegmentationModel;
  info: CheckpointInfo;
  /** The fields every model config has (channels, classes, training crop). */
  config: Common;
  /** The intensity preprocessing of training, or null when the file records none. */
  preprocessing: Preprocessing | null;
} {
  const ckpt = typeof src === "object" && "info" in src ? src : readCheckpoint(src);
  checkKind(ckpt, ["finetune", "model"], "a trained model (predict --checkpoint, loadTrainedModel)");
  const { model: name, config } = ckpt.info;
  const model =
    name === NNFORMER_UNNAMED ? nnFormer(config as NnFormerConfig, 0, name) : modelEntry(name).fromConfig(config, name);
  try {
    restoreParams(ckpt, model.params, { config: model.config, what: `model "${name}"` });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return {
    model,
    info: ckpt.info,
    config: model.config as Common,
    preprocessing: (ckpt.info.preprocessing ?? null) as Preprocessing | null,
  };
}
