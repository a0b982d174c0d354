// Parsing: zod for the shape of each field, then the checks between fields (uniqueness, references, split rules).
import { ManifestError, show, zodIssueLines } from "./errors";
import { Manifest, ManifestSchema, PLACEHOLDER, SPLIT_NAMES, SplitName } from "./schema";

// Which file each parsed manifest came from, so later errors can name it without threading the path around.
const sourceFiles = new WeakMap<Manifest, string>();

/** The file a manifest was parsed from (or a placeholder naming it). */
export function manifestFile(manifest: Manifest): string {
  return sourceFiles.get(manifest) ?? `manifest "${manifest.name}" (not loaded from a file)`;
}

function placeholders(p: string): string[] {
  return [...p.matchAll(PLACEHOLDER)].map((m) => m[1]);
}

// Checks zod cannot express per field: uniqueness, references between fields, split rules.
function crossFieldIssues(m: Manifest): string[] {
  const out: string[] = [];

  // Labels: background first, integer values ascending and unique, names unique.
  if (m.labels[0].value !== 0)
    out.push(`labels[0].value: got ${m.labels[0].value}; the first label must be value 0 (background)`);
  const seenValues = new Map<number, number>();
  const seenNames = new Map<string, number>();
  m.labels.forEach((l, i) => {
    const prevV = seenValues.get(l.value);
    if (prevV !== undefined)
      out.push(`labels[${i}].value: ${l.value} is already used by labels[${prevV}]; each value appears once`);
    else if (i > 0 && l.value < m.labels[i - 1].value)
      out.push(
        `labels[${i}].value: ${l.value} comes after ${m.labels[i - 1].value}; list labels in ascending value order`,
      );
    seenValues.set(l.value, i);
    const prevN = seenNames.get(l.name);
    if (prevN !== undefined)
      out.push(`labels[${i}].name: "${l.name}" is already used by labels[${prevN}]; names must be unique`);
    seenNames.set(l.name, i);
  });
  (m.evaluatedLabels ?? []).forEach((name, i) => {
    const idx = seenNames.get(name);
    if (idx === undefined)
      out.push(`evaluatedLabels[${i}]: "${name}" is not a label name; use one of the names in labels`);
    else if (m.labels[idx].value === 0)
      out.push(`evaluatedLabels[${i}]: "${name}" is the background; list foreground labels only`);
    if (m.evaluatedLabels!.indexOf(name) !== i) out.push(`evaluatedLabels[${i}]: "${name}" is listed twice`);
  });

  // Channels.
  m.channels.forEach((c, i) => {
    if (m.channels.indexOf(c) !== i) out.push(`channels[${i}]: "${c}" is listed twice`);
  });
  if (m.modality === "multi-MRI" && m.channels.length < 2)
    out.push(`channels: "multi-MRI" needs at least two channels, got ${show(m.channels)}`);

  // Cases: unique ids, one image per channel, placeholders only with a varsFile.
  const caseIndex = new Map<string, number>();
  m.cases.forEach((c, i) => {
    const prev = caseIndex.get(c.id);
    if (prev !== undefined)
      out.push(`cases[${i}].id: "${c.id}" is already used by cases[${prev}]; case ids must be unique`);
    else caseIndex.set(c.id, i);
    if (Array.isArray(c.image) && c.image.length !== m.channels.length) {
      out.push(
        `cases[${i}].image: ${c.image.length} path(s) for ${m.channels.length} channel(s) ${show(m.channels)}; ` +
          `give one path per channel, or a single string for one file holding all channels (4D NIfTI)`,
      );
    }
    const paths: Array<[string, string]> = [
      ...(Array.isArray(c.image)
        ? c.image.map((p, k): [string, string] => [`cases[${i}].image[${k}]`, p])
        : [[`cases[${i}].image`, c.image] as [string, string]]),
      ...(c.label !== null ? [[`cases[${i}].label`, c.label] as [string, string]] : []),
    ];
    for (const [where, p] of paths) {
      const keys = placeholders(p);
      if (keys.length > 0 && c.varsFile === undefined)
        out.push(
          `${where}: ${show(p)} has placeholder(s) {${keys.join("}, {")}} but the case has no varsFile to fill them; add "varsFile"`,
        );
    }
    if (c.varsFile !== undefined && placeholders(c.varsFile).length > 0)
      out.push(`cases[${i}].varsFile: ${show(c.varsFile)} must be a plain path without placeholders`);
  });

  // Splits: ids exist, no repeats, labelled where labels are needed, no leakage between splits.
  const members = {} as Record<SplitName, Set<string>>;
  for (const split of SPLIT_NAMES) {
    members[split] = new Set();
    m.splits[split].forEach((id, k) => {
      const where = `splits.${split}[${k}]`;
      const ci = caseIndex.get(id);
      if (ci === undefined) {
        out.push(`${where}: "${id}" is not a case id; add it to cases or remove it from the split`);
        return;
      }
      if (members[split].has(id)) out.push(`${where}: "${id}" is listed twice in ${split}`);
      members[split].add(id);
      if (split !== "unlabeled" && m.cases[ci].label === null)
        out.push(
          `${where}: case "${id}" has label null; ${split} cases need labels (put unlabelled cases in splits.unlabeled)`,
        );
    });
  }
  const overlap = (a: SplitName, b: SplitName) => [...members[a]].filter((id) => members[b].has(id));
  const forbidden: Array<[SplitName, SplitName, string]> = [
    ["train", "test", "a model would be tested on cases it was trained on"],
    ["train", "val", "model selection would use training cases"],
    ["unlabeled", "test", "pretraining would see the test images"],
    ["unlabeled", "val", "pretraining would see the validation images"],
  ];
  for (const [a, b, why] of forbidden) {
    const both = overlap(a, b);
    if (both.length > 0)
      out.push(
        `splits: ${show(both)} ${both.length === 1 ? "is" : "are"} in both ${a} and ${b}; ${why}. Keep them apart`,
      );
  }
  // val and test may be the very same list (nnFormer's Synapse protocol), but not a partial overlap.
  const vt = overlap("val", "test");
  if (vt.length > 0 && !(vt.length === members.val.size && vt.length === members.test.size)) {
    out.push(`splits: ${show(vt)} are in both val and test; val and test must be either disjoint or identical`);
  }

  if (m.generator && m.generator.count !== m.cases.length)
    out.push(`generator.count: ${m.generator.count} but cases lists ${m.cases.length}; make them agree`);
  return out;
}

/** Validates parsed JSON as a manifest; throws a ManifestError naming `file`, each bad field's JSON path and value. */
export function parseManifest(json: unknown, file: string): Manifest {
  const result = ManifestSchema.safeParse(json, { reportInput: true });
  const fail = (lines: string[]): never => {
    throw new ManifestError(
      `invalid data manifest ${file} (${lines.length} problem${lines.length === 1 ? "" : "s"}):\n` +
        lines.map((l) => `  - ${l}`).join("\n") +
        `\nSee data-manifests/README.md for the format.`,
      file,
      lines,
    );
  };
  if (!result.success) fail(zodIssueLines(result.error.issues));
  const manifest = result.data as Manifest;
  const lines = crossFieldIssues(manifest);
  if (lines.length > 0) fail(lines);
  sourceFiles.set(manifest, file);
  return manifest;
}
