import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { NnFormer, NnFormerConfig, NNFORMER_ACDC_MICRO, NNFORMER_E12_16X32X32 } from "../../src/models/nnformer";
import { plainOps } from "../../src/layers/plain_ops";
import { fastOps } from "../../src/layers/fast_ops";
import { Ops } from "../../src/layers/ops";
import { deepSupervisionLoss } from "../../src/losses/dice_ce";
import { makeRng } from "../../src/runtime/random";

// The whole network, fast vs plain ops: logits and the gradient of Dice+CE w.r.t. every parameter (training mode with
// drop path, seeded). Covers the window gathers (partition/roll/pad and back), GELU, LayerNorm, attention, convolutions
// and transposed convolutions together, on the Synapse structure (deep supervision, shift mask) and on ACDC's
// (depth padding 14 → 15, unmasked roll, output padding).
describe("models/nnformer fast vs plain", () => {
  before(async () => {
    await initBackend();
  });

  const cases: Array<[string, NnFormerConfig]> = [
    ["micro", { ...NNFORMER_E12_16X32X32, dropPathRate: 0.3 }],
    ["acdc micro", NNFORMER_ACDC_MICRO],
  ];
  for (const [name, config] of cases) {
    it(`${name}: logits and every parameter gradient agree`, function () {
      this.timeout(180000);
      const m = new NnFormer(config, { seed: 3 });
      const x = tf.randomNormal([1, ...config.cropSize, config.inChannels], 0, 1, "float32", 5) as tf.Tensor5D;
      const y = tf.tidy(() =>
        tf.floor(tf.randomUniform([1, ...config.cropSize], 0, config.numClasses, "float32", 6)).toInt(),
      );
      const run = (ops: Ops) => {
        let logits: Float32Array | null = null;
        const { value, grads } = tf.variableGrads(() => {
          const out = m.forward(x, { ops, training: true, rng: makeRng(11) });
          logits = out.logits.dataSync() as Float32Array;
          return deepSupervisionLoss([out.logits, ...out.aux], [y], { batchDice: true });
        }, m.trainableVariables());
        const loss = value.dataSync()[0];
        value.dispose();
        return { loss, logits: logits!, grads };
      };
      // one warm-up pass each: cached constants (ones, selectors, gather indices) are made once and kept
      for (const ops of [plainOps, fastOps]) tf.dispose(Object.values(run(ops).grads));
      const before = tf.memory().numTensors;
      const p = run(plainOps);
      const f = run(fastOps);
      assert.ok(Math.abs(p.loss - f.loss) < 1e-4 * Math.abs(p.loss), `loss ${f.loss} vs ${p.loss}`);
      const lmax = p.logits.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
      const ldiff = p.logits.reduce((a, v, i) => Math.max(a, Math.abs(v - f.logits[i])), 0);
      assert.ok(ldiff < 1e-4 * lmax, `logits differ by ${ldiff} (max ${lmax})`);
      assert.deepEqual(Object.keys(f.grads).sort(), Object.keys(p.grads).sort());
      const bad: string[] = [];
      for (const k of Object.keys(p.grads)) {
        const [scale, diff] = tf.tidy(() => [
          tf.max(tf.abs(p.grads[k])).dataSync()[0] + 1e-12,
          tf.max(tf.abs(tf.sub(p.grads[k], f.grads[k]))).dataSync()[0],
        ]);
        if (!(diff / scale < 2e-3)) bad.push(`${k}: max |Δ| ${diff} against max |g| ${scale}`);
      }
      assert.deepEqual(bad, []);
      tf.dispose([...Object.values(p.grads), ...Object.values(f.grads)]);
      assert.equal(tf.memory().numTensors, before);
      tf.dispose([x, y]);
      m.dispose();
    });
  }
});
