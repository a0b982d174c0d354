// The plumbing the baseline models share: variables allocated from a parameter-spec list, the forward context,
// the input check. Each model file keeps its own config, spec list and forward.
import * as tf from "@tensorflow/tfjs";
import { Ops } from "../layers/ops";
import type { NetContext } from "../layers/conv_blocks3d";
import { ParamStore, type ParamSpec } from "../layers/param_specs";
import { ParamModel } from "./param_model";
import type { SegmentationForwardOptions, SegmentationModel } from "./types";
import type { Vec3 } from "../runtime/math";

export abstract class SpecModel<C extends { inChannels: number; cropSize: Vec3 }>
  extends ParamModel
  implements SegmentationModel<C>
{
  readonly name: string;
  readonly config: C;
  readonly specs: ParamSpec[];
  readonly params: ParamStore;

  /** `kind` names the architecture in errors and seeds ("unetr"); `name` is the registry name. */
  protected constructor(
    protected readonly kind: string,
    name: string,
    config: C,
    specs: ParamSpec[],
    seed: number,
  ) {
    super();
    this.name = name;
    this.config = JSON.parse(JSON.stringify(config));
    this.specs = specs;
    this.params = ParamStore.create(kind, specs, seed);
  }

  dispose(): void {
    this.params.dispose();
  }

  abstract forward(x: tf.Tensor5D, opts: SegmentationForwardOptions): tf.Tensor5D | tf.Tensor5D[];

  protected context(ops: Ops): NetContext {
    return { ops, p: (n) => this.params.get(n), has: (n) => this.params.has(n) };
  }

  /** The networks are built for their crop (position embeddings, window plans): other shapes are refused. */
  protected checkInput(x: tf.Tensor): void {
    const c = this.config;
    const [, D, H, W, Ci] = x.shape;
    if (x.rank !== 5 || D !== c.cropSize[0] || H !== c.cropSize[1] || W !== c.cropSize[2] || Ci !== c.inChannels) {
      throw new Error(
        `${this.kind}: input shape ${JSON.stringify(x.shape)} does not match [B, ${c.cropSize.join(", ")}, ${c.inChannels}] (the network is built for its crop; use sliding windows for larger volumes)`,
      );
    }
  }
}

/** Throws `${model} config: field = value: fix`. */
export function configError(model: string): (field: string, value: unknown, fix: string) => never {
  return (field, value, fix) => {
    throw new Error(`${model} config: ${field} = ${JSON.stringify(value)}: ${fix}`);
  };
}

/** Checks the fields every model has: positive integers inChannels, numClasses and a 3-entry cropSize. */
export function checkCommon(
  bad: ReturnType<typeof configError>,
  c: { inChannels: number; numClasses: number; cropSize: Vec3 },
): void {
  for (const f of ["inChannels", "numClasses"] as const) {
    if (!Number.isInteger(c[f]) || c[f] < 1) bad(f, c[f], "use a positive integer");
  }
  if (
    !Array.isArray(c.cropSize) ||
    c.cropSize.length !== 3 ||
    !c.cropSize.every((n) => Number.isInteger(n) && n >= 1)
  ) {
    bad("cropSize", c.cropSize, "give three positive integers [D, H, W]");
  }
}
