import { strict as assert } from "assert";
import { canonicalJson, describeDiff, diffFields, fingerprint } from "../../src/runtime/fingerprint";

describe("runtime/fingerprint", () => {
  const settings = {
    profile: "smoke",
    finetune: { steps: 2, lr: 0.01, cropSize: [16, 32, 32] },
    models: ["nnformer-small"],
    data: { manifest: "phantom", dataRoot: undefined },
  };

  it("does not depend on key order or undefined fields, and does on every value", () => {
    const reordered = {
      models: ["nnformer-small"],
      data: { manifest: "phantom" },
      finetune: { cropSize: [16, 32, 32], lr: 0.01, steps: 2 },
      profile: "smoke",
    };
    assert.equal(fingerprint(settings), fingerprint(reordered));
    assert.match(fingerprint(settings), /^[0-9a-f]{16}$/);
    assert.equal(
      canonicalJson(settings),
      '{"data":{"manifest":"phantom"},"finetune":{"cropSize":[16,32,32],"lr":0.01,"steps":2},"models":["nnformer-small"],"profile":"smoke"}',
    );
    const changed = { ...settings, finetune: { ...settings.finetune, steps: 4 } };
    assert.notEqual(fingerprint(settings), fingerprint(changed));
    assert.notEqual(fingerprint({ x: [1, 2] }), fingerprint({ x: [2, 1] }));
    assert.notEqual(fingerprint({ x: NaN }), fingerprint({ x: null }));
    assert.equal(fingerprint({ x: -0 }), fingerprint({ x: 0 }));
  });

  it("refuses values that are not plain JSON, naming the field", () => {
    assert.throws(() => fingerprint({ a: { when: new Date(0) } }), /a\.when is a Date; describe it with plain JSON/);
    assert.throws(() => fingerprint({ f: () => 1 }), /f is a function/);
  });

  it("diffFields names every differing field by its path", () => {
    const after = {
      ...settings,
      finetune: { ...settings.finetune, steps: 4, cropSize: [16, 32, 48] },
      models: ["nnformer-small", "unet3d-cpu"],
      kit: "0.2.0",
    };
    const d = diffFields(settings, after);
    assert.deepEqual(
      d.map((x) => x.path),
      ["finetune.cropSize[2]", "finetune.steps", "kit", "models"],
    );
    assert.equal(
      describeDiff(d),
      'finetune.cropSize[2]: 32 -> 48; finetune.steps: 2 -> 4; kit: (missing) -> "0.2.0"; models: ["nnformer-small"] -> ["nnformer-small","unet3d-cpu"]',
    );
    assert.equal(describeDiff(d, 2), "finetune.cropSize[2]: 32 -> 48; finetune.steps: 2 -> 4; and 2 more");
    assert.deepEqual(diffFields(settings, JSON.parse(JSON.stringify(settings))), []);
  });
});
