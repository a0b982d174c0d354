// Initial weights are part of "same seed, same numbers": every model, drawn with a fixed seed, must give exactly the
// values recorded from version 0.1 (before the parameter contract was unified). A hash over names, shapes and bytes.
import { strict as assert } from "assert";
import { createHash } from "crypto";
import type * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { MODELS, modelNames, type RegistryEntry } from "../../src/registry";
import { NNFORMER_ACDC_MICRO, NNFORMER_E12_16X32X32, NNFORMER_E24_16X32X32, NnFormer } from "../../src/models/nnformer";
import { MaeNnFormer } from "../../src/mae/mae3d";

function hash(named: Iterable<[string, tf.Variable]>): string {
  const h = createHash("sha256");
  for (const [n, v] of named) {
    h.update(n + "|" + v.shape.join("x") + "|");
    h.update(Buffer.from((v.dataSync() as Float32Array).buffer));
  }
  return h.digest("hex").slice(0, 16);
}

/** Recorded with version 0.1 (commit 39d5d53): registry models at their unit-test size, seed 7, 1 channel, 3 classes. */
const REGISTRY_TINY_SEED7: Record<string, string> = {
  nnformer: "6fd5d49b449c1a2a",
  unet3d: "9d789144c5548833",
  unetr: "51881221695d4c03",
  "swin-unetr": "b46ed99e907c1a9e",
  transunet3d: "3189d9c22cb2fe7f",
};

describe("initial weights are those of version 0.1 (same seed, same numbers)", function () {
  before(async () => {
    await initBackend();
  });

  for (const name of modelNames()) {
    it(`${name} at unit-test size, seed 7`, () => {
      const e = MODELS[name] as RegistryEntry<any>;
      const m = e.build({ inChannels: 1, numClasses: 3, cropSize: e.tiny.cropSize, seed: 7 }, e.tiny.overrides);
      const family = Object.keys(REGISTRY_TINY_SEED7).find((f) => name.startsWith(`${f}-`))!;
      assert.equal(hash(m.params), REGISTRY_TINY_SEED7[family]);
      m.dispose();
    });
  }

  it("nnFormer presets at other seeds (quick study network, ACDC structure)", () => {
    const q = new NnFormer(NNFORMER_E24_16X32X32, { seed: 0 });
    assert.equal(hash(q.params), "95486925cbd34fe5");
    q.dispose();
    const a = new NnFormer(NNFORMER_ACDC_MICRO, { seed: 2 });
    assert.equal(hash(a.params), "4d9dfc415d1b37e2");
    a.dispose();
  });

  for (const [mode, expected] of [
    ["sparse", "4474dc4330e0b5f4"],
    ["simmim", "a77e3ca0a45783a1"],
    ["compact", "4474dc4330e0b5f4"],
  ] as const) {
    it(`MAE model (${mode}): encoder, decoder and mask tokens, seed 5`, () => {
      const m = new MaeNnFormer({ ...NNFORMER_E12_16X32X32, cropSize: [16, 64, 64] }, { mask: { mode } }, { seed: 5 });
      assert.equal(hash(m.namedParams()), expected);
      m.dispose();
    });
  }
});
