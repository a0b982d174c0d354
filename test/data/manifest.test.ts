import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  ManifestError,
  checkLabelValues,
  listManifests,
  loadManifest,
  manifestDir,
  parseManifest,
  resolveManifest,
  type Manifest,
} from "../../src/data/manifest";

// A small valid manifest to break one field at a time.
function tiny(): Record<string, any> {
  return {
    name: "tiny",
    description: "two-channel toy dataset for tests",
    modality: "multi-MRI",
    channels: ["T1w", "T2w"],
    labels: [
      { value: 0, name: "background" },
      { value: 1, name: "lesion" },
      { value: 2, name: "edema" },
    ],
    evaluatedLabels: ["lesion"],
    source: { text: "made up", licence: "none" },
    cases: [
      { id: "a", image: ["a_t1.nii.gz", "a_t2.nii.gz"], label: "a_seg.nii.gz" },
      { id: "b", image: ["b_t1.nii.gz", "b_t2.nii.gz"], label: "b_seg.nii.gz" },
      { id: "c", image: "c_4d.nii.gz", label: "c_seg.nii.gz" },
      { id: "d", image: ["d_t1.nii.gz", "d_t2.nii.gz"], label: null },
    ],
    splits: { train: ["a"], val: ["b"], test: ["c"], unlabeled: ["a", "d"] },
  };
}

function parseError(json: unknown): ManifestError {
  try {
    parseManifest(json, "tiny.json");
  } catch (e) {
    assert.ok(e instanceof ManifestError, `expected a ManifestError, got ${e}`);
    assert.match(e.message, /tiny\.json/);
    assert.doesNotMatch(e.message, /"code":/, "raw zod JSON leaked into the message");
    return e;
  }
  assert.fail("expected parseManifest to throw");
}

const btcvTrain = "0005 0006 0007 0009 0010 0021 0023 0024 0026 0027 0028 0030 0031 0033 0034 0037 0039 0040";
const btcvTest = "0001 0002 0003 0004 0008 0022 0025 0029 0032 0035 0036 0038";
const ids = (s: string) => s.split(" ").map((n) => `img${n}`);

