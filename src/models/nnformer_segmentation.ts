// nnFormer as a SegmentationModel (the contract the registry, training and evaluation use): forward gives the logits,
// or [full, ½, ¼] with deep supervision; specs and params are the network's own.
import type * as tf from "@tensorflow/tfjs";
import type { ParamSpec, ParamStore } from "../layers/param_specs";
import { NnFormer, type NnFormerConfig } from "./nnformer";
import type { SegmentationForwardOptions, SegmentationModel } from "./types";

export class NnFormerSegmentation implements SegmentationModel<NnFormerConfig> {
  constructor(
    readonly name: string,
    readonly net: NnFormer,
  ) {}
  get config(): NnFormerConfig {
    return this.net.config;
  }
  get specs(): readonly ParamSpec[] {
    return this.net.specs;
  }
  get params(): ParamStore {
    return this.net.params;
  }
  numParams(): number {
    return this.net.numParams();
  }
  forward(x: tf.Tensor5D, opts: SegmentationForwardOptions): tf.Tensor5D | tf.Tensor5D[] {
    const out = this.net.forward(x, { ops: opts.ops, training: opts.training, rng: opts.rng });
    return out.aux.length ? [out.logits, ...out.aux] : out.logits;
  }
  trainableVariables(): tf.Variable[] {
    return this.net.trainableVariables();
  }
  dispose(): void {
    this.net.dispose();
  }
}

/** The nnFormer inside a segmentation model (MAE transfer target); throws naming the model when it is not one. */
export function nnFormerOf(model: SegmentationModel): NnFormer {
  if (model instanceof NnFormerSegmentation) return model.net;
  throw new Error(
    `model "${model.name}" is not an nnFormer, so it has no MAE-pretrainable encoder; use an nnformer-* model for init "mae"`,
  );
}
