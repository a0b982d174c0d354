import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { Optimizer, clipByGlobalNorm } from "../../src/train/optim";
import { learningRate } from "../../src/train/schedule";

// Hand-computed single-variable references of PyTorch's update rules.
describe("train/optim", () => {
  before(async () => {
    await initBackend();
  });

  it("SGD with Nesterov momentum and weight decay follows torch.optim.SGD", () => {
    const w = tf.variable(tf.tensor1d([1, -2]), true, "optim_test_w1");
    const opt = new Optimizer([w], { kind: "sgd", momentum: 0.9, nesterov: true, weightDecay: 0.1 }, () => ({
      lrScale: 1,
      weightDecay: true,
    }));
    let ref = [1, -2];
    let buf = [0, 0];
    const grads = [
      [0.5, 0.25],
      [-1, 2],
    ];
    grads.forEach((g, t) => {
      const gd = g.map((x, i) => x + 0.1 * ref[i]);
      buf = t === 0 ? gd : buf.map((b, i) => 0.9 * b + gd[i]);
      const upd = gd.map((x, i) => x + 0.9 * buf[i]);
      ref = ref.map((x, i) => x - 0.01 * upd[i]);
      const gt = tf.tensor1d(g);
      opt.apply({ [w.name]: gt }, 0.01);
      gt.dispose();
    });
    const got = Array.from(w.dataSync());
    got.forEach((x, i) => assert.ok(Math.abs(x - ref[i]) < 1e-6, `${got} vs ${ref}`));
    opt.dispose();
    w.dispose();
  });

  it("AdamW applies decoupled weight decay and bias correction like torch.optim.AdamW", () => {
    const w = tf.variable(tf.tensor1d([1, -2]), true, "optim_test_w2");
    const opt = new Optimizer([w], { kind: "adamw", beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05 }, () => ({
      lrScale: 1,
      weightDecay: true,
    }));
    let ref = [1, -2],
      m = [0, 0],
      v = [0, 0];
    const grads = [
      [0.5, 0.25],
      [-1, 2],
      [0.1, 0.1],
    ];
    grads.forEach((g, k) => {
      const t = k + 1,
        lr = 0.1;
      ref = ref.map((x) => x * (1 - lr * 0.05));
      m = m.map((x, i) => 0.9 * x + 0.1 * g[i]);
      v = v.map((x, i) => 0.999 * x + 0.001 * g[i] * g[i]);
      ref = ref.map((x, i) => x - (lr * (m[i] / (1 - 0.9 ** t))) / (Math.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8));
      const gt = tf.tensor1d(g);
      opt.apply({ [w.name]: gt }, lr);
      gt.dispose();
    });
    const got = Array.from(w.dataSync());
    got.forEach((x, i) => assert.ok(Math.abs(x - ref[i]) < 1e-5, `${got} vs ${ref}`));
    opt.dispose();
    w.dispose();
  });

  it("keeps the tensor count flat over many updates", async () => {
    const w = tf.variable(tf.randomNormal([8, 8], 0, 1, "float32", 1), true, "optim_test_w3");
    const opt = new Optimizer([w], { kind: "adamw", beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.05 });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) {
      const g = { [w.name]: tf.onesLike(w) as tf.Tensor };
      const clipped = await clipByGlobalNorm(g, 1);
      opt.apply(clipped.grads, 1e-3);
      tf.dispose(Object.values(clipped.grads));
    }
    assert.equal(tf.memory().numTensors, before);
    opt.dispose();
    w.dispose();
  });

  it("clips the global gradient norm", async () => {
    const g = { a: tf.tensor1d([3, 0]), b: tf.tensor1d([0, 4]) };
    const { grads, norm } = await clipByGlobalNorm(g, 1);
    assert.ok(Math.abs(norm - 5) < 1e-6);
    const n2 = tf.tidy(() => tf.sqrt(tf.add(tf.sum(tf.square(grads.a)), tf.sum(tf.square(grads.b)))).dataSync()[0]);
    assert.ok(Math.abs(n2 - 1) < 1e-4);
    tf.dispose(Object.values(grads));
  });

  it("rejects bad optimizer settings naming the field", () => {
    assert.throws(
      () => new Optimizer([], { kind: "sgd", momentum: 1.5, nesterov: true, weightDecay: 0 }),
      /optimizer\.momentum is 1\.5/,
    );
  });

  it("schedules: warmup, poly and cosine", () => {
    assert.equal(learningRate({ kind: "poly", lr: 0.01, exponent: 0.9, warmupSteps: 0 }, 0, 100), 0.01);
    assert.ok(
      Math.abs(learningRate({ kind: "poly", lr: 0.01, exponent: 0.9, warmupSteps: 0 }, 50, 100) - 0.01 * 0.5 ** 0.9) <
        1e-12,
    );
    assert.equal(learningRate({ kind: "cosine", lr: 1, minLr: 0, warmupSteps: 10 }, 4, 110), 0.5);
    assert.ok(Math.abs(learningRate({ kind: "cosine", lr: 1, minLr: 0, warmupSteps: 10 }, 60, 110) - 0.5) < 1e-12);
    assert.ok(learningRate({ kind: "cosine", lr: 1, minLr: 0.1, warmupSteps: 0 }, 100, 100) - 0.1 < 1e-12);
  });
});
