// Study profiles: everything a low-label study needs to know, in one typed object per scale.
//   smoke: seconds; for tests and notebook runs in CI (tiny phantoms in memory, micro network).
//   quick: the default demo on a 2-core CPU, about 10-15 minutes (phantom dataset on disk, small network).
//   paper: the official configuration and schedule, for GPU users with real data (days on a GPU).
import type { Shape3 } from "../data/volume";

export type DataSource =
  /** Files described by a manifest (the phantom manifest is written by the kit when missing). */
  | { kind: "manifest"; manifest: string; dataRoot?: string }
  /** Phantoms generated in memory, split by count (no files). */
  | { kind: "phantom-memory"; seed: number; shape: Shape3; unlabeled: number; train: number; val: number; test: number };

export interface StudyProfile {
  name: string;
  data: DataSource;
  /** Registry names of the compared models; the "mae" arm runs for the nnFormer ones (the encoder MAE pretrains). */
  models: string[];
  /** Training crop shared by every model (default: the first model's preset crop). */
  cropSize?: [number, number, number];
  /** Initialisations to compare: "scratch", "mae". */
  inits: string[];
  labelFractions: number[];
  seeds: number[];
  pretrain: {
    steps: number;
    batchSize: number;
    lr: number;
    maskRatio: number;
    maskMode: "sparse" | "simmim" | "compact";
    /** Evaluate the held-out reconstruction every N steps (0: end only). */
    evalEvery: number;
  };
  finetune: {
    steps: number;
    batchSize: number;
    optimizer: "adamw" | "sgd";
    /** Peak learning rate, the same for every initialisation (equal budget, no per-arm tuning). */
    lr: number;
    warmupFraction: number;
    /** Validation every N steps (the convergence curve). */
    evalEvery: number;
    augment: boolean;
    foregroundFraction: number;
  };
  /** Validation Dice levels for the convergence table (steps to first reach each). */
  convergenceLevels: number[];
  eval: {
    /** Sliding-window overlap on test volumes. */
    overlap: number;
    mirror: boolean;
  };
}

export const PROFILES: Record<"smoke" | "quick" | "paper", StudyProfile> = {
  smoke: {
    name: "smoke",
    data: { kind: "phantom-memory", seed: 0, shape: [16, 32, 32], unlabeled: 3, train: 2, val: 1, test: 1 },
    models: ["nnformer-micro"],
    inits: ["scratch", "mae"],
    labelFractions: [0.5, 1],
    seeds: [0],
    pretrain: { steps: 2, batchSize: 1, lr: 3e-4, maskRatio: 0.75, maskMode: "sparse", evalEvery: 0 },
    finetune: { steps: 2, batchSize: 1, optimizer: "adamw", lr: 3e-3, warmupFraction: 0, evalEvery: 1, augment: false, foregroundFraction: 0.5 },
    convergenceLevels: [0.05, 0.1],
    eval: { overlap: 0, mirror: false },
  },
  quick: {
    name: "quick",
    data: { kind: "manifest", manifest: "phantom" },
    models: ["nnformer-small"],
    inits: ["scratch", "mae"],
    labelFractions: [0.125, 0.25, 1],
    seeds: [0],
    pretrain: { steps: 300, batchSize: 2, lr: 1e-3, maskRatio: 0.75, maskMode: "sparse", evalEvery: 100 },
    finetune: { steps: 160, batchSize: 2, optimizer: "adamw", lr: 3e-3, warmupFraction: 0.05, evalEvery: 20, augment: true, foregroundFraction: 0.5 },
    convergenceLevels: [0.2, 0.3],
    eval: { overlap: 0.5, mirror: false },
  },
  paper: {
    name: "paper",
    data: { kind: "manifest", manifest: "btcv-synapse" },
    models: ["nnformer-synapse"],
    inits: ["scratch", "mae"],
    labelFractions: [0.05, 0.1, 0.25, 0.5, 1],
    seeds: [0, 1, 2],
    pretrain: { steps: 250_000, batchSize: 2, lr: 3e-4, maskRatio: 0.75, maskMode: "sparse", evalEvery: 25_000 },
    finetune: { steps: 250_000, batchSize: 2, optimizer: "sgd", lr: 1e-2, warmupFraction: 0.05, evalEvery: 2_500, augment: true, foregroundFraction: 0.33 },
    convergenceLevels: [0.7, 0.8],
    eval: { overlap: 0.5, mirror: true },
  },
};

/** A profile by name, with a clear error for unknown names. */
export function getProfile(name: string): StudyProfile {
  const p = (PROFILES as Record<string, StudyProfile>)[name];
  if (!p) throw new Error(`unknown profile "${name}"; use one of ${Object.keys(PROFILES).join(", ")}`);
  return JSON.parse(JSON.stringify(p));
}
