// `predict` fed broken images and checkpoints: each is refused with a message naming the file and the problem,
// without a stack trace, and the existing output file is left exactly as it was.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import { expectOk, expectRefused, expectUnchanged, runCli, scratch, smokeFiles, snapshot } from "./harness";
import * as bad from "./inputs";

describe("robustness: predict refuses bad images and checkpoints", function () {
  this.timeout(180_000);
  let inputs: string;
  let outDir: string;
  let out: string;
  let ck: ReturnType<typeof smokeFiles>;

  before(() => {
    ck = smokeFiles();
    inputs = scratch("predict-inputs");
    outDir = scratch("predict-out");
    out = path.join(outDir, "seg.nii.gz");
  });

  /** Runs predict with a fresh "previous result" in place and checks that it survives the refusal. */
  function refused(args: string[], ...patterns: RegExp[]): void {
    fs.writeFileSync(out, "a previous prediction that must survive");
    const before = snapshot(outDir);
    expectRefused(runCli(["predict", ...args, "--out", out]), ...patterns);
    expectUnchanged(outDir, before);
  }

  it("a good image and checkpoint predict (the refusals below are not a broken setup)", () => {
    const image = bad.niftiFile(inputs, "good.nii.gz");
    const file = path.join(outDir, "good-seg.nii.gz");
    expectOk(runCli(["predict", "--checkpoint", ck.best, "--image", image, "--out", file]));
    assert.ok(fs.statSync(file).size > 100);
  });

  it("truncated gzip image", () => {
    const f = bad.truncatedGzip(inputs);
    refused(["--checkpoint", ck.best, "--image", f], /truncated\.nii\.gz/, /truncated/, /re-download or re-export/);
  });

  it("header with huge dims, refused before allocating", () => {
    const f = bad.hugeDims(inputs);
    refused(["--checkpoint", ck.best, "--image", f], /huge\.nii: the header claims 30000x30000x30000/, /maxVoxels/);
  });

  it("NaN voxels", () => {
    const f = bad.nanVoxels(inputs);
    refused(["--checkpoint", ck.best, "--image", f], /nan\.nii\.gz has 2 NaN\/Inf voxels, the first NaN at \[d=0/);
  });

  it("vox_offset = 352.5 must be an integer", () => {
    const f = bad.fractionalVoxOffset(inputs);
    refused(["--checkpoint", ck.best, "--image", f], /offset\.nii: vox_offset = 352\.5 must be an integer/);
  });

  it("not a NIfTI file", () => {
    const f = bad.notNifti(inputs);
    refused(["--checkpoint", ck.best, "--image", f], /notes\.nii\.gz is not a NIfTI-1 file/);
  });

  it("missing image", () => {
    refused(
      ["--checkpoint", ck.best, "--image", path.join(inputs, "nope.nii.gz")],
      /--image .*nope\.nii\.gz: no such NIfTI image/,
    );
  });

  it("truncated checkpoint", () => {
    const f = bad.truncatedCopy(ck.best, inputs);
    const image = bad.niftiFile(inputs, "good2.nii.gz");
    refused(["--checkpoint", f, "--image", image], /truncated-best\.safetensors/, /truncated/);
  });

  it("checkpoint with a header that is not JSON", () => {
    const f = bad.badSafetensorsHeader(inputs);
    const image = bad.niftiFile(inputs, "good3.nii.gz");
    refused(["--checkpoint", f, "--image", image], /bad-header\.safetensors: bad header JSON/);
  });

  it("missing checkpoint", () => {
    const image = bad.niftiFile(inputs, "good4.nii.gz");
    refused(
      ["--checkpoint", path.join(inputs, "none.safetensors"), "--image", image],
      /--checkpoint .*none\.safetensors: no such checkpoint/,
    );
  });
});
