import { strict as assert } from "assert";
import { choosePostprocessing, keepLargestComponent, type Connectivity } from "../../src/infer/postprocess";
import { makeRng } from "../../src/runtime/random";
import type { Vec3 } from "../../src/runtime/math";

/** Reference: component ids by min-label propagation until nothing changes (another algorithm than the BFS). */
function referenceLargest(labels: Uint8Array, [D, H, W]: Vec3, classes: number[], conn: Connectivity): Uint8Array {
  const n = D * H * W;
  const id = Int32Array.from({ length: n }, (_, i) => i);
  const at = (d: number, h: number, w: number) => (d * H + h) * W + w;
  let changed = true;
  while (changed) {
    changed = false;
    for (let d = 0; d < D; d++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) {
          const v = at(d, h, w);
          if (!classes.includes(labels[v])) continue;
          for (let a = -1; a <= 1; a++)
            for (let b = -1; b <= 1; b++)
              for (let c = -1; c <= 1; c++) {
                const k = Math.abs(a) + Math.abs(b) + Math.abs(c);
                if (k === 0 || (conn === 6 && k > 1)) continue;
                const [dd, hh, ww] = [d + a, h + b, w + c];
                if (dd < 0 || hh < 0 || ww < 0 || dd >= D || hh >= H || ww >= W) continue;
                const u = at(dd, hh, ww);
                if (labels[u] === labels[v] && id[u] < id[v]) {
                  id[v] = id[u];
                  changed = true;
                }
              }
        }
  }
  const size = new Map<number, number>();
  for (let v = 0; v < n; v++) if (classes.includes(labels[v])) size.set(id[v], (size.get(id[v]) ?? 0) + 1);
  const best = new Map<number, number>(); // class -> component id (ties: the smallest id, i.e. met first)
  for (const [cid, s] of [...size.entries()].sort((x, y) => x[0] - y[0])) {
    const c = labels[cid];
    const b = best.get(c);
    if (b === undefined || s > size.get(b)!) best.set(c, cid);
  }
  return labels.map((c, v) => (classes.includes(c) && best.get(c) !== id[v] ? 0 : c));
}

describe("infer/postprocess", () => {
  it("keeps only the largest piece of each chosen class and leaves the others alone", () => {
    // 1 x 4 x 6: class 1 as a 3-voxel piece and a 1-voxel island, class 2 as two 2-voxel pieces, class 3 untouched
    const shape: Vec3 = [1, 4, 6];
    // prettier-ignore
    const labels = Uint8Array.from([
      1, 1, 0, 0, 2, 2,
      1, 0, 0, 0, 0, 0,
      0, 0, 0, 1, 0, 3,
      2, 2, 0, 0, 0, 3,
    ]);
    const out = keepLargestComponent(labels, shape, [1, 2]);
    // prettier-ignore
    assert.deepEqual(Array.from(out), [
      1, 1, 0, 0, 2, 2,
      1, 0, 0, 0, 0, 0,
      0, 0, 0, 0, 0, 3,
      0, 0, 0, 0, 0, 3,
    ]);
    assert.deepEqual(Array.from(keepLargestComponent(labels, shape, [])), Array.from(labels), "no class: a copy");
    assert.equal(labels[15], 1, "the input is not modified");
  });

  it("counts corner neighbours as connected with 26 and not with 6", () => {
    const shape: Vec3 = [2, 2, 2];
    const labels = Uint8Array.from([4, 0, 0, 0, 0, 0, 0, 4]); // (0,0,0) and (1,1,1) touch at a corner only
    assert.deepEqual(Array.from(keepLargestComponent(labels, shape, [4], 26)), [4, 0, 0, 0, 0, 0, 0, 4]);
    assert.deepEqual(Array.from(keepLargestComponent(labels, shape, [4], 6)), [4, 0, 0, 0, 0, 0, 0, 0]);
  });

  it("agrees with a min-label propagation reference on random volumes", () => {
    const rng = makeRng(7);
    for (let trial = 0; trial < 20; trial++) {
      const shape: Vec3 = [3 + (trial % 3), 5, 6];
      const n = shape[0] * shape[1] * shape[2];
      const labels = Uint8Array.from({ length: n }, () => (rng() < 0.55 ? 0 : 1 + Math.floor(rng() * 3)));
      const conn: Connectivity = trial % 2 ? 6 : 26;
      const classes = trial % 4 < 2 ? [1, 2, 3] : [2];
      assert.deepEqual(
        Array.from(keepLargestComponent(labels, shape, classes, conn)),
        Array.from(referenceLargest(labels, shape, classes, conn)),
        `trial ${trial} (${conn}-connected, classes ${classes})`,
      );
    }
  });

  it("names the sizes when the label map does not fit the shape", () => {
    assert.throws(() => keepLargestComponent(new Uint8Array(7), [2, 2, 2], [1]), /7 voxels but shape 2x2x2 has 8/);
    assert.throws(
      () => keepLargestComponent(new Uint8Array(8), [2, 2, 2], [1], 18 as Connectivity),
      /connectivity must be 6 or 26, got 18/,
    );
  });

  it("chooses a class only when post-processing raises its mean validation Dice", () => {
    const before = [
      [0.8, 0.5, NaN],
      [0.6, 0.5, 0.4],
    ];
    const after = [
      [0.8, 0.6, NaN],
      [0.6, 0.3, 0.5],
    ];
    const c = choosePostprocessing([1, 2, 3], before, after, 6);
    assert.deepEqual(
      c.classes,
      [3],
      "class 1 unchanged, class 2 worse (0.45 < 0.5), class 3 better (NaN case skipped)",
    );
    assert.deepEqual(c.before, [0.7, 0.5, 0.4]);
    assert.ok(Math.abs(c.after[1] - 0.45) < 1e-12);
    assert.equal(c.connectivity, 6);
    assert.throws(() => choosePostprocessing([1], [], []), /no validation cases/);
    assert.throws(() => choosePostprocessing([1], [[0.5]], []), /1 cases scored before but 0 after/);
    assert.throws(() => choosePostprocessing([1, 2], [[0.5]], [[0.5]]), /1 Dice values for 2 classes/);
  });
});
