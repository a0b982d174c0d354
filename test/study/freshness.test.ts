import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { writeSafetensors } from "../../src/io/safetensors";
import {
  cellSettings,
  checkStudyFolder,
  expected,
  pretrainSettings,
  CellPlan,
  PretrainPlan,
  StudyDescriptionInput,
} from "../../src/study/freshness";
import { fingerprint } from "../../src/runtime/fingerprint";
import { getProfile } from "../../src/study/profiles";
import type { StudyProfile } from "../../src/study/profiles";
import type { Preprocessing } from "../../src/data/preprocess";

const settings = (steps: number, extra: object = {}) => ({ finetune: { steps, lr: 0.003 }, kit: "0.1.0", ...extra });

/** A checkpoint whose extra metadata records `rec` (or nothing). */
function checkpoint(file: string, rec?: { fingerprint: string; settings: unknown }): void {
  writeSafetensors(file, new Map([["param/w", { dtype: "F32", shape: [1], data: new Float32Array([1]) }]]), {
    extra: JSON.stringify(rec ?? {}),
  });
}

function row(key: string, rec?: { fingerprint: string; settings: unknown }): string {
  return JSON.stringify({ key, meta: { profile: "smoke", ...(rec ?? {}) } }) + "\n";
}

describe("study/freshness", () => {
  let out: string;
  let cells: CellPlan[];
  let pretrain: PretrainPlan[];
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "freshness-test-"));
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  beforeEach(() => {
    out = fs.mkdtempSync(path.join(root, "run-"));
    cells = ["a", "b", "c"].map((k) => ({
      key: k,
      dir: path.join(out, "runs", k),
      want: expected(`cell ${k}`, settings(2, { k })),
    }));
    pretrain = [
      { dir: path.join(out, "pretrain", "m"), want: expected("MAE pretraining of m", { pretrain: { steps: 2 } }) },
    ];
    for (const c of cells) fs.mkdirSync(c.dir, { recursive: true });
    fs.mkdirSync(pretrain[0].dir, { recursive: true });
  });

  const rec = (e: { fingerprint: string; settings: unknown }) => ({ fingerprint: e.fingerprint, settings: e.settings });

  it("accepts a folder that matches: rows, a cell's checkpoints, the pretraining", () => {
    fs.writeFileSync(path.join(out, "results.jsonl"), row("a", rec(cells[0].want)) + row("zzz-not-in-grid"));
    checkpoint(path.join(cells[1].dir, "latest.safetensors"), rec(cells[1].want));
    checkpoint(path.join(pretrain[0].dir, "mae_latest.safetensors"), rec(pretrain[0].want));
    checkStudyFolder(out, cells, pretrain);
    checkStudyFolder(path.join(root, "empty-nonexistent"), cells, pretrain);
  });

  it("reads what MAE pretraining checkpoints record with their training settings", () => {
    const file = path.join(pretrain[0].dir, "mae_latest.safetensors");
    writeSafetensors(file, new Map([["w", { dtype: "F32", shape: [1], data: new Float32Array([1]) }]]), {
      extra: JSON.stringify({ mae: {}, train: { maxSteps: 2, ...rec(pretrain[0].want) } }),
    });
    checkStudyFolder(out, cells, pretrain);
    assert.throws(
      () =>
        checkStudyFolder(out, cells, [
          { ...pretrain[0], want: expected("MAE pretraining of m", { pretrain: { steps: 3 } }) },
        ]),
      /MAE pretraining of m \(.*mae_latest\.safetensors\): pretrain\.steps: 2 -> 3/,
    );
  });

  it("refuses a row of other settings, naming the cell, the line, the fields and the way out", () => {
    const old = expected("cell a", settings(4, { k: "a" }));
    fs.writeFileSync(path.join(out, "results.jsonl"), row("b", rec(cells[1].want)) + row("a", rec(old)));
    assert.throws(
      () => checkStudyFolder(out, cells, pretrain),
      (e: Error) => {
        assert.match(e.message, /holds results or checkpoints made with other settings than this run/);
        assert.match(e.message, /- cell a \(.*results\.jsonl line 2\): finetune\.steps: 4 -> 2/);
        assert.match(e.message, /another --out folder .* or add --force/);
        assert.doesNotMatch(e.message, /cell b/);
        return true;
      },
    );
  });

  it("refuses rows and checkpoints that record no settings, and a truncated checkpoint, saying to delete it", () => {
    fs.writeFileSync(path.join(out, "results.jsonl"), row("a"));
    const latest = path.join(cells[2].dir, "latest.safetensors");
    checkpoint(latest, rec(cells[2].want));
    fs.truncateSync(latest, fs.statSync(latest).size - 2);
    checkpoint(path.join(pretrain[0].dir, "mae_latest.safetensors"));
    assert.throws(
      () => checkStudyFolder(out, cells, pretrain),
      (e: Error) => {
        assert.match(e.message, /cell a .*: it records no settings \(written by an earlier version of the kit\)/);
        assert.match(
          e.message,
          /cell c \(.*latest\.safetensors\): .*latest\.safetensors is truncated: .*; delete .*latest\.safetensors to restart that cell/,
        );
        assert.match(e.message, /MAE pretraining of m \(.*mae_latest\.safetensors\): it records no settings/);
        return true;
      },
    );
  });

  it("with force, removes stale rows and checkpoints and keeps the rest byte for byte", () => {
    const old = expected("cell a", settings(4, { k: "a" }));
    const lines = [row("b", rec(cells[1].want)), row("a", rec(old)), row("zzz-not-in-grid")];
    fs.writeFileSync(path.join(out, "results.jsonl"), lines.join(""));
    checkpoint(path.join(cells[0].dir, "best.safetensors"), rec(old));
    checkpoint(path.join(cells[1].dir, "best.safetensors"), rec(cells[1].want));
    const logged: string[] = [];
    checkStudyFolder(out, cells, pretrain, { force: true, log: (l) => logged.push(l) });
    assert.equal(fs.readFileSync(path.join(out, "results.jsonl"), "utf8"), lines[0] + lines[2]);
    assert.deepEqual(fs.readdirSync(cells[0].dir), []);
    assert.deepEqual(fs.readdirSync(cells[1].dir), ["best.safetensors"]);
    assert.match(logged.join("\n"), /--force: discarding .*\n  - cell a .*finetune\.steps: 4 -> 2/);
    checkStudyFolder(out, cells, pretrain); // now clean
  });

  describe("what a cell's fingerprint covers", () => {
    const input = (profile: StudyProfile): StudyDescriptionInput => ({
      profile,
      data: {
        source: profile.data,
        name: "phantom",
        modality: "CT",
        labelNames: ["background", "organ"],
        evalClasses: [1],
        cases: { unlabeled: ["u0"], train: ["t0", "t1"], val: ["v0"], test: ["x0"] },
      },
      plan: { channels: 1, modality: "CT" } as unknown as Preprocessing,
      numClasses: 2,
      cropSize: [16, 32, 32],
      presetOf: (m) => ({ preset: m }),
    });
    const cell = { init: "scratch", model: "nnformer-micro", labelFraction: 1, seed: 0 };
    const fp = (p: StudyProfile, c = cell, pretrained: string | null = null) =>
      fingerprint(cellSettings(input(p), c, ["t0", "t1"], pretrained));

    it("other cells of the grid and report-only fields leave it alone", () => {
      const base = getProfile("smoke");
      assert.equal(fp({ ...base, seeds: [0, 1, 2], labelFractions: [0.25, 1], inits: ["scratch"] }), fp(base));
      assert.equal(fp({ ...base, name: "renamed", convergenceLevels: [0.5] }), fp(base));
      assert.equal(
        fp({ ...base, pretrain: { ...base.pretrain, steps: 99 } }),
        fp(base),
        "scratch cells ignore pretraining",
      );
    });

    it("anything that determines its result changes it", () => {
      const base = getProfile("smoke");
      assert.notEqual(fp({ ...base, finetune: { ...base.finetune, steps: 3 } }), fp(base));
      assert.notEqual(fp({ ...base, eval: { ...base.eval, mirror: true } }), fp(base));
      assert.notEqual(fp({ ...base, modelOverrides: { "nnformer-micro": { embedDim: 6 } } }), fp(base));
      assert.notEqual(fp(base, { ...cell, seed: 1 }), fp(base));
      const mae = { ...cell, init: "mae" };
      assert.notEqual(fp(base, mae, "aaaa"), fp(base, mae, "bbbb"), "the pretrained encoder it starts from");
      const p1 = fingerprint(pretrainSettings(input(base), "nnformer-micro"));
      const p2 = fingerprint(
        pretrainSettings(input({ ...base, pretrain: { ...base.pretrain, maskRatio: 0.5 } }), "nnformer-micro"),
      );
      assert.notEqual(p1, p2);
    });
  });
});
