// The shipped encoder (pretrained/nnformer-quick-mae): its card matches the file (sha256), the "encoder" profile and
// the quick profile that uses it; and the recorded run is reproducible: rerunning the first steps of `npm run encoder`
// on this machine gives the losses recorded in the card (same seed, same backend: same numbers).
import { strict as assert } from "assert";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { getProfile, shippedEncoder } from "../../src/study/profiles";
import { loadStudyData, studyPlan, studyPretrainOptions } from "../../src/study/lowlabel";
import { pretrainMae } from "../../src/mae/pretrain";
import { readMaeCheckpointInfo } from "../../src/mae/checkpoint";
import { diffPreprocessing } from "../../src/data/preprocess";
import { ENCODER_CARD_FILE, type EncoderCard } from "../../scripts/encoder/card_format";

const DIR = path.resolve(__dirname, "..", "..", "pretrained", "nnformer-quick-mae");
const card = (): EncoderCard => JSON.parse(fs.readFileSync(path.join(DIR, ENCODER_CARD_FILE), "utf8"));

describe("shipped encoder", function () {
  before(async () => {
    await initBackend();
  });

  it("is the file its card describes (sha256, size), and the quick profile starts from it", () => {
    const c = card();
    const bytes = fs.readFileSync(path.join(DIR, c.file));
    assert.equal(bytes.length, c.bytes);
    assert.equal(crypto.createHash("sha256").update(bytes).digest("hex"), c.sha256);
    assert.equal(shippedEncoder(getProfile("quick")), path.join(DIR, c.file));
    const info = readMaeCheckpointInfo(path.join(DIR, c.file));
    assert.deepEqual(diffPreprocessing(info.preprocessing, c.preprocessing), []);
    assert.equal(info.fitState?.step, c.steps);
  });

  it("card settings are the encoder profile's, and the run learned (held-out loss below predicting the mean)", () => {
    const c = card();
    const p = getProfile("encoder");
    assert.deepEqual(c.pretrain, p.pretrain);
    assert.equal(c.steps, p.pretrain.steps);
    assert.deepEqual(
      { seed: c.data.seed, shape: c.data.shape, unlabeled: c.data.unlabeled, heldOut: c.data.heldOut },
      p.data.kind === "phantom-memory"
        ? { seed: p.data.seed, shape: p.data.shape, unlabeled: p.data.unlabeled, heldOut: p.data.val }
        : null,
    );
    assert.deepEqual(
      c.preprocessing.spacing,
      getProfile("quick").spacing,
      "the quick profile fine-tunes at its spacing",
    );
    assert.ok(c.heldOut.loss < c.heldOut.meanBaseline, `held-out ${c.heldOut.loss} vs mean ${c.heldOut.meanBaseline}`);
    assert.equal(c.curve[c.curve.length - 1].step, c.steps);
  });

  it("the first steps of the recorded run reproduce the recorded losses", async function () {
    this.timeout(300_000);
    const c = card();
    const profile = getProfile(c.profile);
    const data = await loadStudyData(profile);
    const plan = studyPlan(profile, data);
    assert.deepEqual(diffPreprocessing(plan, c.preprocessing), [], "the plan of the recorded run");
    const steps = 3;
    const run = async (): Promise<number[]> => {
      const losses: number[] = [];
      const r = await pretrainMae({
        ...studyPretrainOptions(profile, c.model, data, plan, data.labelNames.length, profile.cropSize!, 0),
        onStep: (rec) => {
          losses.push(rec.loss);
          return rec.step < steps;
        },
      });
      r.mae.dispose();
      return losses;
    };
    const losses = await run();
    // a second run in the same process: the same losses, and no tensor left behind (first-use caches are made by now)
    const before = tf.memory().numTensors;
    assert.deepEqual(await run(), losses);
    assert.equal(tf.memory().numTensors, before, "no tensor left behind");
    assert.equal(losses.length, steps);
    losses.forEach((l, i) =>
      assert.ok(
        Math.abs(l - c.firstLosses[i]) <= 1e-6 * Math.abs(c.firstLosses[i]),
        `step ${i + 1}: ${l} vs ${c.firstLosses[i]}`,
      ),
    );
  });
});
