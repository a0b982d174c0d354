// nnFormer presets: the three official networks (Synapse, ACDC, Tumor) and CPU-sized ones named by embedding width
// and crop (NNFORMER_E24_16X32X32: embed 24 on 16×32×32 crops). The old names stay as aliases.
import { type NnFormerConfig } from "./nnformer_config";
import { cube } from "../runtime/math";

const K3S2P1 = {
  downKernels: [cube(3), cube(3), cube(3)],
  downStrides: [cube(2), cube(2), cube(2)],
  downPaddings: [cube(1), cube(1), cube(1)],
};
const UP2 = { upKernels: [cube(2), cube(2), cube(2)], upOutputPaddings: [cube(0), cube(0), cube(0)] };

/** Official Synapse (BTCV) network: 150,054,210 parameters. */
export const NNFORMER_SYNAPSE: NnFormerConfig = {
  inChannels: 1,
  numClasses: 14,
  cropSize: [64, 128, 128],
  patchSize: [2, 4, 4],
  embedDim: 192,
  depths: [2, 2, 2, 2],
  numHeads: [6, 12, 24, 48],
  decoderHeads: [24, 12, 6],
  windowSizes: [cube(4), cube(4), cube(8), cube(4)],
  decoderWindowSizes: [cube(8), cube(4), cube(4)],
  embedStrides: { proj1: [2, 2, 2], proj2: [1, 2, 2] },
  ...K3S2P1,
  ...UP2,
  deepSupervision: true,
  shiftMasked: true,
  globalRule: "min",
  padTokensToWindow: false,
  dropPathRate: 0.2,
  mlpRatio: 4,
};

/** Official ACDC network: 37,160,200 parameters. */
export const NNFORMER_ACDC: NnFormerConfig = {
  inChannels: 1,
  numClasses: 4,
  cropSize: [14, 160, 160],
  patchSize: [1, 4, 4],
  embedDim: 96,
  depths: [2, 2, 2, 2],
  numHeads: [3, 6, 12, 24],
  decoderHeads: [12, 6, 3],
  windowSizes: [
    [3, 5, 5],
    [3, 5, 5],
    [7, 10, 10],
    [3, 5, 5],
  ],
  decoderWindowSizes: [
    [7, 10, 10],
    [3, 5, 5],
    [3, 5, 5],
  ],
  embedStrides: { proj1: [1, 2, 2], proj2: [1, 2, 2] },
  downKernels: [[1, 3, 3], cube(3), cube(3)],
  downStrides: [[1, 2, 2], cube(2), cube(2)],
  downPaddings: [[0, 1, 1], cube(1), [0, 1, 1]],
  upKernels: [cube(2), cube(2), [1, 2, 2]],
  upOutputPaddings: [[1, 0, 0], cube(0), cube(0)],
  deepSupervision: false,
  shiftMasked: false,
  globalRule: "equal",
  padTokensToWindow: true,
  dropPathRate: 0.2,
  mlpRatio: 4,
};

/** Official Tumor (MSD BraTS) network: 37,606,726 parameters. */
export const NNFORMER_TUMOR: NnFormerConfig = {
  ...NNFORMER_SYNAPSE,
  inChannels: 4,
  numClasses: 4,
  cropSize: [128, 128, 128],
  patchSize: [4, 4, 4],
  embedDim: 96,
  numHeads: [3, 6, 12, 24],
  decoderHeads: [24, 12, 6],
  embedStrides: { proj1: [2, 2, 2], proj2: [2, 2, 2] },
  deepSupervision: false,
};

/** CPU benchmark preset for the 64³ phantoms: Synapse structure, embed 48 (9,522,078 params with 14 classes). */
export const NNFORMER_E48_64X64X64: NnFormerConfig = {
  ...NNFORMER_SYNAPSE,
  numClasses: 9,
  cropSize: [64, 64, 64],
  embedDim: 48,
  numHeads: [3, 6, 12, 24],
  decoderHeads: [12, 6, 3],
};

/** Embed 24 on 32×64×64 crops (grids 16³/8³/4³/2³). */
export const NNFORMER_E24_32X64X64: NnFormerConfig = {
  ...NNFORMER_E48_64X64X64,
  cropSize: [32, 64, 64],
  embedDim: 24,
};

/** The quick CPU study's network: embed 24 on 16×32×32 crops (grids 8³/4³/2³/1³), about 0.2 s per training step of 2 crops on wasm. */
export const NNFORMER_E24_16X32X32: NnFormerConfig = {
  ...NNFORMER_E48_64X64X64,
  cropSize: [16, 32, 32],
  embedDim: 24,
};

/** Unit-test preset: crop 16×32×32, embed 12, 3 classes (grids 8³/4³/2³/1³; the shift mask still runs at 8³). */
export const NNFORMER_E12_16X32X32: NnFormerConfig = {
  ...NNFORMER_E48_64X64X64,
  numClasses: 3,
  cropSize: [16, 32, 32],
  embedDim: 12,
  numHeads: [1, 2, 4, 8],
  decoderHeads: [4, 2, 1],
};

/**
 * ACDC structure at unit-test size (crop 14×64×64, embed 12): depth padding 14→15, rolled without a mask,
 * output_padding (1,0,0) and the k(1,2,2) up-sampling all run. Grids 14×16×16 / 14×8×8 / 7×4×4 / 3×2×2.
 */
export const NNFORMER_ACDC_MICRO: NnFormerConfig = {
  ...NNFORMER_ACDC,
  cropSize: [14, 64, 64],
  embedDim: 12,
  numHeads: [1, 2, 4, 8],
  decoderHeads: [4, 2, 1],
  windowSizes: [
    [3, 4, 4],
    [3, 4, 4],
    [7, 4, 4],
    [3, 2, 2],
  ],
  decoderWindowSizes: [
    [7, 4, 4],
    [3, 4, 4],
    [3, 4, 4],
  ],
};
