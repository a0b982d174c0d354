import { strict as assert } from "assert";
import { nnFormerLrScale, nnFormerLayerDecay } from "../../src/train/layer_decay";
import { nnFormerParamSpecs, NNFORMER_E12_16X32X32 } from "../../src/models/nnformer";

describe("train/layer_decay", () => {
  it("scales the embedding by d^5, encoder stage i by d^(4-i), decoder and heads by 1", () => {
    const d = 0.5;
    assert.equal(nnFormerLrScale("model_down.patch_embed.proj1.conv1.weight", d), 1 / 32);
    assert.equal(nnFormerLrScale("model_down.layers.0.blocks.1.attn.qkv.weight", d), 1 / 16);
    assert.equal(nnFormerLrScale("model_down.layers.2.downsample.reduction.weight", d), 1 / 4);
    assert.equal(nnFormerLrScale("model_down.norm3.weight", d), 1 / 2);
    assert.equal(nnFormerLrScale("decoder.layers.0.blocks.0.attn.kv.weight", d), 1);
    assert.equal(nnFormerLrScale("final.0.up.weight", d), 1);
  });
  it("gives every official parameter name a scale in (0, 1]", () => {
    for (const p of nnFormerParamSpecs(NNFORMER_E12_16X32X32).params) {
      const s = nnFormerLrScale(p.name, 0.75);
      assert.ok(s > 0 && s <= 1, `${p.name}: ${s}`);
    }
    assert.throws(() => nnFormerLayerDecay(1.5), /layerDecay is 1\.5/);
  });
});
