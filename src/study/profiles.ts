// Study profiles: everything a low-label study needs to know, in one typed object per scale.
//   smoke: seconds; for tests and notebook runs in CI (tiny phantoms in memory, micro network).
//   quick: the default demo on a 2-core CPU (phantom dataset on disk, embed-24 nnFormer on 16x32x32 crops, 20 test
//          phantoms); about 9 minutes with the earlier 4 test phantoms, a few more with 20.
//   paper: the official configuration and schedule, for GPU users with real data (days on a GPU).
//   table2: the paper's Table II comparison (nnFormer vs the baselines, full labels) at CPU sizes and one shared crop.
//   table2-smoke: the same grid at unit-test sizes, for tests and the notebook's smoke run.

import * as fs from "fs";
import * as path from "path";
import { modelEntry } from "../registry";
import type { Hd95Definition } from "../metrics/hd95";
import type { Vec3 } from "../runtime/math";
import type { FinetuneSettings } from "../train/recipe";

export type DataSource =
  /** Files described by a manifest (the phantom manifest is written by the kit when missing). */
  | { kind: "manifest"; manifest: string; dataRoot?: string }
  /** Phantoms generated in memory, split by count (no files). */
  | {
      kind: "phantom-memory";
      seed: number;
      shape: Vec3;
      unlabeled: number;
      train: number;
      val: number;
      test: number;
    };

export interface StudyProfile {
  name: string;
  data: DataSource;
  /** Registry names of the compared models; the "mae" arm runs for the nnFormer ones (the encoder MAE pretrains). */
  models: string[];
  /** Training crop shared by every model (default: the first model's preset crop). */
  cropSize?: [number, number, number];
  /**
   * Preset fields to override per model name, passed to buildModel (e.g. a registry entry's `tiny.overrides` for smoke
   * runs). Only fine-tuning uses them; MAE pretraining builds the nnFormer preset as registered.
   */
  modelOverrides?: Record<string, object>;
  /**
   * The preprocessing plan. "kit": native spacing, CT statistics over the body voxels (HU > -500) of the unlabeled
   * and training images. "nnunet" (the paper plan): target spacing by nnU-Net's rule from the training cases (median,
   * 10th percentile on an anisotropic axis), CT statistics over the labelled foreground of the training cases; images
   * are resampled trilinearly, labels by nearest neighbour, and test predictions go back to each case's own grid
   * (through the class probabilities) before they are scored.
   */
  preprocessing: "kit" | "nnunet";
  /**
   * Target spacing of the "kit" plan in mm [D, H, W] (default: each case's own). Images are resampled trilinearly,
   * labels by nearest neighbour, and test predictions go back to each case's own grid before they are scored.
   */
  spacing?: [number, number, number];
  /** Initialisations to compare: "scratch", "mae". */
  inits: string[];
  labelFractions: number[];
  seeds: number[];
  /**
   * Budget per label fraction (key: the fraction as written in labelFractions, e.g. "1" or "0.125"): run only the
   * first `seeds` seeds there, and fine-tune for `steps` steps instead of finetune.steps. The same for every
   * initialisation (arms are never budgeted differently). Default: every seed, finetune.steps.
   */
  perFraction?: Record<string, { seeds?: number; steps?: number }>;
  pretrain: {
    steps: number;
    batchSize: number;
    lr: number;
    maskRatio: number;
    maskMode: "sparse" | "simmim" | "compact";
    /** Mask-unit size in voxels [D, H, W] (default: embedding patch × stage-0 window). */
    maskUnit?: [number, number, number];
    /** Evaluate the held-out reconstruction every N steps (0: end only). */
    evalEvery: number;
    /**
     * true: one MAE pretraining per fine-tuning seed (pretraining seed = that seed), so seed-level tests include
     * pretraining variance. false: one pretraining (seed 0) shared by every seed, which leaves that variance out; the
     * report says which.
     */
    perSeed: boolean;
    /**
     * A pretrained MAE checkpoint shipped with the kit (path relative to the kit's root). When set, the study's "mae"
     * arm starts from it instead of pretraining (`--pretrain-afresh` pretrains with the settings above instead), and
     * every arm uses the preprocessing plan stored in it, so both arms see the same inputs as the encoder did.
     */
    shipped?: string;
  };
  /** Fine-tuning of every arm; layerDecay applies to the pretrained encoder of the "mae" arm. */
  finetune: FinetuneSettings;
  /** Validation Dice levels for the convergence table (steps to first reach each). */
  convergenceLevels: number[];
  eval: {
    /** Sliding-window overlap on test volumes. */
    overlap: number;
    mirror: boolean;
    /** HD95 definition of the test scores: "medpy" (the official evaluation's) or "monai" (metrics/hd95.ts). */
    hd95: Hd95Definition;
  };
}

