// The public surface of mae-nnformer: re-exports only, in pipeline order.
export * from "./runtime/backend";
export * from "./runtime/random";
export * from "./runtime/files";
export * from "./data/volume";
export * from "./data/nifti";
export * from "./data/manifest";
export * from "./data/phantom";
export * from "./data/dataset";
export * from "./data/transforms";
export * from "./data/sampling";
export * from "./data/augment";
export * from "./plots/index";
