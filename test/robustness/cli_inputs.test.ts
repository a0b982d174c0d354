// Flags, config files, paths and checkpoints of the wrong kind: refused before any work, with a message that names
// the flag or file and says what to do.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import { writeNifti } from "../../src/data/nifti";
import { expectRefused, expectUnchanged, runCli, scratch, smokeFiles, snapshot } from "./harness";
import * as bad from "./inputs";

describe("robustness: flags, configs, paths and checkpoint kinds", function () {
  this.timeout(180_000);
  let dir: string;
  before(() => {
    dir = scratch("cli-inputs");
  });

  it("--out on a pseudo filesystem is refused at once instead of hanging", () => {
    const t0 = Date.now();
    expectRefused(
      runCli(["study", "--profile", "smoke", "--out", "/proc/x"], { timeoutMs: 30_000 }),
      /\/proc\/x/,
      /is not writable: \/proc\/x is on the proc pseudo filesystem/,
    );
    assert.ok(Date.now() - t0 < 30_000);
  });

  it("a missing --mae-checkpoint is refused before any training", () => {
    const out = path.join(dir, "missing-mae");
    expectRefused(
      runCli(["study", "--profile", "smoke", "--out", out, "--mae-checkpoint", path.join(dir, "nope.safetensors")]),
      /--mae-checkpoint .*nope\.safetensors: no such checkpoint/,
    );
    assert.deepEqual(fs.existsSync(out) ? fs.readdirSync(out) : [], []);
  });

  it("--mae-checkpoint with --pretrain-afresh is refused as a contradiction before any work", () => {
    const out = path.join(dir, "afresh-and-given");
    expectRefused(
      runCli([
        "study",
        "--profile",
        "smoke",
        "--out",
        out,
        "--mae-checkpoint",
        smokeFiles().maeLatest,
        "--pretrain-afresh",
      ]),
      /--pretrain-afresh/,
      /--mae-checkpoint and --pretrain-afresh contradict each other; give one of them/,
    );
    assert.ok(!fs.existsSync(path.join(out, "results.jsonl")));
  });

  it("a fine-tuning checkpoint given as --mae-checkpoint gets CLI advice", () => {
    const out = path.join(dir, "wrong-mae");
    const r = runCli(["study", "--profile", "smoke", "--out", out, "--mae-checkpoint", smokeFiles().best]);
    expectRefused(r, /--mae-checkpoint .*best\.safetensors is a fine-tuning checkpoint/, /mae_latest\.safetensors/);
    assert.doesNotMatch(r.stderr, /[a-z][A-Za-z]+\(\)/, "names a library function");
    assert.deepEqual(fs.existsSync(out) ? fs.readdirSync(out) : [], []);
  });

  it("an MAE pretraining checkpoint given to predict says what it is and which file to pass", () => {
    const image = bad.niftiFile(dir, "image.nii.gz");
    const out = path.join(dir, "seg.nii.gz");
    expectRefused(
      runCli(["predict", "--checkpoint", smokeFiles().maeLatest, "--image", image, "--out", out]),
      /mae_latest\.safetensors is an MAE pretraining checkpoint/,
      /best\.safetensors or latest\.safetensors/,
    );
    assert.equal(fs.existsSync(out), false);
  });

  it("a 4D image given to predict names the file and says a 3D image is expected", () => {
    const f = bad.fourD(dir);
    const out = path.join(dir, "seg4d.nii.gz");
    expectRefused(
      runCli(["predict", "--checkpoint", smokeFiles().best, "--image", f, "--out", out]),
      /four-d\.nii\.gz is a 4D image/,
      /a 3D image is expected/,
    );
    assert.equal(fs.existsSync(out), false);
  });

  it("a checkpoint with NaN weights is refused naming the tensor and index", () => {
    const { file, tensor } = bad.nanWeights(smokeFiles().best, dir);
    const image = bad.niftiFile(dir, "image2.nii.gz");
    const out = path.join(dir, "seg-nan.nii.gz");
    expectRefused(
      runCli(["predict", "--checkpoint", file, "--image", image, "--out", out]),
      new RegExp(
        `nan-best\\.safetensors: tensor '${tensor.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}' holds 1 non-finite value; the first, NaN, is at flat index 3`,
      ),
    );
    assert.equal(fs.existsSync(out), false);
  });

  it("--json that is a folder is refused before the work, naming --json", () => {
    const pred = path.join(dir, "preds");
    fs.mkdirSync(pred, { recursive: true });
    const jsonDir = path.join(dir, "scores");
    fs.mkdirSync(jsonDir);
    const before = snapshot(jsonDir);
    expectRefused(
      runCli(["evaluate", "--pred", pred, "--manifest", "phantom", "--json", jsonDir]),
      /--json .*scores is a folder; give the path of a file/,
    );
    expectUnchanged(jsonDir, before);
  });

  it("predict --out that is a folder is refused before the work, naming --out", () => {
    const image = bad.niftiFile(dir, "image3.nii.gz");
    const outDir = path.join(dir, "out-folder");
    fs.mkdirSync(outDir);
    const r = runCli(["predict", "--checkpoint", smokeFiles().best, "--image", image, "--out", outDir]);
    expectRefused(r, /--out .*out-folder is a folder; give the path of a file/);
    assert.doesNotMatch(r.stderr, /\.tmp/, "names a hidden temporary file");
    assert.deepEqual(fs.readdirSync(outDir), []);
  });

  it("bench exits non-zero when a requested model fails", () => {
    const out = path.join(dir, "bench", "bench.json");
    expectRefused(
      runCli(["bench", "--models", "unet3d-cpu", "--crop", "9x9x9", "--steps", "1", "--out", out]),
      /bench: 1 requested item\(s\) failed/,
      /unet3d-cpu: .*cropSize = \[9,9,9\]/,
    );
  });

  it("phantoms --seed abc names --seed", () => {
    expectRefused(
      runCli(["phantoms", "--count", "5", "--seed", "abc", "--data-root", path.join(dir, "ph")]),
      /--seed/,
      /abc/,
    );
    assert.equal(fs.existsSync(path.join(dir, "ph")), false);
  });

  it("a config file is checked as a whole, naming file.json: field; optional fields such as cropSize are allowed", () => {
    const config = path.join(dir, "my.json");
    fs.writeFileSync(config, JSON.stringify({ cropSize: [16, 32, 32], finetune: { steps: 0, lr: "fast" } }));
    const out = path.join(dir, "config-run");
    const r = runCli(["study", "--profile", "smoke", "--config", config, "--out", out, "--mask-ratio", "1.5"]);
    expectRefused(
      r,
      /my\.json: finetune\.steps: expected a whole number >= 1; got 0/,
      /my\.json: finetune\.lr: expected a positive number/,
      /--mask-ratio/,
    );
    assert.doesNotMatch(r.stderr, /cropSize|maxSteps|schedule\.lr/);
    assert.deepEqual(fs.existsSync(out) ? fs.readdirSync(out) : [], []);
  });

  it("evaluate refuses prediction values that the manifest does not list", () => {
    const d = bad.oneCaseDataset(scratch("eval-values"));
    const label = new Uint8Array(d.img.data.length);
    const pred = path.join(dir, "eval-pred");
    const p = label.slice();
    p[5] = 42;
    writeNifti(path.join(pred, "c0.nii.gz"), { ...d.img, data: p });
    expectRefused(
      runCli(["evaluate", "--pred", pred, "--manifest", d.file, "--data-root", d.root]),
      /c0\.nii\.gz/,
      /42/,
    );
  });
});
