import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/runtime/backend";
import { makeRng } from "../src/runtime/random";
import { plainOps } from "../src/layers/plain_ops";
import { disposeCachedConstants, selectOps } from "../src/layers/fast_ops";
import type { Ops } from "../src/layers/ops";
import {
  MODELS,
  MODEL_ALIASES,
  buildModel,
  modelEntry,
  modelNames,
  resolveModelName,
  type RegistryEntry,
} from "../src/registry";
import { NnFormerSegmentation, nnFormerOf } from "../src/models/nnformer_segmentation";
import { countParams } from "../src/layers/param_specs";
import type { SegmentationModel } from "../src/models/types";

/** max |a − b| (or max |a| without b), computed and freed here. */
function maxAbs(a: tf.Tensor, b?: tf.Tensor): number {
  const m = tf.tidy(() => tf.max(tf.abs(b ? tf.sub(a, b) : a)));
  const v = m.dataSync()[0];
  m.dispose();
  return v;
}

const asList = (out: tf.Tensor5D | tf.Tensor5D[]) => (Array.isArray(out) ? out : [out]);

/** A loss that touches every output: mean squared logits minus a fixed target, summed over deep-supervision heads. */
function loss(model: SegmentationModel, x: tf.Tensor5D, ops: Ops, training: boolean, seed: number): tf.Scalar {
  const outs = asList(model.forward(x, { ops, training, rng: makeRng(seed) }));
  return tf.addN(outs.map((o) => tf.mean(tf.square(tf.sub(o, 0.5))))) as tf.Scalar;
}

/** Parameters whose gradient is zero by construction, as their specs say (e.g. a conv bias right before InstanceNorm). */
function zeroGradNames(model: SegmentationModel): Set<string> {
  return new Set(model.specs.filter((s) => s.zeroGrad).map((s) => s.name));
}

