// Finding manifests: the project root, the shipped data-manifests folder, loading one by name or path.
import * as fs from "fs";
import * as path from "path";
import { ManifestError, show } from "./errors";
import { parseManifest } from "./parse";
import { Manifest } from "./schema";

/** The project root: the nearest folder above this file whose package.json is mae-nnformer's. */
export function projectRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, "package.json");
    if (fs.existsSync(pkg)) {
      try {
        if (JSON.parse(fs.readFileSync(pkg, "utf8")).name === "mae-nnformer") return dir;
      } catch {
        // not ours; keep walking up
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the mae-nnformer project root above ${__dirname}`);
    dir = up;
  }
}

/** Folder of the shipped manifests: <project root>/data-manifests. */
export function manifestDir(): string {
  return path.join(projectRoot(), "data-manifests");
}

/** Names of the shipped manifests ("phantom", "btcv-synapse", ...), sorted. */
export function listManifests(): string[] {
  return fs
    .readdirSync(manifestDir())
    .filter((f) => f.endsWith(".json"))
    .map((f) => f.slice(0, -".json".length))
    .sort();
}

/**
 * Loads and validates a manifest. A bare name ("phantom") means data-manifests/<name>.json in the project;
 * anything with a slash or ending in .json is a path (relative to the working directory).
 */
export function loadManifest(pathOrName: string): Manifest {
  const isName = !/[\\/]/.test(pathOrName) && !pathOrName.endsWith(".json");
  const file = isName ? path.join(manifestDir(), `${pathOrName}.json`) : path.resolve(pathOrName);
  if (!fs.existsSync(file)) {
    const hint = isName ? `known manifests: ${listManifests().join(", ")}` : "check the path";
    throw new Error(`data manifest ${file} does not exist (asked for "${pathOrName}"); ${hint}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new ManifestError(`data manifest ${file} is not valid JSON: ${(e as Error).message}`, file, [
      (e as Error).message,
    ]);
  }
  const manifest = parseManifest(json, file);
  if (isName && manifest.name !== pathOrName) {
    const line = `name: got ${show(manifest.name)} but the file is ${pathOrName}.json; make the name match the file name`;
    throw new ManifestError(`invalid data manifest ${file}:\n  - ${line}`, file, [line]);
  }
  return manifest;
}
