// Label maps against a manifest: which labels are evaluated, and a check that a label map holds only listed values.
import { manifestFile } from "./parse";
import { Manifest } from "./schema";

/** Foreground label names to report: evaluatedLabels, or every non-background label. */
export function evaluatedLabelNames(manifest: Manifest): string[] {
  return manifest.evaluatedLabels ?? manifest.labels.filter((l) => l.value !== 0).map((l) => l.name);
}

/** Throws, naming `file` and the offending values, when a label map holds values the manifest does not list. */
export function checkLabelValues(labelVolumeData: ArrayLike<number>, manifest: Manifest, file: string): void {
  const allowed = new Set(manifest.labels.map((l) => l.value));
  const unexpected = new Map<number, number>(); // value -> voxel count
  let last = NaN; // label maps are mostly runs of one value, so skip the set lookup when the value repeats
  let lastOk = false;
  for (let i = 0; i < labelVolumeData.length; i++) {
    const v = labelVolumeData[i];
    if (v === last && lastOk) continue;
    last = v;
    lastOk = allowed.has(v);
    if (!lastOk) unexpected.set(v, (unexpected.get(v) ?? 0) + 1);
  }
  if (unexpected.size === 0) return;
  const values = [...unexpected.keys()].sort((a, b) => a - b);
  const shown = values.slice(0, 20).map((v) => `${v} (${unexpected.get(v)} voxels)`);
  throw new Error(
    `label map ${file} holds value(s) not in data manifest "${manifest.name}" (${manifestFile(manifest)}): ` +
      `${shown.join(", ")}${values.length > 20 ? `, and ${values.length - 20} more` : ""}. ` +
      `Allowed: ${[...allowed].join(", ")}. Check that the file is a label map of this dataset, or add the labels to the manifest.`,
  );
}
