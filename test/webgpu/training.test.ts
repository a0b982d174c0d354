// Whole-network checks on webgpu against wasm (both with the backend's fast ops): an nnFormer training step (loss,
// every gradient, every parameter after nnU-Net's SGD update; Adam's first step is lr·sign(g), which flips on
// gradients that are zero up to rounding), an MAE pretraining step, and sliding-window inference.
// Micro sizes: lavapipe is a software GPU.
import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { NnFormer, NNFORMER_E12_16X32X32, NnFormerConfig } from "../../src/models/nnformer";
import { MaeNnFormer } from "../../src/mae/mae3d";
import { selectOps } from "../../src/layers/fast_ops";
import { deepSupervisionLoss } from "../../src/losses/dice_ce";
import { Optimizer, SGD_NNUNET } from "../../src/train/optim";
import { slidingWindowPredict } from "../../src/infer/sliding_window";
import { diagonalAffine, Volume } from "../../src/data/volume";
import { makeRng } from "../../src/runtime/random";
import { randomData, relErr } from "../layers/grad_check";
import { assertNoGpuErrors, startWebgpuSuite } from "./helpers";

const CONFIG: NnFormerConfig = { ...NNFORMER_E12_16X32X32, dropPathRate: 0.2 };

/** Variable names carry a per-instance prefix ("nnformer3/..."). */
const unprefixed = (name: string) => name.replace(/^[^/]+\//, "");

interface StepResult {
  loss: number;
  grads: Map<string, Float32Array>;
  params: Map<string, Float32Array>;
  leaked: number;
}

/** One training step on `backend` from the same seeded weights and batch; reads with await data() only. */
async function nnformerStep(backend: string): Promise<StepResult> {
  await tf.setBackend(backend);
  const m = new NnFormer(CONFIG, { seed: 3 });
  const ops = selectOps(backend);
  const [D, H, W] = CONFIG.cropSize;
  const x = tf.tensor5d(randomData([1, D, H, W, 1], 5), [1, D, H, W, 1]);
  const labels = Int32Array.from(randomData([D * H * W], 6), (v) => Math.floor((v + 1) * 1.5) % CONFIG.numClasses);
  const y = tf.tensor4d(labels, [1, D, H, W], "int32");
  const vars = m.trainableVariables();
  const opt = new Optimizer(vars, SGD_NNUNET);
  const step = async () => {
    const { value, grads } = tf.variableGrads(() => {
      const out = m.forward(x, { ops, training: true, rng: makeRng(11) });
      return deepSupervisionLoss([out.logits, ...out.aux], [y], { batchDice: true });
    }, vars);
    const loss = (await value.data())[0];
    const g = new Map<string, Float32Array>();
    for (const [k, t] of Object.entries(grads)) g.set(unprefixed(k), (await t.data()) as Float32Array);
    opt.apply(grads, 1e-2);
    tf.dispose([value, ...Object.values(grads)]);
    return { loss, g };
  };
  const first = await step();
  const params = new Map<string, Float32Array>();
  for (const v of vars) params.set(unprefixed(v.name), (await v.data()) as Float32Array);
  // a second step must leave the tensor count flat (webgpu allocates through the same engine)
  const before = tf.memory().numTensors;
  await step();
  const leaked = tf.memory().numTensors - before;
  opt.dispose();
  m.dispose();
  tf.dispose([x, y]);
  await tf.setBackend("webgpu");
  return { loss: first.loss, grads: first.g, params, leaked };
}

describe("webgpu/whole network vs wasm", () => {
  before(startWebgpuSuite);
  afterEach(function () {
    assertNoGpuErrors(this.currentTest?.title ?? "");
  });

  it("nnFormer micro training step (fast ops, deep supervision, drop path, SGD) matches wasm at 1e-4", async function () {
    this.timeout(600000);
    const ref = await nnformerStep("wasm");
    const got = await nnformerStep("webgpu");
    assert.equal(got.leaked, 0, "webgpu step leaked tensors");
    assert.ok(Math.abs(got.loss - ref.loss) <= 1e-4 * Math.abs(ref.loss), `loss ${got.loss} vs wasm ${ref.loss}`);
    assert.deepEqual([...got.grads.keys()].sort(), [...ref.grads.keys()].sort());
    let worstGrad = 0;
    let worstName = "";
    for (const [k, g] of ref.grads) {
      const e = relErr(got.grads.get(k)!, g);
      if (e > worstGrad) [worstGrad, worstName] = [e, k];
    }
    // per-tensor relative to its largest entry; small gradients of deep tensors carry float32 reduction noise
    assert.ok(worstGrad <= 1e-3, `gradient ${worstName} rel err ${worstGrad.toExponential(2)}`);
    let worstParam = 0;
    for (const [k, p] of ref.params) worstParam = Math.max(worstParam, relErr(got.params.get(k)!, p));
    assert.ok(worstParam <= 1e-4, `parameters after the step: rel err ${worstParam.toExponential(2)}`);
  });

  it("MAE pretraining step (sparse masking) matches wasm: loss and every gradient", async function () {
    this.timeout(600000);
    const cfg: NnFormerConfig = { ...NNFORMER_E12_16X32X32, dropPathRate: 0 };
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const mae = new MaeNnFormer(cfg, { mask: { mode: "sparse", ratio: 0.75, unit: [4, 8, 8] } }, { seed: 1 });
      const xs = randomData([2, ...cfg.cropSize, 1], 8);
      const batch = { x: xs, mask: mae.drawMask(makeRng(2), 2) };
      const { value, grads } = tf.variableGrads(() => mae.loss(batch, selectOps(backend)), mae.trainableVariables());
      const loss = (await value.data())[0];
      const g = new Map<string, Float32Array>();
      for (const [k, t] of Object.entries(grads)) g.set(unprefixed(k), (await t.data()) as Float32Array);
      tf.dispose([value, ...Object.values(grads)]);
      mae.dispose();
      await tf.setBackend("webgpu");
      return { loss, g };
    };
    const ref = await run("wasm");
    const got = await run("webgpu");
    assert.ok(Math.abs(got.loss - ref.loss) <= 1e-4 * Math.abs(ref.loss), `loss ${got.loss} vs wasm ${ref.loss}`);
    for (const [k, g] of ref.g) {
      const e = relErr(got.g.get(k)!, g);
      assert.ok(e <= 1e-3, `MAE gradient ${k}: rel err ${e.toExponential(2)}`);
    }
  });

  it("sliding-window inference with mirror TTA matches wasm", async function () {
    this.timeout(600000);
    const cfg: NnFormerConfig = { ...NNFORMER_E12_16X32X32, dropPathRate: 0 };
    const shape: [number, number, number] = [20, 32, 40]; // 2 x 1 x 2 overlapping windows
    const image: Volume<Float32Array> = {
      data: randomData([shape[0] * shape[1] * shape[2]], 12),
      shape,
      channels: 1,
      spacing: [1, 1, 1],
      affine: diagonalAffine([1, 1, 1]),
      source: "webgpu test volume",
    };
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const m = new NnFormer(cfg, { seed: 4 });
      const ops = selectOps(backend);
      const predict = () =>
        slidingWindowPredict(image, (x) => tf.tidy(() => m.forward(x, { ops, training: false }).logits), {
          cropSize: cfg.cropSize,
          numClasses: cfg.numClasses,
          overlap: 0.5,
          mirror: [2],
        });
      await predict(); // the first call builds the ops' cached constants (gather indices, masks)
      const before = tf.memory().numTensors;
      const r = await predict();
      assert.equal(tf.memory().numTensors, before, `${backend}: sliding window leaked tensors`);
      m.dispose();
      await tf.setBackend("webgpu");
      return r;
    };
    const ref = await run("wasm");
    const got = await run("webgpu");
    assert.ok(ref.numWindows > 1);
    const e = relErr(got.probabilities, ref.probabilities);
    assert.ok(e <= 1e-4, `probabilities rel err ${e.toExponential(2)}`);
    let same = 0;
    got.labels.forEach((v, i) => (same += v === ref.labels[i] ? 1 : 0));
    assert.ok(same >= 0.999 * got.labels.length, `labels agree on ${same}/${got.labels.length} voxels`);
  });
});
