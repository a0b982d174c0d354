// The small contract every segmentation network in the kit satisfies, so training, evaluation and the registry can
// treat nnFormer and the Table II baselines alike.
import type * as tf from "@tensorflow/tfjs";
import type { Ops } from "../layers/ops";
import type { Rng } from "../runtime/random";
import type { ParamHolder } from "../layers/param_specs";

/** What forward needs besides the input. */
export interface SegmentationForwardOptions {
  /** Which op implementations to run (plainOps or fastOps; see selectOps). */
  ops: Ops;
  /** Training mode: enables drop path where a model has it. Default false. */
  training?: boolean;
  /** Seeded generator for anything random in training (drop path). */
  rng?: Rng;
}

/**
 * A segmentation network. Input x [B, D, H, W, Cin] channels-last; output logits [B, D, H, W, K] (no softmax), or,
 * with deep supervision, an array whose first entry is the full-resolution logits followed by coarser ones.
 */
export interface SegmentationModel<C = unknown> extends ParamHolder {
  /** Registry name, e.g. "unetr-cpu". */
  readonly name: string;
  readonly config: C;
  /** Trainable parameter count (from the parameter specs, no allocation needed). */
  numParams(): number;
  forward(x: tf.Tensor5D, opts: SegmentationForwardOptions): tf.Tensor5D | tf.Tensor5D[];
  /** All trainable variables (for optimizers / tf.variableGrads). */
  trainableVariables(): tf.Variable[];
  /** Frees variables and cached tensors. */
  dispose(): void;
}

/** The full-resolution logits of a forward result (first entry under deep supervision). */
export function mainLogits(out: tf.Tensor5D | tf.Tensor5D[]): tf.Tensor5D {
  return Array.isArray(out) ? out[0] : out;
}
