import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { NNFORMER_E12_16X32X32, NnFormer, type NnFormerConfig } from "../../src/models/nnformer";
import { generatePhantom } from "../../src/data/phantom";
import { MaeNnFormer } from "../../src/mae/mae3d";
import { loadMaeCheckpoint, restoreMaeCheckpoint, saveMaeCheckpoint } from "../../src/mae/checkpoint";
import { computePreprocessing, type Preprocessing } from "../../src/data/preprocess";
import { checkPreprocessingMatch, transferEncoder } from "../../src/mae/transfer";

const MICRO: NnFormerConfig = { ...NNFORMER_E12_16X32X32, dropPathRate: 0 };
const snapshot = (m: NnFormer) => new Map([...m.params].map(([n, v]) => [n, Array.from(v.dataSync())]));

describe("mae/transfer", function () {
  let dir: string;
  let file: string;
  let pre: Preprocessing;
  let mae: MaeNnFormer;
  before(async () => {
    await initBackend();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mae-tr-"));
    file = path.join(dir, "mae.safetensors");
    pre = computePreprocessing([generatePhantom(0, 0, { shape: [16, 32, 32] }).image], "CT");
    mae = new MaeNnFormer(MICRO, {}, { seed: 11 });
    await saveMaeCheckpoint(file, mae, { preprocessing: pre });
  });
  after(() => {
    mae.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const from of ["model", "checkpoint"] as const) {
    it(`copies every encoder tensor from the ${from} and leaves the decoder and heads untouched`, () => {
      const seg = new NnFormer({ ...MICRO, numClasses: 9, dropPathRate: 0.1 }, { seed: 99 }); // fine-tuning may change these
      const before = snapshot(seg);
      const report = transferEncoder(
        from === "model" ? mae : file,
        seg,
        from === "checkpoint" ? { preprocessing: pre } : {},
      );
      const encoder = [...seg.params.keys()].filter((n) => n.startsWith("model_down."));
      assert.deepEqual([...report.transferred].sort(), [...encoder].sort());
      assert.deepEqual(report.mismatched, []);
      assert.ok(
        report.skipped.includes("mae_decoder.mask_token0") && report.skipped.includes("mae_decoder.head.weight"),
      );
      assert.ok(
        encoder.some((n) => n.endsWith("relative_position_bias_table")) && encoder.includes("model_down.norm3.weight"),
      );
      const src = mae.encoderParams();
      for (const [n, v] of seg.params) {
        const now = Array.from(v.dataSync());
        if (n.startsWith("model_down.")) assert.deepEqual(now, Array.from(src.get(n)!.dataSync()), n);
        else assert.deepEqual(now, before.get(n), `${n} changed`);
      }
      seg.dispose();
    });
  }

  it("refuses mismatched windows or crops, naming tensors and fields, and changes nothing", () => {
    for (const [what, cfg] of [
      [
        "windows",
        {
          ...MICRO,
          windowSizes: [
            [2, 2, 2],
            [4, 4, 4],
            [8, 8, 8],
            [4, 4, 4],
          ],
        },
      ],
      ["crop", { ...MICRO, cropSize: [32, 64, 64] }],
    ] as Array<[string, NnFormerConfig]>) {
      const seg = new NnFormer(cfg, { seed: 5 });
      const before = snapshot(seg);
      assert.throws(
        () => transferEncoder(file, seg),
        (e: Error) => {
          assert.match(e.message, /refusing a partial transfer/);
          assert.match(e.message, /model_down\.layers\.\d\.blocks\.\d\.attn\.relative_position_bias_table/);
          assert.match(
            e.message,
            what === "windows" ? /windowSizes: pretrained/ : /cropSize: pretrained \[16,32,32\], target \[32,64,64\]/,
          );
          assert.match(e.message, /Fine-tune with the pretraining crop/);
          return true;
        },
        what,
      );
      const report = transferEncoder(mae, seg, { check: "report" });
      assert.ok(report.mismatched.length > 0 && report.transferred.length === 0);
      for (const [n, v] of seg.params)
        assert.deepEqual(Array.from(v.dataSync()), before.get(n), `${what}: ${n} changed`);
      seg.dispose();
    }
  });

  it("rejects a checkpoint from another config or another preprocessing", () => {
    const other = new MaeNnFormer({ ...MICRO, embedDim: 16, numHeads: [1, 2, 4, 8] }, {});
    assert.throws(() => restoreMaeCheckpoint(other, file), /another MAE model[\s\S]*embedDim: checkpoint 12, model 16/);
    other.dispose();
    const ft: Preprocessing = { ...pre, intensity: { kind: "ct", clip: [-1000, 1000], mean: 40, std: 100 } };
    assert.throws(
      () => checkPreprocessingMatch(pre, ft),
      /intensity\.clip\.0: pretraining .*, fine-tuning -1000[\s\S]*intensity\.mean/,
    );
    const seg = new NnFormer(MICRO);
    assert.throws(
      () => transferEncoder(file, seg, { preprocessing: ft }),
      /preprocessing of the pretraining checkpoint differs/,
    );
    assert.throws(
      () => transferEncoder(file, seg, { preprocessing: { ...pre, spacing: [3, 6, 6] } }),
      /spacing: pretraining null, fine-tuning \[3,6,6\]/,
    );
    seg.dispose();
    const { model, preprocessing } = loadMaeCheckpoint(file);
    assert.deepEqual(preprocessing, pre);
    assert.deepEqual(
      Array.from(model.encoder.params.get("model_down.norm0.bias")!.dataSync()),
      Array.from(mae.encoder.params.get("model_down.norm0.bias")!.dataSync()),
    );
    model.dispose();
    assert.ok(tf.memory().numTensors < 5000);
  });
});
