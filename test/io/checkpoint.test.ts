import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { createHash } from "crypto";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { readSafetensors, serializeSafetensors } from "../../src/io/safetensors";
import {
  CHECKPOINT_FORMAT,
  configDiff,
  readCheckpoint,
  restoreParams,
  saveModelCheckpoint,
} from "../../src/io/checkpoint";
import { NNFORMER_E12_16X32X32, NnFormer, type NnFormerConfig } from "../../src/models/nnformer";
import { loadTrainedModel } from "../../src/registry";
import { loadMaeCheckpoint, readMaeCheckpointInfo } from "../../src/mae/checkpoint";

const FIXTURES = path.join(__dirname, "..", "fixtures", "checkpoints");
const fixture = (name: string) => path.join(FIXTURES, `old-${name}.safetensors`);

/** The tiny nnFormer the fixtures were written for (embed 2, windows 2, one head). */
const FIXTURE_CONFIG: NnFormerConfig = {
  ...NNFORMER_E12_16X32X32,
  embedDim: 2,
  numHeads: [1, 1, 1, 1],
  decoderHeads: [1, 1, 1],
  mlpRatio: 1,
  windowSizes: [
    [2, 2, 2],
    [2, 2, 2],
    [2, 2, 2],
    [1, 1, 1],
  ],
  decoderWindowSizes: [
    [2, 2, 2],
    [2, 2, 2],
    [2, 2, 2],
  ],
};

function hash(named: Iterable<[string, tf.Variable]>): string {
  const h = createHash("sha256");
  for (const [n, v] of named) {
    h.update(n + "|" + v.shape.join("x") + "|");
    h.update(Buffer.from((v.dataSync() as Float32Array).buffer));
  }
  return h.digest("hex").slice(0, 16);
}

describe("io/checkpoint", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kit-ckpt-"));
  before(async () => {
    await initBackend();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe("files written by version 0.1 still load (fixtures written by that code)", () => {
    it("nnformer-checkpoint-v1: kind model, the same weights", () => {
      const ck = readCheckpoint(fixture("nnformer-checkpoint-v1"));
      assert.equal(ck.format, "mae-nnformer/nnformer-checkpoint-v1");
      assert.equal(ck.info.kind, "model");
      assert.deepEqual(ck.info.config, FIXTURE_CONFIG);
      assert.equal(ck.info.extra!.note, "written by the original code");
      const { model } = loadTrainedModel(ck);
      assert.equal(hash(model.params), "9853c7fd5b7b95f1"); // recorded when the fixture was written
      model.dispose();
    });

    it("train-checkpoint-v1: kind finetune, weights, optimizer moments and fit state", () => {
      const ck = readCheckpoint(fixture("train-checkpoint-v1"));
      assert.equal(ck.info.kind, "finetune");
      assert.equal(ck.info.model, "nnformer-micro");
      assert.deepEqual(ck.info.fit, { step: 1, bestMetric: 0.25, bestStep: 1 });
      assert.equal(ck.optimizer!.kind, "sgd");
      assert.equal(ck.optimizer!.step, 1);
      const { model, preprocessing, config } = loadTrainedModel(fixture("train-checkpoint-v1"));
      assert.equal(hash(model.params), "493d90462e836742");
      assert.deepEqual(config.cropSize, [16, 32, 32]);
      assert.ok(preprocessing && preprocessing.channels === 1);
      // one SGD step with gradient 0.01: the first momentum buffer is the gradient (norms get no weight decay)
      const m = ck.optimizer!.slots["model_down.norm0.weight"].m;
      assert.ok(Math.abs(m[0] - 0.01) < 1e-7, String(m[0]));
      model.dispose();
    });

    it("mae-checkpoint-v1: kind mae-pretraining, settings and weights", () => {
      const info = readMaeCheckpointInfo(fixture("mae-checkpoint-v1"));
      assert.deepEqual(info.config, FIXTURE_CONFIG);
      assert.equal(info.mae.mask.mode, "sparse");
      assert.deepEqual(info.fitState, { step: 1, bestMetric: null, bestStep: null });
      assert.equal(info.train!.maxSteps, 4);
      assert.ok(info.optimizer && Object.keys(info.optimizer.slots).length > 0);
      const { model } = loadMaeCheckpoint(fixture("mae-checkpoint-v1"));
      assert.equal(hash(model.namedParams()), "a12073540936fffb");
      model.dispose();
    });
  });

  it("writes one format with a kind; round trip of a model checkpoint", async () => {
    const a = new NnFormer(FIXTURE_CONFIG, { seed: 4 });
    const file = path.join(dir, "model.safetensors");
    await saveModelCheckpoint(file, { name: "nnformer-micro", config: a.config, params: a.params }, { step: 12 });
    const ck = readCheckpoint(file);
    assert.equal(ck.format, CHECKPOINT_FORMAT);
    assert.equal(ck.metadata.kind, "model");
    assert.equal(ck.info.extra!.step, 12);
    const b = new NnFormer(FIXTURE_CONFIG, { init: "zeros" });
    restoreParams(ck, b.params, { config: b.config, what: "nnFormer" });
    assert.equal(hash(b.params), hash(a.params));
    const other = new NnFormer({ ...FIXTURE_CONFIG, numClasses: 4, dropPathRate: 0.1 }, { init: "zeros" });
    assert.throws(
      () => restoreParams(ck, other.params, { config: other.config, what: "nnFormer" }),
      /model\.safetensors: checkpoint was saved for another nnFormer config; differing fields:\n {2}numClasses: checkpoint 3, model 4\n {2}dropPathRate: checkpoint 0\.2, model 0\.1/,
    );
    [a, b, other].forEach((m) => m.dispose());
  });

  it("wrong kinds are refused, saying what the file is and where it belongs", () => {
    assert.throws(
      () => loadTrainedModel(fixture("mae-checkpoint-v1")),
      /is a "mae-pretraining" checkpoint, but a trained model .* needs "finetune" or "model"; .*--mae-checkpoint/,
    );
    assert.throws(
      () => readMaeCheckpointInfo(fixture("train-checkpoint-v1")),
      /is a "finetune" checkpoint, but MAE pretraining state \(--mae-checkpoint.*needs "mae-pretraining"; .*predict --checkpoint/,
    );
  });

  it("refuses unknown formats, naming the format and what to do", () => {
    const file = path.join(dir, "official.safetensors");
    fs.writeFileSync(file, serializeSafetensors(new Map(), { format: "pt" }));
    assert.throws(
      () => readCheckpoint(file),
      /official\.safetensors: not a checkpoint this version of the kit reads \(__metadata__\.format = "pt".*checkpoint-v2.*importOfficialWeights/,
    );
    const future = path.join(dir, "future.safetensors");
    fs.writeFileSync(future, serializeSafetensors(new Map(), { format: "mae-nnformer/checkpoint-v9" }));
    assert.throws(() => readCheckpoint(future), /checkpoint-v9.*newer kit/);
    assert.equal(readSafetensors(file).metadata.format, "pt");
  });

  it("configDiff names each differing field on both sides", () => {
    assert.deepEqual(configDiff({ a: 1, b: [1, 2] }, { a: 1, b: [1, 3], c: true }, ["pretrained", "target"]), [
      "b: pretrained [1,2], target [1,3]",
      "c: pretrained undefined, target true",
    ]);
  });
});
