import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { countParams as count } from "../../src/layers/param_specs";
import { initBackend } from "../../src/runtime/backend";
import { makeRng } from "../../src/runtime/random";
import { plainOps } from "../../src/layers/plain_ops";
import {
  NNFORMER_ACDC,
  NNFORMER_ACDC_MICRO,
  NNFORMER_E12_16X32X32,
  NNFORMER_E24_32X64X64,
  NNFORMER_SYNAPSE,
  NNFORMER_E48_64X64X64,
  NNFORMER_TUMOR,
  NnFormer,
  NnFormerConfig,
  nnFormerParamSpecs,
  nnFormerParamTable,
  planNnFormer,
  checkNnFormerConfig,
} from "../../src/models/nnformer";
import { keyMaskFromVisibility, type WindowGeometry } from "../../src/layers/window_attention3d";

const ACDC_MICRO = NNFORMER_ACDC_MICRO;

function table(c: NnFormerConfig): Record<string, number> {
  return Object.fromEntries(nnFormerParamTable(c).map((r) => [r.component, r.params]));
}

function hasNaN(t: tf.Tensor): boolean {
  return t.dataSync().some((v) => !Number.isFinite(v));
}

describe("models/nnformer", function () {
  before(async () => {
    await initBackend();
  });

  it("has exactly the official parameter counts (spec §3)", () => {
    assert.equal(count(nnFormerParamSpecs(NNFORMER_SYNAPSE).params), 150_054_210);
    assert.equal(count(nnFormerParamSpecs(NNFORMER_ACDC).params), 37_160_200);
    assert.equal(count(nnFormerParamSpecs(NNFORMER_TUMOR).params), 37_606_726);
    assert.equal(count(nnFormerParamSpecs({ ...NNFORMER_E48_64X64X64, numClasses: 14 }).params), 9_522_078);
    assert.equal(count(nnFormerParamSpecs({ ...NNFORMER_SYNAPSE, deepSupervision: false }).params), 149_538_086);
  });

  it("matches the per-component rows of the spec's table", () => {
    const rows = [
      "embedding",
      "enc0.blocks",
      "enc0.norm",
      "enc0.down",
      "enc1.blocks",
      "enc1.norm",
      "enc1.down",
      "enc2.blocks",
      "enc2.norm",
      "enc2.down",
      "enc3.blocks",
      "enc3.norm",
      "dec.deep.up",
      "dec.deep.blocks",
      "dec.mid.up",
      "dec.mid.blocks",
      "dec.shallow.up",
      "dec.shallow.blocks",
      "heads",
    ];
    const expected: Record<string, number[]> = {
      synapse: [
        1746144,
        893844,
        384,
        1991424,
        3557160,
        768,
        7964160,
        14337744,
        1536,
        31853568,
        56695968,
        3072,
        9441024,
        13747152,
        2361216,
        3409320,
        590784,
        856788,
        86030 + 172046 + 344078,
      ],
      acdc: [
        437616, 226110, 192, 166272, 894588, 384, 1991424, 3661560, 768, 7964160, 14195184, 1536, 2361216, 3513720,
        590784, 857532, 74208, 216798, 6148,
      ],
      tumor: [
        441504, 225738, 192, 498048, 893844, 384, 1991424, 3629928, 768, 7964160, 14192208, 1536, 2361216, 3563088,
        590784, 860904, 147936, 218484, 24580,
      ],
    };
    const configs: Record<string, NnFormerConfig> = {
      synapse: NNFORMER_SYNAPSE,
      acdc: NNFORMER_ACDC,
      tumor: NNFORMER_TUMOR,
    };
    const totals: Record<string, number[]> = {
      synapse: [119045772, 30406284, 602154],
      acdc: [29539794, 7614258, 6148],
      tumor: [29839734, 7742412, 24580],
    };
    for (const [name, c] of Object.entries(configs)) {
      const t = table(c);
      assert.deepEqual(Object.keys(t).sort(), [...rows].sort(), name);
      rows.forEach((r, i) => assert.equal(t[r], expected[name][i], `${name} ${r}`));
      const sum = (pred: (k: string) => boolean) =>
        Object.entries(t)
          .filter(([k]) => pred(k))
          .reduce((n, [, v]) => n + v, 0);
      assert.deepEqual(
        [sum((k) => k === "embedding" || k.startsWith("enc")), sum((k) => k.startsWith("dec")), t.heads],
        totals[name],
        name,
      );
    }
  });

  it("plans the official stage shapes (Synapse, ACDC) without allocating", () => {
    const s = planNnFormer(NNFORMER_SYNAPSE);
    assert.deepEqual(
      s.encoder.map((e) => e.grid),
      [
        [32, 32, 32],
        [16, 16, 16],
        [8, 8, 8],
        [4, 4, 4],
      ],
    );
    assert.deepEqual(
      s.encoder.map((e) => e.dim),
      [192, 384, 768, 1536],
    );
    assert.deepEqual(
      s.encoder.map((e) => e.blocks[0].numWindows),
      [512, 64, 1, 1],
    );
    assert.deepEqual(
      s.encoder.map((e) => e.blocks[1].masked),
      [true, true, false, false],
    );
    assert.deepEqual(s.encoder[2].blocks[0].tokens, 512);
    assert.deepEqual(
      s.decoder.map((d) => [d.grid, d.dim, d.heads, d.blocks[0].numWindows]),
      [
        [[8, 8, 8], 768, 24, 1],
        [[16, 16, 16], 384, 12, 64],
        [[32, 32, 32], 192, 6, 512],
      ],
    );
    assert.deepEqual(
      s.encoder.flatMap((e) => e.dropPath).map((v) => +v.toFixed(4)),
      [0, 0.0286, 0.0571, 0.0857, 0.1143, 0.1429, 0.1714, 0.2],
    );
    assert.deepEqual(
      s.decoder.flatMap((d) => d.dropPath).map((v) => +v.toFixed(2)),
      [0, 0.04, 0.08, 0.12, 0.16, 0.2],
    );
    const a = planNnFormer(NNFORMER_ACDC);
    assert.deepEqual(a.embedGrids, [
      [14, 80, 80],
      [14, 40, 40],
    ]);
    assert.deepEqual(
      a.encoder.map((e) => e.grid),
      [
        [14, 40, 40],
        [14, 20, 20],
        [7, 10, 10],
        [3, 5, 5],
      ],
    );
    assert.deepEqual(a.encoder[0].blocks[1].padded, [15, 40, 40]);
    assert.equal(a.encoder[0].blocks[1].numWindows, 320);
    assert.ok(a.encoder[0].blocks[1].rolled && !a.encoder[0].blocks[1].masked);
    assert.ok(!a.encoder[2].blocks[1].rolled && !a.decoder[0].blocks[1].rolled);
    assert.equal(a.encoder[1].blocks[1].numWindows, 80);
  });

  it("rejects bad configs, naming the field, the value and the fix", () => {
    const cases: Array<[Partial<NnFormerConfig>, RegExp]> = [
      [{ cropSize: [64, 64, 62] }, /cropSize = \[64,64,62\].*multiple of patchSize/],
      [{ depths: [2, 2, 2] }, /depths = \[2,2,2\].*give 4 entries/],
      [{ decoderHeads: [12, 6] }, /decoderHeads.*give 3 entries/],
      [
        { numHeads: [3, 5, 12, 24] },
        /numHeads\[1\] = 5: encoder stage 1 has 96 channels; use a head count that divides it/,
      ],
      [{ decoderHeads: [12, 7, 3] }, /decoderHeads\[1\] = 7/],
      [
        {
          windowSizes: [
            [4, 4, 4],
            [3, 3, 3],
            [8, 8, 8],
            [4, 4, 4],
          ],
        },
        /windowSizes\[1\] = \[3,3,3\].*not divisible by the window.*padTokensToWindow/,
      ],
      [
        {
          windowSizes: [
            [4, 4, 2],
            [4, 4, 4],
            [8, 8, 8],
            [4, 4, 4],
          ],
        },
        /windowSizes\[0\].*cubic/,
      ],
      [{ embedStrides: { proj1: [2, 2, 2], proj2: [2, 2, 2] } }, /embedStrides.*must equal patchSize/],
      [{ embedDim: 47 }, /embedDim = 47.*even/],
      [
        {
          upOutputPaddings: [
            [1, 0, 0],
            [0, 0, 0],
            [0, 0, 0],
          ],
        },
        /upKernels\[0\]\/upOutputPaddings\[0\].*skip grid is \[8,4,4\]/,
      ],
      [{ globalRule: "max" as "min" }, /globalRule = "max"/],
      [{ dropPathRate: 1.5 }, /dropPathRate = 1.5/],
      [{ cropSize: [8, 16, 16] }, /too small/],
      [
        {
          ...NNFORMER_ACDC_MICRO,
          cropSize: [14, 32, 32],
          windowSizes: [
            [3, 4, 4],
            [3, 4, 4],
            [7, 2, 2],
            [3, 1, 1],
          ],
          decoderWindowSizes: [
            [7, 2, 2],
            [3, 4, 4],
            [3, 4, 4],
          ],
        },
        /windowSizes\[3\] = \[3,1,1\].*reaches row 8 of a 5-row table/,
      ],
    ];
    for (const [patch, re] of cases) {
      assert.throws(() => checkNnFormerConfig({ ...NNFORMER_E48_64X64X64, ...patch }), re, JSON.stringify(patch));
    }
    for (const c of [
      NNFORMER_SYNAPSE,
      NNFORMER_ACDC,
      NNFORMER_TUMOR,
      NNFORMER_E48_64X64X64,
      NNFORMER_E24_32X64X64,
      NNFORMER_E12_16X32X32,
      ACDC_MICRO,
    ]) {
      checkNnFormerConfig(c);
    }
  });

  it("micro: forward gives the deep-supervision shapes, no NaN, no leaked tensors; same seed, same weights", () => {
    const m = new NnFormer(NNFORMER_E12_16X32X32, { seed: 3 });
    const x = tf.randomNormal([2, 16, 32, 32, 1], 0, 1, "float32", 7) as tf.Tensor5D;
    const before = tf.memory().numTensors;
    const out = m.forward(x, { ops: plainOps });
    assert.deepEqual(out.logits.shape, [2, 16, 32, 32, 3]);
    assert.deepEqual(
      out.aux.map((a) => a.shape),
      [
        [2, 8, 16, 16, 3],
        [2, 4, 8, 8, 3],
      ],
    );
    assert.ok(!hasNaN(out.logits) && !out.aux.some(hasNaN));
    const noDs = m.forward(x, { ops: plainOps, deepSupervision: false });
    assert.equal(noDs.aux.length, 0);
    assert.equal(
      tf.tidy(() => tf.max(tf.abs(tf.sub(noDs.logits, out.logits))).dataSync()[0]),
      0,
    );
    tf.dispose([out.logits, ...out.aux, noDs.logits]);
    assert.equal(tf.memory().numTensors, before);
    // batch items are independent (windows never mix samples)
    const x1 = tf.slice(x, [1, 0, 0, 0, 0], [1, 16, 32, 32, 1]) as tf.Tensor5D;
    const one = m.forward(x1, { ops: plainOps, deepSupervision: false });
    const two = m.forward(x, { ops: plainOps, deepSupervision: false });
    const diff = tf.tidy(
      () => tf.max(tf.abs(tf.sub(one.logits, tf.slice(two.logits, [1, 0, 0, 0, 0], [1, 16, 32, 32, 3])))).dataSync()[0],
    );
    assert.ok(diff < 1e-5, `batch item 1 alone vs in a batch: ${diff}`);
    const m2 = new NnFormer(NNFORMER_E12_16X32X32, { seed: 3 });
    const m3 = new NnFormer(NNFORMER_E12_16X32X32, { seed: 4 });
    const w = (mm: NnFormer) => mm.params.get("model_down.layers.0.blocks.0.attn.qkv.weight")!.dataSync();
    assert.deepEqual(Array.from(w(m2)), Array.from(w(m)));
    assert.notDeepEqual(Array.from(w(m3)), Array.from(w(m)));
    assert.equal(
      m.numParams(),
      m.trainableVariables().reduce((n, v) => n + v.size, 0),
    );
    tf.dispose([x, x1, one.logits, two.logits]);
    [m, m2, m3].forEach((mm) => mm.dispose());
  });

  it("micro: training steps (variableGrads + SGD, drop path seeded) keep the tensor count and stay finite", () => {
    const m = new NnFormer(NNFORMER_E12_16X32X32, { seed: 1 });
    const opt = tf.train.sgd(0.01);
    const x = tf.randomNormal([1, 16, 32, 32, 1], 0, 1, "float32", 2) as tf.Tensor5D;
    const y = tf.oneHot(tf.randomUniform([1, 16, 32, 32], 0, 3, "int32", 5), 3) as tf.Tensor5D;
    const rng = makeRng(9);
    assert.throws(() => m.forward(x, { ops: plainOps, training: true }), /needs opts.rng/);
    const step = () => {
      const { value, grads } = tf.variableGrads(() => {
        const out = m.forward(x, { ops: plainOps, training: true, rng });
        return tf.losses.softmaxCrossEntropy(y, out.logits) as tf.Scalar;
      }, m.trainableVariables());
      opt.applyGradients(grads);
      const loss = value.dataSync()[0];
      tf.dispose([value, ...Object.values(grads)]);
      return loss;
    };
    step(); // the optimizer creates its state once
    const before = tf.memory().numTensors;
    const losses = [step(), step()];
    assert.equal(tf.memory().numTensors, before);
    assert.ok(losses.every(Number.isFinite), `losses ${losses}`);
    tf.dispose([x, y]);
    opt.dispose();
    m.dispose();
  });

  it("acdc structure (micro): depth padding, unmasked roll, output_padding; no NaN", () => {
    const m = new NnFormer(ACDC_MICRO, { seed: 2 });
    const x = tf.randomNormal([1, 14, 64, 64, 1], 0, 1, "float32", 3) as tf.Tensor5D;
    const before = tf.memory().numTensors;
    const out = m.forward(x, { ops: plainOps });
    assert.deepEqual(out.logits.shape, [1, 14, 64, 64, 4]);
    assert.equal(out.aux.length, 0);
    assert.ok(!hasNaN(out.logits));
    assert.throws(() => m.forward(x, { ops: plainOps, deepSupervision: true }), /no auxiliary heads/);
    out.logits.dispose();
    assert.equal(tf.memory().numTensors, before);
    tf.dispose(x);
    m.dispose();
  });

  it("encoder alone with MAE hooks: skips per stage, hooks called at every site", () => {
    const m = new NnFormer(NNFORMER_E12_16X32X32, { seed: 5 });
    const x = tf.randomNormal([1, 16, 32, 32, 1], 0, 1, "float32", 4) as tf.Tensor5D;
    const convs: string[] = [];
    let keyMasks = 0,
      blocks = 0;
    const enc = m.encode(x, {
      ops: plainOps,
      mask: {
        afterConv: (t, site) => {
          convs.push(site.name);
          return t;
        },
        keyMask: () => {
          keyMasks++;
          return null;
        },
        afterBlock: (t) => {
          blocks++;
          return t;
        },
      },
    });
    assert.equal(convs.length, 7);
    assert.equal(convs[0], "model_down.patch_embed.proj1.conv1");
    assert.equal(keyMasks, 8);
    assert.equal(blocks, 8);
    assert.deepEqual(
      enc.skips.map((s) => s.shape),
      [
        [512, 12],
        [64, 24],
        [8, 48],
        [1, 96],
      ],
    );
    assert.deepEqual(enc.grids, [
      [8, 8, 8],
      [4, 4, 4],
      [2, 2, 2],
      [1, 1, 1],
    ]);
    // an all-visible key mask (added on top of the −100 shift mask) changes nothing; hiding tokens does
    const keyMaskOf = (visibleEvery: number) => ({
      keyMask: ({ geometry: g, batch }: { geometry: WindowGeometry; batch: number }) => {
        const vis = new Float32Array(batch * g.grid[0] * g.grid[1] * g.grid[2]).map((_, i) =>
          visibleEvery && i % visibleEvery === 0 ? 0 : 1,
        );
        return tf.tensor3d(keyMaskFromVisibility(g, batch, vis), [batch * g.numWindows, g.tokens, g.tokens]);
      },
    });
    const plain = m.encode(x, { ops: plainOps });
    const allVisible = m.encode(x, { ops: plainOps, mask: keyMaskOf(0) });
    const someHidden = m.encode(x, { ops: plainOps, mask: keyMaskOf(3) });
    const d = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
    const same = d(plain.skips[0], allVisible.skips[0]),
      changed = d(plain.skips[0], someHidden.skips[0]);
    assert.ok(same < 1e-6 && changed > 1e-3, `all visible ${same}, some hidden ${changed}`);
    tf.dispose([x, ...enc.skips, ...plain.skips, ...allVisible.skips, ...someHidden.skips]);
    m.dispose();
  });

  it("tiny (benchmark preset, 64³): real forward with deep supervision", function () {
    this.timeout(300000);
    const m = new NnFormer(NNFORMER_E48_64X64X64, { seed: 0 });
    assert.equal(m.numParams(), count(nnFormerParamSpecs(NNFORMER_E48_64X64X64).params));
    const x = tf.randomNormal([1, 64, 64, 64, 1], 0, 1, "float32", 1) as tf.Tensor5D;
    const out = m.forward(x, { ops: plainOps });
    assert.deepEqual(out.logits.shape, [1, 64, 64, 64, 9]);
    assert.deepEqual(
      out.aux.map((a) => a.shape),
      [
        [1, 32, 32, 32, 9],
        [1, 16, 16, 16, 9],
      ],
    );
    assert.ok(!hasNaN(out.logits));
    tf.dispose([x, out.logits, ...out.aux]);
    m.dispose();
  });
});
