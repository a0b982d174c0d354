// The public surface of mae-nnformer: re-exports only.
export * from "./runtime/backend";
export * from "./runtime/random";
export * from "./runtime/files";