describe("data manifests", () => {
  describe("shipped manifests", () => {
    it("lists the six shipped manifests", () => {
      const names = listManifests();
      for (const n of [
        "acdc",
        "btcv-synapse",
        "mricron-brain",
        "msd-task01-braintumour",
        "msd-task09-spleen",
        "phantom",
      ]) {
        assert.ok(names.includes(n), `missing ${n} in ${names}`);
      }
    });

    it("every shipped manifest parses, validates and is named after its file", () => {
      for (const n of listManifests()) {
        const m = loadManifest(n);
        assert.equal(m.name, n);
        assert.equal(loadManifest(path.join(manifestDir(), `${n}.json`)).name, n); // by path, too
      }
    });

    it("btcv-synapse: nnFormer's 12 test ids, val carved from its 18 training ids (never a test case), 8 organs", () => {
      const m = loadManifest("btcv-synapse");
      const val = ["img0005", "img0028", "img0030", "img0037"];
      assert.deepEqual(m.splits.test, ids(btcvTest));
      assert.deepEqual(m.splits.val, val);
      // train + val = nnFormer's 18 training scans, in order
      assert.deepEqual([...m.splits.train, ...m.splits.val].sort(), ids(btcvTrain));
      assert.equal(m.splits.train.length, 14);
      assert.equal(m.splits.test.length, 12);
      for (const id of m.splits.val) assert.ok(!m.splits.test.includes(id) && !m.splits.train.includes(id), id);
      assert.equal(m.labels.length, 14);
      const byName = new Map(m.labels.map((l) => [l.name, l.value]));
      assert.deepEqual(
        m.evaluatedLabels!.map((n) => byName.get(n)),
        [1, 2, 3, 4, 6, 7, 8, 11],
      );
      assert.deepEqual(
        m.splits.unlabeled,
        Array.from({ length: 20 }, (_, i) => `img00${61 + i}`),
      );
      for (const id of m.splits.unlabeled) assert.equal(m.cases.find((c) => c.id === id)!.label, null);
      const c1 = m.cases.find((c) => c.id === "img0001")!;
      assert.equal(c1.image, "RawData/Training/img/img0001.nii.gz");
      assert.equal(c1.label, "RawData/Training/label/label0001.nii.gz");
    });

    it("acdc has 70/10/20 patients with ED and ES cases", () => {
      const m = loadManifest("acdc");
      const patients = (list: string[]) => new Set(list.map((id) => id.split("_")[0]));
      assert.equal(patients(m.splits.train).size, 70);
      assert.equal(patients(m.splits.val).size, 10);
      assert.equal(patients(m.splits.test).size, 20);
      assert.equal(m.splits.test.length, 40);
      assert.ok(m.splits.test.includes("patient095_ES"));
    });

    it("msd manifests have the documented sizes", () => {
      const brats = loadManifest("msd-task01-braintumour");
      assert.deepEqual([brats.splits.train.length, brats.splits.val.length, brats.splits.test.length], [387, 73, 24]);
      assert.deepEqual(brats.channels, ["FLAIR", "T1w", "T1gd", "T2w"]);
      const spleen = loadManifest("msd-task09-spleen");
      assert.equal(spleen.cases.length, 41);
      assert.equal(spleen.splits.train.length + spleen.splits.val.length + spleen.splits.test.length, 41);
    });

    it("phantom resolves to images/ and labels/ under its data root", () => {
      const m = loadManifest("phantom");
      assert.deepEqual(m.generator, { kind: "phantom", seed: 0, count: 80, shape: [64, 64, 64], spacing: [3, 6, 6] });
      const root = path.join(os.tmpdir(), "phantom-root");
      const r = resolveManifest(m, root, { checkFiles: false });
      assert.equal(r.dataRoot, root);
      assert.deepEqual(
        [r.splits.unlabeled.length, r.splits.train.length, r.splits.val.length, r.splits.test.length],
        [24, 32, 4, 20],
      );
      assert.equal(r.splits.train[0].id, "phantom_024");
      assert.deepEqual(r.splits.train[0].images, [path.join(root, "images", "phantom_024.nii.gz")]);
      assert.equal(r.splits.train[0].label, path.join(root, "labels", "phantom_024.nii.gz"));
      assert.equal(r.splits.unlabeled[0].label, null, "unlabeled split must hide labels");
      assert.ok(r.cases.get("phantom_000")!.label, "the case itself keeps its label");
      // Its default root is data/phantom in the project (unless $MAE_NNFORMER_DATA/phantom exists).
      const saved = process.env.MAE_NNFORMER_DATA;
      delete process.env.MAE_NNFORMER_DATA;
      const d = resolveManifest(m, undefined, { checkFiles: false });
      if (saved !== undefined) process.env.MAE_NNFORMER_DATA = saved;
      assert.equal(d.dataRoot, path.join(path.dirname(manifestDir()), "data", "phantom"));
    });

    it("mricron-brain resolves against /usr/share/mricron/templates", () => {
      if (!fs.existsSync("/usr/share/mricron/templates/ch2bet.nii.gz")) {
        assert.fail("mricron-data is not installed (/usr/share/mricron/templates); run `bash scripts/setup.sh`");
      }
      const m = loadManifest("mricron-brain");
      assert.equal(m.labels.length, 117);
      assert.deepEqual(m.labels[1], { value: 1, name: "Precentral_L" });
      assert.deepEqual(m.labels[116], { value: 116, name: "Vermis_10" });
      const r = resolveManifest(m); // default data root, checkFiles on
      assert.equal(r.dataRoot, "/usr/share/mricron/templates");
      assert.deepEqual(r.splits.test[0].images, ["/usr/share/mricron/templates/ch2bet.nii.gz"]);
      assert.equal(r.splits.test[0].label, "/usr/share/mricron/templates/aal.nii.gz");
    });
  });

  describe("resolveManifest", () => {
    let root: string;
    beforeEach(() => {
      root = fs.mkdtempSync(path.join(os.tmpdir(), "manifest-test-"));
    });
    afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

    it("reports every missing file in one error, naming the data root and the manifest", () => {
      const m = parseManifest(tiny(), "tiny.json");
      for (const f of ["a_t1.nii.gz", "a_seg.nii.gz", "c_4d.nii.gz"]) fs.writeFileSync(path.join(root, f), "");
      const expected = [
        "a_t2.nii.gz",
        "b_t1.nii.gz",
        "b_t2.nii.gz",
        "b_seg.nii.gz",
        "c_seg.nii.gz",
        "d_t1.nii.gz",
        "d_t2.nii.gz",
      ];
      let err: ManifestError | undefined;
      try {
        resolveManifest(m, root);
      } catch (e) {
        err = e as ManifestError;
      }
      assert.ok(err instanceof ManifestError, "expected a ManifestError");
      assert.match(err.message, new RegExp(`under data root ${root.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
      assert.match(err.message, /tiny\.json/);
      assert.match(err.message, /7 file\(s\)/);
      for (const f of expected) assert.ok(err.message.includes(path.join(root, f)), `${f} not listed:\n${err.message}`);
      for (const f of ["a_t1.nii.gz", "a_seg.nii.gz", "c_4d.nii.gz"])
        assert.ok(!err.message.includes(path.join(root, f)));
      assert.deepEqual([...err.issues].sort(), expected.map((f) => path.join(root, f)).sort());
    });

    it("resolves when all files exist, with a 4D image and hidden unlabeled labels", () => {
      const m = parseManifest(tiny(), "tiny.json");
      for (const c of m.cases) {
        for (const p of [...(Array.isArray(c.image) ? c.image : [c.image]), ...(c.label ? [c.label] : [])]) {
          fs.writeFileSync(path.join(root, p), "");
        }
      }
      const r = resolveManifest(m, root);
      assert.equal(r.splits.test[0].channelsInOneFile, true);
      assert.deepEqual(r.splits.test[0].images, [path.join(root, "c_4d.nii.gz")]);
      assert.equal(r.splits.train[0].channelsInOneFile, false);
      assert.equal(r.splits.unlabeled[0].id, "a");
      assert.equal(r.splits.unlabeled[0].label, null);
      assert.equal(r.splits.train[0].label, path.join(root, "a_seg.nii.gz"));
    });

    it("fills {ED:2}-style placeholders from a varsFile (ACDC Info.cfg)", () => {
      const m = loadManifest("acdc");
      const dir = path.join(root, "database", "training", "patient001");
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, "Info.cfg"), "ED: 1\r\nES: 12\r\nGroup: DCM\r\n");
      for (const f of ["patient001_frame01.nii.gz", "patient001_frame01_gt.nii.gz", "patient001_frame12.nii.gz"]) {
        fs.writeFileSync(path.join(dir, f), "");
      }
      const r = resolveManifest(m, root, { checkFiles: false });
      assert.deepEqual(r.cases.get("patient001_ED")!.images, [path.join(dir, "patient001_frame01.nii.gz")]);
      assert.equal(r.cases.get("patient001_ES")!.label, path.join(dir, "patient001_frame12_gt.nii.gz"));
      try {
        resolveManifest(m, root, { only: ["train"] });
        assert.fail("expected missing files");
      } catch (e) {
        const msg = (e as Error).message;
        assert.ok(msg.includes(path.join(dir, "patient001_frame12_gt.nii.gz")), msg.slice(0, 500));
        assert.ok(!msg.includes(path.join(dir, "patient001_frame12.nii.gz ")));
        assert.ok(msg.includes(path.join(root, "database", "training", "patient004", "Info.cfg")));
      }
    });

    it("a generated dataset's missing files point to the generator", () => {
      assert.throws(() => resolveManifest(loadManifest("phantom"), root), /npm run phantoms/);
    });
  });

  describe("validation errors", () => {
    it("names an unknown field by its JSON path", () => {
      const j = tiny();
      j.cases[3].lable = "x";
      j.extra = 1;
      const e = parseError(j);
      assert.match(e.message, /cases\[3\]\.lable: unknown field "lable"/);
      assert.match(e.message, /allowed here: id, image, label, varsFile/);
      assert.match(e.message, /extra: unknown field/);
    });

    it("names the path and value of a wrong type and of a missing field", () => {
      const j = tiny();
      j.cases[1].label = 5;
      delete j.source;
      const e = parseError(j);
      assert.match(e.message, /cases\[1\]\.label: .*got 5/);
      assert.match(e.message, /source: required field is missing/);
    });

    it("rejects absolute paths", () => {
      const j = tiny();
      j.cases[0].label = "/data/a_seg.nii.gz";
      assert.match(
        parseError(j).message,
        /cases\[0\]\.label: paths are relative to the data root.*"\/data\/a_seg\.nii\.gz"/,
      );
    });

    it("rejects duplicate case ids", () => {
      const j = tiny();
      j.cases[1].id = "a";
      assert.match(parseError(j).message, /cases\[1\]\.id: "a" is already used by cases\[0\]/);
    });

    it("rejects split ids that are not cases", () => {
      const j = tiny();
      j.splits.val = ["b", "zz"];
      assert.match(parseError(j).message, /splits\.val\[1\]: "zz" is not a case id/);
    });

    it("rejects a case in both train and test", () => {
      const j = tiny();
      j.splits.test = ["c", "a"];
      assert.match(parseError(j).message, /\["a"\] is in both train and test/);
    });

    it("rejects a partial val/test overlap but allows identical lists", () => {
      const j = tiny();
      j.splits.val = ["b", "c"];
      assert.match(parseError(j).message, /disjoint or identical/);
      const k = tiny();
      k.splits.val = ["c"];
      parseManifest(k, "tiny.json");
    });

    it("rejects unlabelled cases in labelled splits", () => {
      const j = tiny();
      j.splits.test = ["d"];
      j.splits.unlabeled = ["a"];
      assert.match(parseError(j).message, /splits\.test\[0\]: case "d" has label null/);
    });

    it("rejects duplicated and non-integer label values", () => {
      const j = tiny();
      j.labels[2].value = 1;
      assert.match(parseError(j).message, /labels\[2\]\.value: 1 is already used by labels\[1\]/);
      const k = tiny();
      k.labels[1].value = 1.5;
      assert.match(parseError(k).message, /labels\[1\]\.value: label values must be integers; got 1\.5/);
    });

    it("rejects evaluatedLabels that are not label names", () => {
      const j = tiny();
      j.evaluatedLabels = ["lesion", "tumour"];
      assert.match(parseError(j).message, /evaluatedLabels\[1\]: "tumour" is not a label name/);
    });

    it("rejects an image list whose length differs from channels", () => {
      const j = tiny();
      j.cases[1].image = ["b_t1.nii.gz"];
      assert.match(parseError(j).message, /cases\[1\]\.image: 1 path\(s\) for 2 channel\(s\)/);
    });

    it("rejects a bad modality with the allowed values", () => {
      const j = tiny();
      j.modality = "XR";
      assert.match(parseError(j).message, /modality: got "XR"; expected one of "CT", "MRI"/);
    });

    it("reports several problems at once", () => {
      const j = tiny();
      j.cases[1].id = "a";
      j.evaluatedLabels = ["nope"];
      assert.equal(parseError(j).issues.length >= 2, true);
    });

    it("names the file for a bad manifest name and for an unknown manifest", () => {
      assert.throws(
        () => loadManifest("no-such-dataset"),
        /no-such-dataset\.json does not exist.*known manifests: .*phantom/,
      );
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "manifest-json-"));
      const f = path.join(dir, "broken.json");
      fs.writeFileSync(f, "{ not json");
      try {
        assert.throws(
          () => loadManifest(f),
          (e: Error) => e.message.includes(f) && /not valid JSON/.test(e.message),
        );
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("checkLabelValues", () => {
    let m: Manifest;
    before(() => {
      m = parseManifest(tiny(), "tiny.json");
    });

    it("accepts label maps with known values", () => {
      checkLabelValues(new Uint8Array([0, 0, 1, 2, 2, 0]), m, "ok.nii.gz");
    });

    it("names the file and each unexpected value", () => {
      assert.throws(
        () => checkLabelValues(new Int16Array([0, 7, 7, 1, 3, 0, 7]), m, "seg_b.nii.gz"),
        (e: Error) =>
          /seg_b\.nii\.gz/.test(e.message) && /3 \(1 voxels\)/.test(e.message) && /7 \(3 voxels\)/.test(e.message),
      );
      assert.throws(() => checkLabelValues([0, 0.5], m, "float.nii.gz"), /float\.nii\.gz.*0\.5/);
    });
  });
});
