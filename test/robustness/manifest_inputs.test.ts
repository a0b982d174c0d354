// Manifests and label maps that do not fit: a path escaping the data root, a label or prediction on another grid.
import * as path from "path";
import { writeNifti } from "../../src/data/nifti";
import { expectRefused, runCli, scratch } from "./harness";
import { oneCaseDataset } from "./inputs";

describe("robustness: manifests and grids", function () {
  this.timeout(120_000);

  it("a case path escaping the data root is refused, naming the field", () => {
    const d = oneCaseDataset(scratch("escape"), (m) => {
      m.cases = [{ id: "c0", image: "../../etc/img.nii.gz", label: "lab.nii.gz" }];
    });
    const pred = scratch("escape-pred");
    expectRefused(
      runCli(["evaluate", "--pred", pred, "--manifest", d.file, "--data-root", d.root]),
      /one-case\.json/,
      /cases\[0\]\.image/,
      /stay inside the data root/,
    );
  });

  it("a prediction on another grid (shifted affine) is refused, naming both files", () => {
    const d = oneCaseDataset(scratch("grid"));
    const pred = scratch("grid-pred");
    const affine = d.img.affine.map((row) => [...row]);
    affine[0][3] += 5;
    writeNifti(path.join(pred, "c0.nii.gz"), { ...d.img, affine, data: new Uint8Array(d.img.data.length) });
    expectRefused(
      runCli(["evaluate", "--pred", pred, "--manifest", d.file, "--data-root", d.root]),
      /grid mismatch: affines differ by 5/,
      /lab\.nii\.gz/,
      /c0\.nii\.gz/,
    );
  });
});
