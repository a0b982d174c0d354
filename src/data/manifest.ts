// Data manifests: one JSON file per dataset that says which cases exist, where their files lie relative to a data
// root, which label values mean what, and how the cases are split. Manifests never hold voxels.
//
// Flow: loadManifest("btcv-synapse") (discovery.ts) -> parseManifest (parse.ts: the zod schema of schema.ts, then
// checks between fields; errors.ts words the problems) -> resolveManifest (resolve.ts: absolute paths per case and
// per split, every missing file reported in one error). labels.ts checks label maps against the manifest.
export { SPLIT_NAMES, ManifestSchema } from "./manifest/schema";
export type {
  SplitName,
  Manifest,
  ManifestCase,
  ManifestLabel,
  ManifestSplits,
  ManifestSource,
  ManifestGenerator,
} from "./manifest/schema";
export { ManifestError, jsonPath } from "./manifest/errors";
export { manifestFile, parseManifest } from "./manifest/parse";
export { projectRoot, manifestDir, listManifests, loadManifest } from "./manifest/discovery";
export { DATA_ENV, dataRootFor, resolveManifest } from "./manifest/resolve";
export type { ResolvedCase, ResolvedManifest, ResolveOptions } from "./manifest/resolve";
export { evaluatedLabelNames, checkLabelValues } from "./manifest/labels";
