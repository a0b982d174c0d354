import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { Optimizer, OptimizerConfig, ParamGroupRule } from "../../src/train/optim";
import { fusedUpdatesAvailable } from "../../src/train/fused_update";
import { FUSED_UPDATE_WASM } from "../../src/train/fused_update_wasm";
import { WAT_FILE, assembleWat } from "../../scripts/build_wasm";

// Odd sizes on purpose: the kernels run 4 lanes at a time and finish the rest one by one.
const SHAPES: number[][] = [[3], [5, 7], [4, 4, 4], [1031], [2, 3, 3, 1, 6]];

/** Trains fresh variables for `steps` updates with one optimizer; returns every weight and state value after each step. */
function run(config: OptimizerConfig, fused: boolean, steps: number): Float32Array[][] {
  const vars = SHAPES.map((s, i) => tf.variable(tf.randomNormal(s, 0, 1, "float32", 11 + i), true, `fu_${fused}_${i}`));
  // mixed groups: layer-decay scales and weight decay on some variables only
  const rule = (v: tf.Variable): ParamGroupRule => ({
    lrScale: v.name.endsWith("_1") ? 0.75 : 1,
    weightDecay: v.shape.length > 1,
  });
  const opt = new Optimizer(vars, config, rule, { fused });
  const out: Float32Array[][] = [];
  for (let step = 0; step < steps; step++) {
    // gradients with a wide range of magnitudes, tiny values included
    const grads = Object.fromEntries(
      vars.map((v, i) => [
        v.name,
        tf.tidy(() => tf.randomNormal(v.shape, 0, 1, "float32", 100 * step + i + 1).mul(10 ** (-i - 1))),
      ]),
    );
    opt.apply(grads, 3e-3 * (step + 1));
    tf.dispose(Object.values(grads));
    out.push(vars.map((v) => v.dataSync() as Float32Array));
  }
  opt.dispose();
  tf.dispose(vars);
  return out;
}

async function stateOf(config: OptimizerConfig, fused: boolean, steps: number) {
  const vars = SHAPES.map((s, i) => tf.variable(tf.randomNormal(s, 0, 1, "float32", 11 + i), true, `fs_${fused}_${i}`));
  const opt = new Optimizer(vars, config, () => ({ lrScale: 1, weightDecay: true }), { fused });
  for (let step = 0; step < steps; step++) {
    const grads = Object.fromEntries(
      vars.map((v, i) => [v.name, tf.randomNormal(v.shape, 0, 1, "float32", 7 + 100 * step + i)]),
    );
    opt.apply(grads, 1e-2);
    tf.dispose(Object.values(grads));
  }
  const st = await opt.state();
  const slots = vars.map((v) => st.slots[v.name]);
  opt.dispose();
  tf.dispose(vars);
  return slots;
}

const same = (a: Float32Array, b: Float32Array): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

const CONFIGS: Array<[string, OptimizerConfig]> = [
  ["AdamW", { kind: "adamw", beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05 }],
  ["AdamW (MAE betas, no decay)", { kind: "adamw", beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0 }],
  ["SGD Nesterov", { kind: "sgd", momentum: 0.99, nesterov: true, weightDecay: 3e-5 }],
  ["SGD plain momentum", { kind: "sgd", momentum: 0.9, nesterov: false, weightDecay: 0 }],
];

describe("train/fused_update: single-pass optimizer kernels on wasm", () => {
  before(async () => {
    await initBackend();
  });

  it("the committed wasm bytes are the assembled fused_update.wat", async () => {
    assert.equal(await assembleWat(WAT_FILE), FUSED_UPDATE_WASM, "rerun: npx tsx scripts/build_wasm.ts");
  });

  it("run here (the test suite's backend is unthreaded wasm)", () => {
    assert.equal(tf.getBackend(), "wasm");
    assert.equal(fusedUpdatesAvailable(), true);
  });

  for (const [name, config] of CONFIGS) {
    it(`${name}: weights and state bit-identical to the tf-op update over 4 steps`, async () => {
      const fused = run(config, true, 4);
      const plain = run(config, false, 4);
      fused.forEach((vars, step) =>
        vars.forEach((w, i) => assert.ok(same(w, plain[step][i]), `step ${step + 1}, variable ${i} [${SHAPES[i]}]`)),
      );
      const fs = await stateOf(config, true, 3);
      const ps = await stateOf(config, false, 3);
      fs.forEach((s, i) => {
        assert.ok(same(s.m, ps[i].m), `first moment of variable ${i}`);
        if (s.s || ps[i].s) assert.ok(same(s.s!, ps[i].s!), `second moment of variable ${i}`);
      });
      // the weights moved: the comparison is not of two untouched copies
      assert.ok(!same(fused[3][3], fused[0][3]));
    });
  }

  it("keeps the tensor count flat", () => {
    const w = tf.variable(tf.randomNormal([37, 5], 0, 1, "float32", 3), true, "fu_leak");
    const opt = new Optimizer([w], CONFIGS[0][1]);
    const g = tf.onesLike(w);
    opt.apply({ [w.name]: g }, 1e-3);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) opt.apply({ [w.name]: g }, 1e-3);
    assert.equal(tf.memory().numTensors, before);
    opt.dispose();
    tf.dispose([w, g]);
  });
});
