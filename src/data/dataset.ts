// Cases in, ready for training: write the generated phantom dataset to disk, and load any manifest case with the
// checks that every later step relies on (image and label on the same grid, label values known to the manifest).
import * as fs from "fs";
import * as path from "path";
import { Manifest, ResolvedCase, ResolvedManifest, checkLabelValues, dataRootFor, manifestFile, resolveManifest } from "./manifest";
import { readNifti, writeNifti, checkSameGrid } from "./nifti";
import { generatePhantom, PhantomConfig } from "./phantom";
import { Shape3, Volume } from "./volume";
import { writeFileAtomic } from "../runtime/files";

export interface LoadedCase {
  id: string;
  /** Float32 image; several channels are the fastest axis. */
  image: Volume<Float32Array>;
  /** Label map, or null for unlabelled cases. */
  label: Volume | null;
}

/** The phantom generator settings a manifest asks for (throws if the manifest has no phantom generator block). */
export function phantomConfigOf(manifest: Manifest): { seed: number; count: number; config: Partial<PhantomConfig> } {
  const g = manifest.generator;
  if (!g || g.kind !== "phantom") {
    throw new Error(`manifest "${manifest.name}" (${manifestFile(manifest)}) has no phantom generator block; its data must be downloaded, see data-manifests/README.md`);
  }
  // (spelled out: zod's tuple types widen under the TypeScript 5.0 that tslab bundles)
  const shape: Shape3 = [g.shape[0], g.shape[1], g.shape[2]];
  const spacing: Shape3 = [g.spacing[0], g.spacing[1], g.spacing[2]];
  return { seed: g.seed, count: g.count, config: { shape, spacing } };
}

export interface WritePhantomsResult {
  dataRoot: string;
  written: number;
  kept: number;
}

/**
 * Writes the cases of a phantom manifest as NIfTI under its data root (images/ and labels/), skipping files that already
 * exist unless `overwrite`. Each file is written atomically, so an interrupted run never leaves a half-written case.
 */
export function writePhantomDataset(
  manifest: Manifest,
  dataRoot?: string,
  options: { overwrite?: boolean; onCase?: (i: number, n: number, id: string) => void } = {},
): WritePhantomsResult {
  const { seed, count, config } = phantomConfigOf(manifest);
  const root = dataRootFor(manifest, dataRoot);
  const resolved = resolveManifest(manifest, root, { checkFiles: false });
  const cases = manifest.cases;
  if (cases.length !== count) {
    throw new Error(`${manifestFile(manifest)}: generator.count is ${count} but cases lists ${cases.length}; make them agree`);
  }
  let written = 0;
  let kept = 0;
  cases.forEach((c, i) => {
    const r = resolved.cases.get(c.id)!;
    const imagePath = r.images[0];
    const labelPath = r.label;
    options.onCase?.(i, cases.length, c.id);
    if (!options.overwrite && fs.existsSync(imagePath) && (!labelPath || fs.existsSync(labelPath))) {
      kept++;
      return;
    }
    const ph = generatePhantom(seed, i, config);
    writeNifti(imagePath, ph.image, { description: `mae-nnformer phantom seed ${seed} case ${i}` });
    if (labelPath) writeNifti(labelPath, ph.label, { description: `mae-nnformer phantom labels seed ${seed} case ${i}` });
    written++;
  });
  writeFileAtomic(
    path.join(root, "GENERATED.json"),
    JSON.stringify({ manifest: manifest.name, seed, count, config, by: "mae-nnformer phantoms" }, null, 2) + "\n",
  );
  return { dataRoot: root, written, kept };
}

/** Reads one resolved case: image (all channels, float32) and label, checked against each other and the manifest. */
export async function loadCase(resolved: ResolvedManifest, c: ResolvedCase, options: { withLabel?: boolean } = {}): Promise<LoadedCase> {
  const { manifest } = resolved;
  const nChannels = manifest.channels.length;
  let image: Volume<Float32Array>;
  if (c.channelsInOneFile || c.images.length === 1) {
    image = await readNifti(c.images[0], { as: "image" });
    if (image.channels !== nChannels) {
      throw new Error(`${c.images[0]}: has ${image.channels} channel(s) but manifest "${manifest.name}" lists ${nChannels} (${manifest.channels.join(", ")})`);
    }
  } else {
    const parts = [];
    for (const p of c.images) parts.push(await readNifti(p, { as: "image" }));
    for (let k = 1; k < parts.length; k++) checkSameGrid(parts[0], parts[k]);
    image = interleaveChannels(parts);
  }
  let label: Volume | null = null;
  if ((options.withLabel ?? true) && c.label) {
    label = await readNifti(c.label, { as: "label" });
    checkSameGrid(image, label);
    checkLabelValues(label.data, manifest, c.label);
  }
  return { id: c.id, image, label };
}

/** Loads every case of a split. */
export async function loadSplit(resolved: ResolvedManifest, split: keyof ResolvedManifest["splits"]): Promise<LoadedCase[]> {
  const out: LoadedCase[] = [];
  for (const c of resolved.splits[split]) out.push(await loadCase(resolved, c, { withLabel: split !== "unlabeled" }));
  return out;
}

function interleaveChannels(parts: Volume<Float32Array>[]): Volume<Float32Array> {
  const n = parts[0].data.length;
  const k = parts.length;
  const data = new Float32Array(n * k);
  for (let c = 0; c < k; c++) {
    const src = parts[c].data;
    for (let i = 0; i < n; i++) data[i * k + c] = src[i];
  }
  return { ...parts[0], data, channels: k, source: parts.map((p) => p.source).join(" + ") };
}
