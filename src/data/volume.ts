// The in-memory volume every part of the kit passes around.
//
// Axis convention: arrays are [D, H, W] row-major (W fastest), which is exactly the on-disk NIfTI order
// (i fastest, then j, then k) read as data[k][j][i]. So D = NIfTI k (the slice axis, nnU-Net's "S"),
// H = j, W = i, and no transpose is needed between file and tensor. `spacing` follows the same [D, H, W] order
// (NIfTI pixdim[3], pixdim[2], pixdim[1]). `affine` is the NIfTI voxel-to-world matrix for (i, j, k, 1).

import { Vec3 } from "../runtime/math";

/** Voxel storage types a volume may hold. Images are float32 after loading; label maps are small unsigned ints. */
export type VoxelArray =
  | Float32Array
  | Float64Array
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Int32Array
  | Uint32Array;

/** @deprecated The same type as Vec3 (src/runtime/math.ts), which new code should use. */
export type Shape3 = Vec3;
/** 4x4 voxel (i, j, k, 1) -> world (x, y, z, 1) matrix, row-major rows. */
export type Affine = number[][];

export interface Volume<T extends VoxelArray = VoxelArray> {
  /** Voxel values, length D*H*W*channels; channels (if > 1) are the fastest axis. */
  data: T;
  /** [D, H, W]. */
  shape: Vec3;
  /** Number of channels (modalities); 1 for a plain image or label map. */
  channels: number;
  /** Voxel size in mm, [D, H, W] order. */
  spacing: Vec3;
  /** NIfTI voxel-to-world matrix (see the axis convention above). */
  affine: Affine;
  /** Where it came from, for error messages ("ch2.nii.gz", "phantom seed 0 case 3"). */
  source: string;
}

/** Number of voxels of a [D, H, W] shape. */
export function numVoxels(shape: Vec3): number {
  return shape[0] * shape[1] * shape[2];
}

/** Flat index of voxel (d, h, w) in a [D, H, W] array. */
export function voxelIndex(shape: Vec3, d: number, h: number, w: number): number {
  return (d * shape[1] + h) * shape[2] + w;
}

/** Diagonal affine for a grid with the given [D, H, W] spacing and world origin (x, y, z) of voxel (0, 0, 0). */
export function diagonalAffine(spacing: Vec3, origin: Vec3 = [0, 0, 0]): Affine {
  return [
    [spacing[2], 0, 0, origin[0]],
    [0, spacing[1], 0, origin[1]],
    [0, 0, spacing[0], origin[2]],
    [0, 0, 0, 1],
  ];
}