/** The baselines of the Table II comparison at CPU sizes. */
const TABLE2_BASELINES = ["unet3d-cpu", "unetr-cpu", "swin-unetr-f12", "transunet3d-cpu"];

/** The models of the Table II comparison at CPU sizes: nnFormer and the four baselines. */
export const TABLE2_MODELS = ["nnformer-small", ...TABLE2_BASELINES];

/** The Table II grid at unit-test size: nnformer-micro, the baselines at their registry `tiny` overrides. */
const TABLE2_SMOKE_MODELS = ["nnformer-micro", ...TABLE2_BASELINES];

/** A profile that differs from `base` in the given fields (nested objects copied, never shared). */
function derive(base: StudyProfile, changes: Partial<StudyProfile> & { name: string }): StudyProfile {
  return { ...JSON.parse(JSON.stringify(base)), ...changes };
}

const SMOKE: StudyProfile = {
  name: "smoke",
  data: { kind: "phantom-memory", seed: 0, shape: [16, 32, 32], unlabeled: 3, train: 2, val: 1, test: 1 },
  models: ["nnformer-micro"],
  preprocessing: "kit",
  inits: ["scratch", "mae"],
  labelFractions: [0.5, 1],
  seeds: [0],
  pretrain: { steps: 2, batchSize: 1, lr: 3e-4, maskRatio: 0.75, maskMode: "sparse", evalEvery: 0, perSeed: false },
  finetune: {
    steps: 2,
    batchSize: 1,
    optimizer: "adamw",
    lr: 3e-3,
    warmupFraction: 0,
    evalEvery: 1,
    augment: false,
    foregroundFraction: 0.5,
  },
  convergenceLevels: [0.05, 0.1],
  eval: { overlap: 0, mirror: false, hd95: "medpy" },
};

/** Pretraining steps of the shipped encoder. */
const ENCODER_STEPS = 6000;

// The demo. Every choice below was made on the validation split (4 phantoms, never a test case) with
// scripts/design/probe.ts; README "Demo design" lists each probe's command and figures.
const QUICK: StudyProfile = {
  name: "quick",
  data: { kind: "manifest", manifest: "phantom" },
  models: ["nnformer-quick"],
  // the quick network on 16x32x32 crops at 6 x 8 x 8 mm (the 64^3 phantoms at 3 x 6 x 6 mm resampled to 32x48x48):
  // validation Dice 0.50 after 600 steps against 0.30 at the native spacing, at the same cost per step
  cropSize: [16, 32, 32],
  preprocessing: "kit",
  spacing: [6, 8, 8],
  inits: ["scratch", "mae"],
  // 1 of the 32 labelled training cases, and all 32: 6 seeds at the lowest fraction (the paired test's unit; with 5
  // pairs the exact tests cannot go below p = 0.0625, whatever the data), 1 at
  // the largest (where the budget goes into steps instead: 32 cases keep improving past 800 steps, 1 case stops
  // improving after 200-250)
  labelFractions: [1 / 32, 1],
  seeds: [0, 1, 2, 3, 4, 5],
  perFraction: { "1": { seeds: 1, steps: 800 } },
  // The "mae" arm starts from the shipped encoder (pretrained/nnformer-quick-mae, see its MODEL_CARD.md: the "encoder"
  // profile below, hours of CPU). --pretrain-afresh pretrains here instead, with these settings on the manifest's 24
  // unlabeled phantoms: 4x8x8-voxel mask units, 64 per 16x32x32 crop (the default patch x window unit would leave 8);
  // one pretraining shared by every seed, so seed-level tests leave out pretraining variance (the report says so).
  pretrain: {
    steps: 400,
    batchSize: 2,
    lr: 1e-3,
    maskRatio: 0.75,
    maskMode: "sparse",
    maskUnit: [4, 8, 8],
    evalEvery: 200,
    perSeed: false,
    shipped: "pretrained/nnformer-quick-mae/mae.safetensors",
  },
  // No augmentation: it slows learning at these budgets (validation Dice 0.37 with, 0.53 without, 8 cases, 800
  // steps; earlier at 300 steps, 64^3: 0.073 and 0.052 with, 0.178 and 0.138 without). The paper profile keeps
  // nnU-Net's augmentation.
  finetune: {
    steps: 250,
    batchSize: 2,
    optimizer: "adamw",
    lr: 3e-3,
    warmupFraction: 0.05,
    evalEvery: 50,
    augment: false,
    foregroundFraction: 0.5,
    // layer-wise learning-rate decay of the pretrained encoder (the MAE recipe; scratch has nothing to keep): 1 labelled
    // case, 300 steps, an encoder at 4200 of its 6000 steps: validation Dice 0.365 with 0.75, 0.318 without
    layerDecay: 0.75,
  },
  convergenceLevels: [0.15, 0.25],
  eval: { overlap: 0.5, mirror: false, hd95: "medpy" },
};

