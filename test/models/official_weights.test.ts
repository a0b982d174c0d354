import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { plainOps } from "../../src/layers/plain_ops";
import { readSafetensors, serializeSafetensors, type TensorToWrite } from "../../src/io/safetensors";
import { NNFORMER_E12_16X32X32, NnFormer } from "../../src/models/nnformer";
import { MODELS, modelNames, type RegistryEntry } from "../../src/registry";
import { exportOfficialWeights, importOfficialWeights, officialStateDict } from "../../src/models/official_weights";

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

describe("models/official_weights", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nnformer-weights-"));
  let a: NnFormer, b: NnFormer;
  before(async () => {
    await initBackend();
    a = new NnFormer(NNFORMER_E12_16X32X32, { seed: 1 });
    b = new NnFormer(NNFORMER_E12_16X32X32, { seed: 2 });
  });
  after(() => {
    a.dispose();
    b.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("exports the official state_dict: names, PyTorch shapes and layouts, I64 index buffers", async () => {
    const file = path.join(dir, "official.safetensors");
    await exportOfficialWeights(a, file);
    const f = readSafetensors(file);
    const conv = f.tensors.get("model_down.patch_embed.proj1.conv1.weight")!;
    assert.deepEqual(conv.shape, [6, 1, 3, 3, 3]); // torch (out, in, d, h, w)
    const qkv = f.tensors.get("model_down.layers.0.blocks.0.attn.qkv.weight")!;
    assert.deepEqual(qkv.shape, [36, 12]); // torch (out, in)
    const ours = a.params.get("model_down.layers.0.blocks.0.attn.qkv.weight")!.arraySync() as number[][]; // (in, out)
    assert.equal(qkv.data[5 * 12 + 7], ours[7][5]);
    const up = f.tensors.get("decoder.layers.2.Upsample.up.weight")!;
    assert.deepEqual(up.shape, [96, 48, 2, 2, 2]); // torch ConvTranspose (in, out, d, h, w); layers.2 = deepest
    assert.deepEqual(f.tensors.get("final.2.up.weight")!.shape, [48, 3, 2, 4, 4]);
    const idx = f.tensors.get("model_down.layers.0.blocks.1.attn.relative_position_index")!;
    assert.equal(idx.dtype, "I64");
    assert.deepEqual(idx.shape, [64, 64]);
    assert.ok(f.tensors.has("decoder.layers.0.blocks.0.attn.kv.weight"));
    assert.equal(f.tensors.size, a.specs.length + a.bufferSpecs.length);
  });

  it("imports official weights back: same parameters, same logits", () => {
    const file = path.join(dir, "official.safetensors");
    const report = importOfficialWeights(b, file);
    assert.equal(report.loaded, a.specs.length);
    for (const [name, v] of a.params) assert.equal(maxDiff(v, b.params.get(name)!), 0, name);
    const x = tf.randomNormal([1, 16, 32, 32, 1], 0, 1, "float32", 1) as tf.Tensor5D;
    const ya = a.forward(x, { ops: plainOps, deepSupervision: false }),
      yb = b.forward(x, { ops: plainOps, deepSupervision: false });
    assert.equal(maxDiff(ya.logits, yb.logits), 0);
    tf.dispose([x, ya.logits, yb.logits]);
  });

  it("reports unknown, missing and mis-shaped tensors by name (strict throws, changes nothing)", async () => {
    const sd = await officialStateDict(a);
    sd.delete("model_down.norm2.bias");
    sd.set("model_down.extra.weight", { dtype: "F32", shape: [1], data: new Float32Array(1) });
    sd.set("final.0.up.bias", { dtype: "F32", shape: [4], data: new Float32Array(4) });
    const idx = sd.get("model_down.layers.0.blocks.0.attn.relative_position_index")!;
    const bad = new Int32Array(idx.data);
    bad[1] += 1;
    sd.set("model_down.layers.0.blocks.0.attn.relative_position_index", { ...idx, data: bad });
    const bytes = serializeSafetensors(sd as Map<string, TensorToWrite>);
    const fresh = new NnFormer(NNFORMER_E12_16X32X32, { seed: 9 });
    const before = fresh.params.get("model_down.norm0.weight")!.dataSync().slice();
    assert.throws(
      () => importOfficialWeights(fresh, bytes),
      (e: Error) =>
        /unknown \(1\): model_down\.extra\.weight/.test(e.message) &&
        /missing \(1\): model_down\.norm2\.bias/.test(e.message) &&
        /mis-shaped \(1\): final\.0\.up\.bias F32 \[4\] \(expected \[3\]\)/.test(e.message) &&
        /relative_position_index differs.*model_down\.layers\.0\.blocks\.0/.test(e.message),
    );
    assert.deepEqual(fresh.params.get("model_down.norm0.weight")!.dataSync(), before);
    const report = importOfficialWeights(fresh, bytes, { strict: false });
    assert.deepEqual(report.unknown, ["model_down.extra.weight"]);
    assert.deepEqual(report.missing, ["model_down.norm2.bias"]);
    assert.deepEqual(
      report.misshapen.map((m) => m.name),
      ["final.0.up.bias"],
    );
    assert.equal(report.loaded, a.specs.length - 2);
    assert.equal(maxDiff(fresh.params.get("model_down.norm0.weight")!, a.params.get("model_down.norm0.weight")!), 0);
    fresh.dispose();
  });

  // one loader and one exporter for every model: the baselines go through the same adapter as nnFormer (one registry
  // entry per architecture; at unit-test size the other entries of a family build the same network)
  const onePerFamily = [
    "nnformer-e12-16x32x32",
    "unet3d-cpu",
    "unetr-cpu",
    "swin-unetr-f12",
    "transunet3d-cpu",
  ] as const;
  it("covers every architecture of the registry", () => {
    const family = (n: string) => n.replace(/-[^-]*$/, "").replace(/^nnformer-.*/, "nnformer");
    assert.deepEqual(new Set(modelNames().map(family)), new Set(onePerFamily.map(family)));
  });
  for (const name of onePerFamily) {
    it(`${name}: official state_dict out and back in gives the same weights`, async () => {
      const e = MODELS[name] as RegistryEntry<any>;
      const opts = { inChannels: 1, numClasses: 3, cropSize: e.tiny.cropSize, seed: 3 };
      const src = e.build(opts, e.tiny.overrides);
      const dst = e.build({ ...opts, seed: 4 }, e.tiny.overrides);
      const sd = await officialStateDict(src);
      src.specs.forEach((s) => assert.deepEqual(sd.get(s.name)!.shape, s.torchShape, s.name));
      const report = importOfficialWeights(dst, serializeSafetensors(sd));
      assert.equal(report.loaded, src.specs.length);
      for (const [n, v] of src.params) assert.equal(maxDiff(v, dst.params.get(n)), 0, n);
      src.dispose();
      dst.dispose();
    });
  }
});
