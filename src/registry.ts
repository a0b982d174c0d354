// Model name → typed builder. Names carry the settings that differ (swin-unetr-f12 vs -f48); every builder takes the
// data-dependent fields (channels, classes, crop) and a seed, and returns a SegmentationModel.
import type * as tf from "@tensorflow/tfjs";
import type { Triple } from "./layers/ops";
import type { SegmentationForwardOptions, SegmentationModel } from "./models/types";
import {
  NNFORMER_MICRO,
  NNFORMER_QUICK,
  NNFORMER_SMALL,
  NNFORMER_SYNAPSE,
  NNFORMER_TINY,
  NnFormer,
  type NnFormerConfig,
} from "./models/nnformer";
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

/** What every builder needs from the data and the run. */
export interface BuildOptions {
  inChannels: number;
  numClasses: number;
  /** Training crop [D, H, W]. */
  cropSize: Triple;
  seed: number;
}

/** Builds a model; `overrides` replaces preset fields other than the BuildOptions ones. */
export type ModelBuilder<C = unknown> = (opts: BuildOptions, overrides?: Partial<C>) => SegmentationModel<C>;

export interface RegistryEntry<C = unknown> {
  description: string;
  /** The preset the builder starts from (its inChannels/numClasses/cropSize are the defaults to show). */
  preset: C;
  build: ModelBuilder<C>;
  /** Unit-test size: a crop and preset overrides that keep the structure but run in well under a second. */
  tiny: { cropSize: Triple; overrides: Partial<C> };
}

type Common = { inChannels: number; numClasses: number; cropSize: Triple };

function entry<C extends Common>(
  name: string,
  description: string,
  preset: C,
  tiny: C,
  make: (c: C, seed: number, name: string) => SegmentationModel<C>,
): RegistryEntry<C> {
  const { inChannels: _i, numClasses: _n, cropSize, ...rest } = tiny;
  return {
    description,
    preset,
    tiny: { cropSize, overrides: rest as unknown as Partial<C> },
    build: (opts, overrides = {}) =>
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

/**
 * nnFormer as a SegmentationModel (nnformer.ts returns {logits, aux} and has no name): forward gives the logits, or
 * [full, ½, ¼] with deep supervision.
 */
export class NnFormerSegmentation implements SegmentationModel<NnFormerConfig> {
  constructor(
    readonly name: string,
    readonly net: NnFormer,
  ) {}
  get config(): NnFormerConfig {
    return this.net.config;
  }
  numParams(): number {
    return this.net.numParams();
  }
  forward(x: tf.Tensor5D, opts: SegmentationForwardOptions): tf.Tensor5D | tf.Tensor5D[] {
    const out = this.net.forward(x, { ops: opts.ops, training: opts.training, rng: opts.rng });
    return out.aux.length ? [out.logits, ...out.aux] : out.logits;
  }
  trainableVariables(): tf.Variable[] {
    return this.net.trainableVariables();
  }
  dispose(): void {
    this.net.dispose();
  }
}

const nnFormer = (c: NnFormerConfig, seed: number, name: string) =>
  new NnFormerSegmentation(name, new NnFormer(c, { seed }));
const unet3d = (c: Unet3dConfig, seed: number, name: string) => new Unet3d(c, { seed, name });
const unetr = (c: UnetrConfig, seed: number, name: string) => new Unetr(c, { seed, name });
const swinUnetr = (c: SwinUnetrConfig, seed: number, name: string) => new SwinUnetr(c, { seed, name });
const transUnet3d = (c: TransUnet3dConfig, seed: number, name: string) => new TransUnet3d(c, { seed, name });

/** Every registered model. */
export const MODELS = {
  "nnformer-tiny": entry(
    "nnformer-tiny",
    "nnFormer, Synapse structure at embed 48 (CPU benchmark)",
    NNFORMER_TINY,
    NNFORMER_MICRO,
    nnFormer,
  ),
  "nnformer-small": entry(
    "nnformer-small",
    "nnFormer, Synapse structure at embed 24, crop 32x64x64 (quick study)",
    NNFORMER_SMALL,
    NNFORMER_MICRO,
    nnFormer,
  ),
  "nnformer-quick": entry(
    "nnformer-quick",
    "nnFormer, Synapse structure at embed 24, crop 16x32x32 (the quick CPU study)",
    NNFORMER_QUICK,
    NNFORMER_MICRO,
    nnFormer,
  ),
  "nnformer-micro": entry(
    "nnformer-micro",
    "nnFormer, Synapse structure at embed 12, crop 16x32x32 (smoke tests)",
    NNFORMER_MICRO,
    NNFORMER_MICRO,
    nnFormer,
  ),
  "nnformer-synapse": entry(
    "nnformer-synapse",
    "nnFormer, official Synapse network (150M)",
    NNFORMER_SYNAPSE,
    NNFORMER_MICRO,
    nnFormer,
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

/** Registered names in table order. */
export function modelNames(): ModelName[] {
  return Object.keys(MODELS) as ModelName[];
}

/**
 * Builds a registered model; throws listing the names for an unknown one. `overrides` replaces preset fields other
 * than the BuildOptions ones (e.g. a registry entry's `tiny.overrides` for smoke runs).
 */
export function buildModel(name: string, opts: BuildOptions, overrides?: object): SegmentationModel {
  const e = (MODELS as Record<string, RegistryEntry<any>>)[name];
  if (!e) throw new Error(`unknown model "${name}"; registered: ${modelNames().join(", ")}`);
  return e.build(opts, overrides);
}
