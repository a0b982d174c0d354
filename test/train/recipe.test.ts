import { strict as assert } from "assert";
import * as path from "path";
import { finetuneTrainConfig, runFolder, type FinetuneSettings } from "../../src/train/recipe";

const SETTINGS: FinetuneSettings = {
  steps: 250,
  batchSize: 2,
  optimizer: "sgd",
  lr: 1e-2,
  warmupFraction: 0.05,
  evalEvery: 50,
  augment: true,
  foregroundFraction: 0.33,
};

describe("train/recipe", () => {
  it("SGD: nnU-Net's Nesterov momentum 0.99 and weight decay 3e-5; poly 0.9 with rounded warm-up; clip 12", () => {
    assert.deepEqual(finetuneTrainConfig(SETTINGS, 3), {
      maxSteps: 250,
      optimizer: { kind: "sgd", momentum: 0.99, nesterov: true, weightDecay: 3e-5 },
      schedule: { kind: "poly", lr: 1e-2, exponent: 0.9, warmupSteps: 13 },
      clipNorm: 12,
      evalEvery: 50,
      seed: 3,
    });
  });

  it("AdamW: betas 0.9/0.999, eps 1e-8, weight decay 0.01; the config is a copy (callers may change it)", () => {
    const c = finetuneTrainConfig({ ...SETTINGS, optimizer: "adamw", warmupFraction: 0 }, 0);
    assert.deepEqual(c.optimizer, { kind: "adamw", beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
    assert.equal(c.schedule.kind === "poly" && c.schedule.warmupSteps, 0);
    (c.optimizer as { weightDecay: number }).weightDecay = 1;
    assert.equal(
      (finetuneTrainConfig({ ...SETTINGS, optimizer: "adamw" }, 0).optimizer as { weightDecay: number }).weightDecay,
      0.01,
    );
  });

  it("names run folders after the cell key, with | and = replaced", () => {
    assert.equal(
      runFolder("runs/quick", "model=nnformer-quick|init=mae|frac=0.25|seed=0"),
      path.join("runs/quick", "runs", "model_nnformer-quick_init_mae_frac_0.25_seed_0"),
    );
  });
});
