// Data manifests: one JSON file per dataset that says which cases exist, where their files lie relative to a data
// root, which label values mean what, and how the cases are split. Manifests never hold voxels.
//
// Flow: loadManifest("btcv-synapse") (discovery.ts) -> parseManifest (parse.ts: the zod schema of schema.ts, then
// checks between fields; errors.ts words the problems) -> resolveManifest (resolve.ts: absolute paths per case and
// per split, every missing file reported in one error). labels.ts checks label maps against the manifest.
export { SPLIT_NAMES, ManifestSchema } from "./schema";
export type {
  SplitName,
  Manifest,
  ManifestCase,
  ManifestLabel,
  ManifestSplits,
  ManifestSource,
  ManifestGenerator,
} from "./schema";
export { ManifestError, jsonPath } from "./errors";
export { manifestFile, parseManifest } from "./parse";
export { projectRoot, manifestDir, listManifests, loadManifest } from "./discovery";
export { DATA_ENV, dataRootFor, resolveManifest } from "./resolve";
export type { ResolvedCase, ResolvedManifest, ResolveOptions } from "./resolve";
export { evaluatedLabelNames, checkLabelValues } from "./labels";