/**
 * The shipped encoder's pretraining (pretrained/nnformer-quick-mae, `npm run encoder`): the quick network's MAE with
 * the quick profile's masking on 256 unlabeled phantoms of generator seed 1 (every case of the phantom manifest is seed
 * 0, so no labelled, validation or test case is among them), 4 more held out for the masked-reconstruction curve.
 */
const ENCODER: StudyProfile = derive(QUICK, {
  name: "encoder",
  data: { kind: "phantom-memory", seed: 1, shape: [64, 64, 64], unlabeled: 256, train: 0, val: 4, test: 0 },
  inits: ["mae"],
  labelFractions: [1],
  seeds: [0],
  perFraction: undefined,
  pretrain: { ...QUICK.pretrain, steps: ENCODER_STEPS, evalEvery: ENCODER_STEPS / 20, shipped: undefined },
});

/**
 * The demo's study at more label fractions and seeds (`npm run demo:long`; 57 minutes on 2 cores, measured
 * 2026-12-06, results in the README): 1, 4, 8 and 32 labelled cases, 8 seeds at 1 case and 5 at 4 and 8 (so the
 * exact paired tests can go below 0.05), 3 at 32; the same recipe, with more steps where more labelled cases keep
 * improving.
 */
const LONG: StudyProfile = derive(QUICK, {
  name: "long",
  labelFractions: [1 / 32, 1 / 8, 1 / 4, 1],
  seeds: [0, 1, 2, 3, 4, 5, 6, 7],
  perFraction: {
    [String(1 / 8)]: { seeds: 5, steps: 500 },
    [String(1 / 4)]: { seeds: 5, steps: 700 },
    "1": { seeds: 3, steps: 1500 },
  },
});

export const PROFILES: Record<
  "smoke" | "quick" | "long" | "encoder" | "paper" | "table2" | "table2-quick" | "table2-smoke",
  StudyProfile
