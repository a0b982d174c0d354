// Layer-wise learning-rate decay for a pretrained nnFormer encoder (docs/mae.md §4; MAE/BEiT fine-tuning): the decoder
// and heads train at the full rate, and each encoder level below them at `decay` times the level above it:
// stage 3 (bottleneck) d, stage 2 d², stage 1 d³, stage 0 d⁴, the convolutional embedding d⁵.
import * as tf from "@tensorflow/tfjs";
import { ParamGroupRule, defaultRule } from "./optim";
import { stableName } from "../layers/param_specs";

/** The learning-rate multiplier of an nnFormer parameter (official name) under layer-wise decay `decay`. */
export function nnFormerLrScale(name: string, decay: number): number {
  if (name.startsWith("model_down.patch_embed.")) return Math.pow(decay, 5);
  const m = /^model_down\.(?:layers\.(\d)\.|norm(\d)\.)/.exec(name);
  if (m) return Math.pow(decay, 4 - Number(m[1] ?? m[2]));
  return 1;
}

/** A parameter rule for fit(): layer-wise decay on top of the default weight-decay groups. */
export function nnFormerLayerDecay(decay: number): (v: tf.Variable) => ParamGroupRule {
  if (!(decay > 0 && decay <= 1))
    throw new Error(`layerDecay is ${decay}: use a value in (0, 1] (1 = off; MAE uses 0.65-0.75)`);
  return (v) => ({ ...defaultRule(v), lrScale: nnFormerLrScale(stableName(v.name), decay) });
}
