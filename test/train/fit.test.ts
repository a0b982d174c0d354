import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { fit, FitState, NonFiniteLossError, TrainTask } from "../../src/train/fit";
import { Rng, normal } from "../../src/runtime/random";

// Linear regression y = x·w* + noise: a task where fit must drive the loss down.
function regressionTask(name: string, opts: { nanAt?: number } = {}) {
  const wTrue = [1.5, -2, 0.5];
  const w = tf.variable(tf.zeros([3, 1]), true, name);
  const saved: Array<{ tag: string; step: number; w: number[] }> = [];
  const task: TrainTask = {
    variables: () => [w],
    loss(step: number, rng: Rng) {
      if (opts.nanAt !== undefined && step === opts.nanAt) return tf.mul(tf.sum(w), NaN) as tf.Scalar;
      const xs: number[] = [],
        ys: number[] = [];
      for (let i = 0; i < 16; i++) {
        const x = [normal(rng), normal(rng), normal(rng)];
        xs.push(...x);
        ys.push(x[0] * wTrue[0] + x[1] * wTrue[1] + x[2] * wTrue[2] + 0.01 * normal(rng));
      }
      const pred = tf.matMul(tf.tensor2d(xs, [16, 3]), w);
      return tf.mean(tf.square(pred.sub(tf.tensor2d(ys, [16, 1])))) as tf.Scalar;
    },
    async evaluate() {
      const err = tf.tidy(() => tf.sum(tf.abs(w.sub(tf.tensor2d(wTrue, [3, 1])))).dataSync()[0]);
      return { metric: -err, err };
    },
    async save(tag: "latest" | "best", state: FitState) {
      saved.push({ tag, step: state.step, w: Array.from(w.dataSync()) });
    },
  };
  return { task, w, saved };
}

const config = {
  maxSteps: 60,
  optimizer: { kind: "adamw" as const, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 },
  schedule: { kind: "cosine" as const, lr: 0.1, minLr: 0.001, warmupSteps: 5 },
  clipNorm: 10,
  evalEvery: 20,
  seed: 3,
};

describe("train/fit", () => {
  before(async () => {
    await initBackend();
  });

  it("learns, evaluates, checkpoints, and keeps the tensor count flat", async () => {
    const { task, w, saved } = regressionTask("fit_test_w1");
    const before = tf.memory().numTensors;
    const r = await fit(task, config);
    assert.equal(tf.memory().numTensors, before);
    assert.equal(r.step, 60);
    assert.ok(r.records[59].loss < r.records[0].loss / 20, `loss ${r.records[0].loss} -> ${r.records[59].loss}`);
    assert.ok(r.records[59].eval!.err < 0.4, `weight error (starts at 4.0) ${r.records[59].eval!.err}`);
    assert.deepEqual(
      saved.filter((s) => s.tag === "latest").map((s) => s.step),
      [20, 40, 60],
    );
    w.dispose();
  });

  it("resuming from a saved state gives the same weights as an uninterrupted run", async () => {
    const a = regressionTask("fit_test_w2");
    await fit(a.task, config);
    const b = regressionTask("fit_test_w3");
    let optState: any;
    const half = await fit(b.task, config, { onStep: (rec) => rec.step < 30 });
    assert.equal(half.step, 30);
    // restart: same variable values, optimizer state captured by a fresh run that stops at the same point
    const c = regressionTask("fit_test_w4");
    const saveOpt = c.task.save!;
    c.task.save = async (tag, state, opt) => {
      await saveOpt(tag, state, opt);
      if (tag === "latest") optState = { state: { ...state }, optimizer: await opt.state() };
    };
    await fit(c.task, { ...config, evalEvery: 30 }, { onStep: (rec) => rec.step < 30 }).catch(() => undefined);
    // c stopped after the step-30 checkpoint; continue it to the end
    await fit(c.task, { ...config, evalEvery: 30 }, { resume: optState });
    const wa = Array.from(a.w.dataSync()),
      wc = Array.from(c.w.dataSync());
    wa.forEach((x, i) => assert.ok(Math.abs(x - wc[i]) < 1e-6, `${wa} vs ${wc}`));
    [a.w, b.w, c.w].forEach((w) => w.dispose());
  });

  it("stops on a NaN loss with a clear error and without saving the bad step", async () => {
    const { task, w, saved } = regressionTask("fit_test_w5", { nanAt: 25 });
    await assert.rejects(fit(task, config), (e: Error) => e instanceof NonFiniteLossError && /step 25/.test(e.message));
    assert.deepEqual(
      saved.map((s) => s.step),
      [20, 20],
    ); // best and latest at step 20, nothing after
    w.dispose();
  });

  it("rejects bad settings naming the field", async () => {
    const { task, w } = regressionTask("fit_test_w6");
    await assert.rejects(fit(task, { ...config, maxSteps: 0 }), /train\.maxSteps is 0/);
    w.dispose();
  });
});
