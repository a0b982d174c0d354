import { strict as assert } from "assert";
import { PROFILES, getProfile } from "../../src/study/profiles";
import { resolveProfile, StudyProfileSchema } from "../../src/study/profile_schema";

/** The message of the error `fn` throws. */
function problems(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail("expected an error");
}

describe("study/profile_schema", () => {
  it("every shipped profile passes the schema unchanged", () => {
    for (const name of Object.keys(PROFILES)) {
      const p = getProfile(name);
      assert.deepEqual(resolveProfile(p, []), p, name);
      assert.ok(StudyProfileSchema.safeParse(p).success, name);
    }
  });

  it("layers deep-merge in order, flags last, and may set optional fields such as cropSize", () => {
    const p = resolveProfile(getProfile("smoke"), [
      {
        source: "my.json",
        values: { cropSize: [16, 32, 32], finetune: { steps: 4, layerDecay: 0.75 }, seeds: [0, 1] },
      },
      { source: "--steps", flag: true, values: { finetune: { steps: 6 } } },
    ]);
    assert.deepEqual(p.cropSize, [16, 32, 32]);
    assert.equal(p.finetune.steps, 6);
    assert.equal(p.finetune.layerDecay, 0.75);
    assert.equal(p.finetune.lr, getProfile("smoke").finetune.lr);
    assert.deepEqual(p.seeds, [0, 1]);
  });

  it("a new data.kind replaces data as a whole; otherwise data fields merge", () => {
    const m = resolveProfile(getProfile("smoke"), [
      { source: "c.json", values: { data: { kind: "manifest", manifest: "phantom" } } },
    ]);
    assert.deepEqual(m.data, { kind: "manifest", manifest: "phantom" });
    const q = resolveProfile(getProfile("quick"), [{ source: "c.json", values: { data: { dataRoot: "/data/ph" } } }]);
    assert.deepEqual(q.data, { kind: "manifest", manifest: "phantom", dataRoot: "/data/ph" });
  });

  it("refuses mirror test-time augmentation for a network trained without mirroring, naming both fields", () => {
    const msg = problems(() =>
      resolveProfile(getProfile("quick"), [{ source: "tta.json", values: { eval: { mirror: true } } }]),
    );
    assert.match(msg, /tta\.json: eval\.mirror: true, but finetune\.augment is false: .*set finetune\.augment to true/);
    const ok = resolveProfile(getProfile("quick"), [
      { source: "tta.json", values: { eval: { mirror: true }, finetune: { augment: true } } },
    ]);
    assert.equal(ok.eval.mirror, true);
    assert.equal(getProfile("paper").eval.mirror && getProfile("paper").finetune.augment, true, "the paper pairs them");
  });

  it("names every problem by file and profile field, or by flag", () => {
    const msg = problems(() =>
      resolveProfile(getProfile("quick"), [
        {
          source: "my.json",
          values: { finetune: { steps: 0, stesp: 3 }, inits: ["mae", "imagenet"], cropSize: [16, 32] },
        },
        { source: "--mask-ratio", flag: true, values: { pretrain: { maskRatio: 1 } } },
      ]),
    );
    assert.match(msg, /^invalid study settings \(5 problems\):/);
    assert.match(msg, /\n  - my\.json: finetune\.steps: expected a whole number >= 1; got 0/);
    assert.match(
      msg,
      /\n  - my\.json: finetune\.stesp: unknown field "stesp"; remove it or fix the spelling \(allowed here: steps, /,
    );
    assert.match(msg, /\n  - my\.json: inits\[1\]: expected one of "scratch", "mae"; got "imagenet"/);
    assert.match(msg, /\n  - my\.json: cropSize: expected three whole numbers \[D, H, W\]; got \[16,32\]/);
    assert.match(msg, /\n  - --mask-ratio: expected a number in \(0, 1\); got 1/);
    assert.doesNotMatch(msg, /maxSteps|schedule/);
  });

  it("checks the merged profile: a missing field after a kind change, unknown models, stray overrides", () => {
    assert.match(
      problems(() =>
        resolveProfile(getProfile("smoke"), [{ source: "c.json", values: { data: { kind: "manifest" } } }]),
      ),
      /c\.json: data\.manifest: required field is missing/,
    );
    assert.match(
      problems(() =>
        resolveProfile(getProfile("smoke"), [{ source: "--models", flag: true, values: { models: ["unet9"] } }]),
      ),
      /--models \(item 1\): unknown model "unet9"; registered: /,
    );
    assert.match(
      problems(() =>
        resolveProfile(getProfile("smoke"), [{ source: "c.json", values: { modelOverrides: { "unet3d-cpu": {} } } }]),
      ),
      /c\.json: modelOverrides\.unet3d-cpu: "unet3d-cpu" is not one of the study's models/,
    );
    assert.match(
      problems(() => resolveProfile(getProfile("smoke"), [{ source: "c.json", values: [1] }])),
      /c\.json: expected a JSON object of profile fields; got \[1\]/,
    );
  });
});