describe("registry", function () {
  let ops: Ops;
  before(async () => {
    ops = selectOps((await initBackend()).name);
  });

  it("names every Table II model with the settings that differ", () => {
    for (const n of [
      "nnformer-e48-64x64x64",
      "nnformer-e24-16x32x32",
      "unet3d-cpu",
      "unetr-cpu",
      "unetr-btcv",
      "swin-unetr-f12",
      "swin-unetr-f48",
      "transunet3d-cpu",
    ]) {
      assert.ok(modelNames().includes(n as never), n);
    }
  });

  it("refuses an unknown name, listing the registered ones", () => {
    assert.throws(
      () => buildModel("unetr-huge", { inChannels: 1, numClasses: 2, cropSize: [64, 64, 64], seed: 0 }),
      /unknown model "unetr-huge"; registered: nnformer-e48-64x64x64, .*swin-unetr-f48.*aliases: nnformer-tiny/,
    );
  });

  it("keeps the old nnFormer names as aliases: same preset, and the model keeps the name it was built under", () => {
    assert.deepEqual(Object.keys(MODEL_ALIASES), [
      "nnformer-tiny",
      "nnformer-small",
      "nnformer-quick",
      "nnformer-micro",
    ]);
    for (const [alias, name] of Object.entries(MODEL_ALIASES)) {
      assert.equal(resolveModelName(alias), name);
      assert.equal(modelEntry(alias), MODELS[name]);
    }
    // the sized names say what the old ones hid: "tiny" (embed 48) is the larger one
    assert.equal((MODELS["nnformer-e48-64x64x64"].preset as { embedDim: number }).embedDim, 48);
    assert.equal((MODELS["nnformer-e24-32x64x64"].preset as { embedDim: number }).embedDim, 24);
    const m = buildModel("nnformer-micro", { inChannels: 1, numClasses: 3, cropSize: [16, 32, 32], seed: 0 });
    assert.equal(m.name, "nnformer-micro");
    m.dispose();
  });

  it("says by capability, not by name, which models MAE can pretrain", () => {
    const pretrainable = modelNames().filter((n) => MODELS[n].capabilities.maePretrainable);
    assert.deepEqual(pretrainable, [
      "nnformer-e48-64x64x64",
      "nnformer-e24-32x64x64",
      "nnformer-e24-16x32x32",
      "nnformer-e12-16x32x32",
      "nnformer-synapse",
    ]);
    const u = buildModel("unet3d-cpu", { inChannels: 1, numClasses: 2, cropSize: [16, 16, 16], seed: 0 });
    assert.throws(() => nnFormerOf(u), /"unet3d-cpu" is not an nnFormer.*no MAE-pretrainable encoder/);
    u.dispose();
  });

  it("builds the CPU presets from BuildOptions (channels, classes and crop come from the data)", () => {
    const m = buildModel("unet3d-cpu", { inChannels: 2, numClasses: 5, cropSize: [32, 64, 64], seed: 3 });
    assert.equal(m.name, "unet3d-cpu");
    assert.deepEqual(
      [(m.config as any).inChannels, (m.config as any).numClasses, (m.config as any).cropSize],
      [2, 5, [32, 64, 64]],
    );
    assert.equal(
      m.numParams(),
      m.trainableVariables().reduce((n, v) => n + v.size, 0),
    );
    m.dispose();
  });

  for (const name of modelNames()) {
    const entry = MODELS[name] as RegistryEntry<any>;
    it(`${name} (unit-test size): shape, finite, fast = plain, gradients, 2 training steps, no leaks`, () => {
      disposeCachedConstants();
      const before = tf.memory().numTensors;
      const { cropSize, overrides } = entry.tiny;
      const model = entry.build({ inChannels: 1, numClasses: 3, cropSize, seed: 7 }, overrides);
      assert.equal(model.name, name);
      const vars = model.trainableVariables();
      // one parameter contract: the spec list, the store and the variables agree, name by name and in order
      assert.equal(model.numParams(), countParams(model.specs));
      assert.equal(
        model.numParams(),
        vars.reduce((n, v) => n + v.size, 0),
      );
      assert.deepEqual(
        [...model.params.keys()],
        model.specs.map((s) => s.name),
      );
      model.specs.forEach((s) => assert.deepEqual(model.params.get(s.name).shape, s.shape, s.name));
      const x = tf.randomNormal([1, ...cropSize, 1], 0, 1, "float32", 11) as tf.Tensor5D;

      // forward: full-resolution logits first, finite, same with plain and fast ops
      const outs = asList(model.forward(x, { ops }));
      assert.deepEqual(outs[0].shape, [1, ...cropSize, 3]);
      outs.slice(1).forEach((o, i) => assert.equal(o.shape[1], cropSize[0] / 2 ** (i + 1)));
      const plain = asList(model.forward(x, { ops: plainOps }));
      outs.forEach((o, i) => {
        assert.ok(o.dataSync().every(Number.isFinite), "finite logits");
        assert.ok(maxAbs(o, plain[i]) < 1e-4 * Math.max(1, maxAbs(plain[i])), "fast vs plain");
      });
      tf.dispose([...outs, ...plain]);

      // gradients (eval mode, so drop path cannot silence a branch): finite and non-zero for every variable
      const { value, grads } = tf.variableGrads(() => loss(model, x, ops, false, 1), vars);
      assert.ok(Number.isFinite(value.dataSync()[0]));
      const zero = zeroGradNames(model);
      const maxAll = Math.max(...Object.values(grads).map((g) => maxAbs(g)));
      for (const v of vars) {
        const g = grads[v.name];
        assert.ok(g, `no gradient for ${v.name}`);
        const gv = g.dataSync() as Float32Array;
        assert.ok(gv.every(Number.isFinite), `non-finite gradient for ${v.name}`);
        const m = gv.reduce((a, b) => Math.max(a, Math.abs(b)), 0);
        const short = v.name.slice(v.name.indexOf("/") + 1);
        if (zero.has(short)) assert.ok(m <= 1e-3 * maxAll, `${short} should get ~0 gradient by construction, got ${m}`);
        else assert.ok(m > 0, `zero gradient for ${v.name}`);
      }
      tf.dispose([value, ...Object.values(grads)]);

      // from here on the tensor count must not move: fastOps' cached constants exist by now, the optimiser's too
      const opt = tf.train.sgd(1e-3);
      const steady = tf.memory().numTensors;
      tf.dispose(model.forward(x, { ops }));
      assert.equal(tf.memory().numTensors, steady, "forward leaked tensors");
      // two optimiser steps in training mode (seeded drop path where the model has it)
      for (let step = 0; step < 2; step++) {
        const r = tf.variableGrads(() => loss(model, x, ops, true, 100 + step), vars);
        assert.ok(Number.isFinite(r.value.dataSync()[0]));
        opt.applyGradients(r.grads);
        tf.dispose([r.value, ...Object.values(r.grads)]);
      }
      assert.equal(tf.memory().numTensors, steady, "training steps leaked tensors");
      opt.dispose();
      assert.ok(vars.every((v) => v.dataSync().every(Number.isFinite)));

      x.dispose();
      model.dispose();
      disposeCachedConstants(); // fastOps keeps constants (ones rows, selections) across calls
      assert.equal(tf.memory().numTensors, before, "tensors left after dispose");
    });
  }

  it("nnFormer satisfies the interface through the adapter (deep supervision → [full, ½, ¼])", () => {
    const entry = modelEntry("nnformer-tiny");
    const m = entry.build(
      { inChannels: 1, numClasses: 3, cropSize: entry.tiny.cropSize, seed: 1 },
      entry.tiny.overrides,
    );
    assert.ok(m instanceof NnFormerSegmentation);
    const x = tf.zeros([1, ...entry.tiny.cropSize, 1]) as tf.Tensor5D;
    const out = m.forward(x, { ops });
    assert.ok(Array.isArray(out) && out.length === 3);
    assert.deepEqual(
      out.map((o) => o.shape.slice(1, 4)),
      [
        [16, 32, 32],
        [8, 16, 16],
        [4, 8, 8],
      ],
    );
    tf.dispose([x, ...out]);
    m.dispose();
  });
});