> = {
  smoke: SMOKE,
  quick: QUICK,
  long: LONG,
  encoder: ENCODER,
  paper: {
    name: "paper",
    data: { kind: "manifest", manifest: "btcv-synapse" },
    models: ["nnformer-synapse"],
    // nnU-Net's plan: target spacing from the training cases, CT statistics from their labelled foreground. The
    // BTCV manifest's val split is carved from the official training cases, so the curves and best.safetensors never
    // see a test case; the test numbers come from the final weights.
    preprocessing: "nnunet",
    inits: ["scratch", "mae"],
    labelFractions: [0.05, 0.1, 0.25, 0.5, 1],
    seeds: [0, 1, 2],
    // one pretraining per seed, so the paired tests over seeds include pretraining variance
    pretrain: {
      steps: 250_000,
      batchSize: 2,
      lr: 3e-4,
      maskRatio: 0.75,
      maskMode: "sparse",
      evalEvery: 25_000,
      perSeed: true,
    },
    finetune: {
      steps: 250_000,
      batchSize: 2,
      optimizer: "sgd",
      lr: 1e-2,
      warmupFraction: 0.05,
      evalEvery: 2_500,
      augment: true,
      foregroundFraction: 0.33,
    },
    convergenceLevels: [0.7, 0.8],
    eval: { overlap: 0.5, mirror: true, hd95: "medpy" },
  },
  // Table II of nnFormer (Synapse, full labels): every model fine-tuned with the quick study's data and step budgets
  // on one shared crop, 32×64×64 (nnformer-small's crop; every CPU preset accepts it: UNet3D needs multiples of 8,
  // UNETR and TransUNet-3D of 16, Swin UNETR of 32). MAE runs only for nnFormer (the baselines have no MAE encoder).
  table2: derive(QUICK, {
    name: "table2",
    models: TABLE2_MODELS,
    cropSize: [32, 64, 64],
    // native spacing, one budget, and an MAE pretrained here: the shipped encoder is the quick network's
    spacing: undefined,
    perFraction: undefined,
    seeds: [0],
    pretrain: { ...QUICK.pretrain, shipped: undefined },
    labelFractions: [1],
    convergenceLevels: [0.2, 0.3],
  }),
  // Table II at the demo's size (notebook 06's lesson; `--profile table2-quick`, about half an hour on 2 cores): the
  // demo's data, plan (6 x 8 x 8 mm) and budget at full labels (32 cases, 800 steps, 1 seed), nnFormer as the demo's
  // network with the shipped encoder for its MAE arm, and the four baselines, all on one 32³ crop (the smallest every
  // model takes; at 32³ Swin UNETR's deepest stage sees a 1³ grid, a handicap of the crop the lesson discusses).
  "table2-quick": derive(QUICK, {
    name: "table2-quick",
    models: ["nnformer-quick", ...TABLE2_BASELINES],
    cropSize: [32, 32, 32],
    seeds: [0],
    labelFractions: [1],
    convergenceLevels: [0.3, 0.5],
  }),
  // The smoke settings on 32³ phantoms: the smallest crop every model takes (Swin UNETR needs multiples of 32; at 32³
  // its encoder10 sees a 1³ grid, which InstanceNorm maps to zeros: harmless for a plumbing test, not for results).
  "table2-smoke": derive(SMOKE, {
    name: "table2-smoke",
    data: { kind: "phantom-memory", seed: 0, shape: [32, 32, 32], unlabeled: 2, train: 2, val: 1, test: 1 },
    models: TABLE2_SMOKE_MODELS,
    cropSize: [32, 32, 32],
    modelOverrides: Object.fromEntries(TABLE2_BASELINES.map((m) => [m, modelEntry(m).tiny.overrides])),
    labelFractions: [1],
  }),
};

/** The fine-tuning settings of the cells at one label fraction (profile.perFraction's steps applied). */
export function finetuneAt(profile: StudyProfile, fraction: number): FinetuneSettings {
  const steps = profile.perFraction?.[String(fraction)]?.steps;
  return steps === undefined ? profile.finetune : { ...profile.finetune, steps };
}

/** The seeds run at one label fraction (the first profile.perFraction[fraction].seeds of profile.seeds). */
export function seedsAt(profile: StudyProfile, fraction: number): number[] {
  const n = profile.perFraction?.[String(fraction)]?.seeds;
  return n === undefined ? profile.seeds : profile.seeds.slice(0, n);
}

/** The kit's root folder (shipped files are named relative to it). */
const KIT_ROOT = path.resolve(__dirname, "..", "..");

/**
 * The shipped MAE checkpoint a profile starts its "mae" arm from (absolute path), or undefined when it pretrains.
 * Throws, naming the file and the ways out, when the profile names one that is missing.
 */
export function shippedEncoder(profile: StudyProfile): string | undefined {
  const rel = profile.pretrain.shipped;
  if (!rel) return undefined;
  const file = path.resolve(KIT_ROOT, rel);
  if (!fs.existsSync(file))
    throw new Error(
      `profile ${profile.name}: the shipped encoder ${rel} is missing from the kit; restore it (git checkout -- ${rel}), ` +
        `rebuild it (npm run encoder), or pretrain within the study (--pretrain-afresh)`,
    );
  return file;
}

/** A profile by name, with a clear error for unknown names. */
export function getProfile(name: string): StudyProfile {
  const p = (PROFILES as Record<string, StudyProfile>)[name];
  if (!p) throw new Error(`unknown profile "${name}"; use one of ${Object.keys(PROFILES).join(", ")}`);
  return JSON.parse(JSON.stringify(p));
}
