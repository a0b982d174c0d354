// What every model built on a parameter-spec list answers from that list and its store: the parameter count, the
// per-component table and the trainable variables. nnFormer and the baselines (spec_model.ts) extend it.
import * as tf from "@tensorflow/tfjs";
import { countParams, paramTable, type ParamHolder, type ParamSpec, type ParamStore } from "../layers/param_specs";

export abstract class ParamModel implements ParamHolder {
  /** Trainable parameters in official order. */
  abstract readonly specs: readonly ParamSpec[];
  /** Trainable weights by official name, in our layout. */
  abstract readonly params: ParamStore;

  /** Trainable parameter count. */
  numParams(): number {
    return countParams(this.specs);
  }

  /** Parameters per component (the rows of a parameter table). */
  paramTable(): Array<{ component: string; params: number }> {
    return paramTable(this.specs);
  }

  /** All trainable variables (for optimizers / tf.variableGrads). */
  trainableVariables(): tf.Variable[] {
    return this.params.variables();
  }
}
