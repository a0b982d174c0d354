// Bad inputs, generated: each function writes one broken (or good) file and returns its path.
import * as fs from "fs";
import * as path from "path";
import * as zlib from "zlib";
import { writeNifti } from "../../src/data/nifti";
import { generatePhantom } from "../../src/data/phantom";
import { Volume } from "../../src/data/volume";

/** A smoke-sized phantom image (the grid the smoke study trains on). */
export function phantomImage(index = 0): Volume<Float32Array> {
  return generatePhantom(0, index, { shape: [16, 32, 32] }).image as Volume<Float32Array>;
}

/** Writes `volume` as .nii (uncompressed, so header fields can be patched) or .nii.gz. */
export function niftiFile(dir: string, name: string, volume: Volume = phantomImage()): string {
  const file = path.join(dir, name);
  writeNifti(file, volume);
  return file;
}

/** Rewrites header fields of an uncompressed little-endian .nii. */
export function patchNifti(file: string, edit: (view: DataView) => void): string {
  const bytes = fs.readFileSync(file);
  edit(new DataView(bytes.buffer, bytes.byteOffset, bytes.length));
  fs.writeFileSync(file, bytes);
  return file;
}

/** A .nii.gz cut to `keep` of its bytes: the gzip stream ends early. */
export function truncatedGzip(dir: string, keep = 0.5): string {
  const good = fs.readFileSync(niftiFile(dir, "whole.nii.gz"));
  const file = path.join(dir, "truncated.nii.gz");
  fs.writeFileSync(file, good.subarray(0, Math.floor(good.length * keep)));
  return file;
}

/** A header claiming 30000 x 30000 x 30000 voxels (refused before anything that size is allocated). */
export function hugeDims(dir: string): string {
  return patchNifti(niftiFile(dir, "huge.nii"), (v) => [42, 44, 46].forEach((at) => v.setInt16(at, 30000, true)));
}

/** A float image with NaN voxels. */
export function nanVoxels(dir: string): string {
  const img = phantomImage();
  const data = img.data.slice();
  data[100] = NaN;
  data[7000] = NaN;
  return niftiFile(dir, "nan.nii.gz", { ...img, data });
}

/** vox_offset = 352.5. */
export function fractionalVoxOffset(dir: string): string {
  return patchNifti(niftiFile(dir, "offset.nii"), (v) => v.setFloat32(108, 352.5, true));
}

/** A 4D file: two volumes of the phantom grid. */
export function fourD(dir: string): string {
  const img = phantomImage();
  const data = new Float32Array(img.data.length * 2);
  for (let i = 0; i < img.data.length; i++) data[2 * i] = data[2 * i + 1] = img.data[i];
  return niftiFile(dir, "four-d.nii.gz", { ...img, data, channels: 2 });
}

/** Text with a .nii.gz name. */
export function notNifti(dir: string): string {
  const file = path.join(dir, "notes.nii.gz");
  fs.writeFileSync(file, zlib.gzipSync(Buffer.from("these are my notes, not an image\n".repeat(20))));
  return file;
}

/** A copy of `file` cut to `keep` of its bytes. */
export function truncatedCopy(file: string, dir: string, keep = 0.6): string {
  const bytes = fs.readFileSync(file);
  const out = path.join(dir, `truncated-${path.basename(file)}`);
  fs.writeFileSync(out, bytes.subarray(0, Math.floor(bytes.length * keep)));
  return out;
}

/** A safetensors file whose header is not JSON. */
export function badSafetensorsHeader(dir: string): string {
  const json = Buffer.from("{not json at all", "utf8");
  const out = Buffer.alloc(8 + json.length + 16);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  const file = path.join(dir, "bad-header.safetensors");
  fs.writeFileSync(file, out);
  return file;
}

/** A copy of a checkpoint with float32 NaN at flat index 3 of its first weight tensor; returns it and the tensor. */
export function nanWeights(file: string, dir: string): { file: string; tensor: string } {
  const bytes = Buffer.from(fs.readFileSync(file));
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")) as Record<string, { data_offsets?: number[] }>;
  const first = Object.entries(header).find(([k, v]) => k.startsWith("param/") && v.data_offsets)!;
  const at = 8 + n + first[1].data_offsets![0];
  bytes.writeFloatLE(NaN, at + 4 * 3);
  const out = path.join(dir, `nan-${path.basename(file)}`);
  fs.writeFileSync(out, bytes);
  return { file: out, tensor: first[0] };
}

/** A one-case dataset in `root` (a smoke phantom in the test split, an empty label map) and its manifest file. */
export function oneCaseDataset(root: string, edit: (m: Record<string, unknown>) => void = () => {}) {
  const img = phantomImage(0);
  niftiFile(root, "img.nii.gz", img);
  writeNifti(path.join(root, "lab.nii.gz"), { ...img, data: new Uint8Array(img.data.length) });
  const phantom = JSON.parse(fs.readFileSync(path.resolve(__dirname, "../../data-manifests/phantom.json"), "utf8"));
  const manifest: Record<string, unknown> = {
    ...phantom,
    name: "one-case",
    cases: [{ id: "c0", image: "img.nii.gz", label: "lab.nii.gz" }],
    splits: { train: [], val: [], test: ["c0"], unlabeled: [] },
  };
  delete manifest.generator;
  delete manifest.defaultDataRoot;
  edit(manifest);
  const file = path.join(root, "one-case.json");
  fs.writeFileSync(file, JSON.stringify(manifest, null, 2));
  return { root, img, file };
}
