import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { loadManifest, parseManifest, resolveManifest } from "../../src/data/manifest";
import { writePhantomDataset, loadCase, loadSplit } from "../../src/data/dataset";
import { generatePhantom } from "../../src/data/phantom";
import { writeNifti } from "../../src/data/nifti";

// A small phantom manifest (4 cases of 24^3) so the test writes little.
function smallManifest() {
  const base = loadManifest("phantom");
  const ids = ["p0", "p1", "p2", "p3"];
  return parseManifest(
    {
      ...base,
      name: "phantom-small",
      generator: { kind: "phantom", seed: 5, count: 4, shape: [24, 24, 24], spacing: [8, 16, 16] },
      cases: ids.map((id) => ({ id, image: `images/${id}.nii.gz`, label: `labels/${id}.nii.gz` })),
      splits: { unlabeled: ["p0"], train: ["p1"], val: ["p2"], test: ["p3"] },
    },
    "phantom-small.json",
  );
}

describe("data/dataset", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "kit-dataset-"));
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it("writes the phantom dataset as NIfTI and reads back exactly what the generator makes", async () => {
    const m = smallManifest();
    const r = writePhantomDataset(m, root);
    assert.equal(r.written, 4);
    assert.equal(writePhantomDataset(m, root).kept, 4, "a second run keeps existing cases");
    const resolved = resolveManifest(m, root);
    const c = await loadCase(resolved, resolved.splits.train[0]);
    const ref = generatePhantom(5, 1, { shape: [24, 24, 24], spacing: [8, 16, 16] });
    assert.deepEqual(c.image.shape, [24, 24, 24]);
    assert.deepEqual(Array.from(c.label!.data), Array.from(ref.label.data));
    let maxDiff = 0;
    for (let i = 0; i < ref.image.data.length; i++)
      maxDiff = Math.max(maxDiff, Math.abs(ref.image.data[i] - c.image.data[i]));
    assert.equal(maxDiff, 0);
    const unl = await loadSplit(resolved, "unlabeled");
    assert.equal(unl[0].label, null, "unlabeled cases come without labels");
  });

  it("refuses a label map holding values the manifest does not list, naming the file", async () => {
    const m = smallManifest();
    writePhantomDataset(m, root);
    const resolved = resolveManifest(m, root);
    const bad = generatePhantom(5, 2, { shape: [24, 24, 24], spacing: [8, 16, 16] }).label;
    bad.data[100] = 42;
    writeNifti(resolved.splits.val[0].label!, bad);
    await assert.rejects(
      loadCase(resolved, resolved.splits.val[0]),
      (e: Error) => /p2\.nii\.gz/.test(e.message) && /42/.test(e.message),
    );
  });

  it("refuses an image and label on different grids", async () => {
    const m = smallManifest();
    writePhantomDataset(m, root);
    const resolved = resolveManifest(m, root);
    const other = generatePhantom(5, 3, { shape: [24, 24, 32], spacing: [8, 16, 12] }).label;
    writeNifti(resolved.splits.test[0].label!, other);
    await assert.rejects(loadCase(resolved, resolved.splits.test[0]), /shape|grid/i);
  });
});
