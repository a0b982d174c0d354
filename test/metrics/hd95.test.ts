import { strict as assert } from "assert";
import {
  HD95_DEFINITIONS,
  KIT_HD95,
  NNFORMER_EVALUATED_LABELS,
  NNFORMER_HD95,
  combineDirected,
  hd95,
  hd95Scores,
  percentile,
  squaredEdt,
  surfaceDistances,
  surfaceMask,
} from "../../src/metrics/hd95";
import type { Vec3 } from "../../src/runtime/math";

function mask(shape: Vec3, f: (d: number, h: number, w: number) => boolean): Uint8Array {
  const out = new Uint8Array(shape[0] * shape[1] * shape[2]);
  let i = 0;
  for (let d = 0; d < shape[0]; d++)
    for (let h = 0; h < shape[1]; h++) for (let w = 0; w < shape[2]; w++) out[i++] = f(d, h, w) ? 1 : 0;
  return out;
}

function sphere(shape: Vec3, c: number[], r: number, spacing: Vec3 = [1, 1, 1]): Uint8Array {
  return mask(
    shape,
    (d, h, w) =>
      ((d - c[0]) * spacing[0]) ** 2 + ((h - c[1]) * spacing[1]) ** 2 + ((w - c[2]) * spacing[2]) ** 2 <= r * r,
  );
}

// ---- brute force reference, written independently of the library -------------------------------------------------

/** Surface voxel coordinates: foreground with a face neighbour that is background or off the grid. */
function bruteSurface(m: Uint8Array, shape: Vec3): number[][] {
  const [D, H, W] = shape;
  const at = (d: number, h: number, w: number) =>
    d >= 0 && d < D && h >= 0 && h < H && w >= 0 && w < W && m[(d * H + h) * W + w] === 1;
  const pts: number[][] = [];
  for (let d = 0; d < D; d++)
    for (let h = 0; h < H; h++)
      for (let w = 0; w < W; w++) {
        if (!at(d, h, w)) continue;
        const nb = [
          [1, 0, 0],
          [-1, 0, 0],
          [0, 1, 0],
          [0, -1, 0],
          [0, 0, 1],
          [0, 0, -1],
        ];
        if (nb.some(([a, b, c]) => !at(d + a, h + b, w + c))) pts.push([d, h, w]);
      }
  return pts;
}

function bruteDirected(a: number[][], b: number[][], s: number[]): number[] {
  return a.map((p) =>
    Math.sqrt(
      Math.min(
        ...b.map((q) => ((p[0] - q[0]) * s[0]) ** 2 + ((p[1] - q[1]) * s[1]) ** 2 + ((p[2] - q[2]) * s[2]) ** 2),
      ),
    ),
  );
}

/** numpy.percentile(x, q) with the default linear method. */
function brutePercentile(x: number[], q: number): number {
  const v = [...x].sort((p, r) => p - r);
  const pos = (q / 100) * (v.length - 1);
  const i = Math.floor(pos);
  return i + 1 < v.length ? v[i] * (1 - (pos - i)) + v[i + 1] * (pos - i) : v[i];
}

/** MONAI's HD95: the larger of the two directed 95th percentiles. */
function bruteMonai(p: Uint8Array, r: Uint8Array, shape: Vec3, s: number[]): number {
  const sp = bruteSurface(p, shape),
    sr = bruteSurface(r, shape);
  return Math.max(brutePercentile(bruteDirected(sp, sr, s), 95), brutePercentile(bruteDirected(sr, sp, s), 95));
}

/** medpy's HD95: the 95th percentile of both directions' distances in one list. */
function bruteMedpy(p: Uint8Array, r: Uint8Array, shape: Vec3, s: number[]): number {
  const sp = bruteSurface(p, shape),
    sr = bruteSurface(r, shape);
  return brutePercentile([...bruteDirected(sp, sr, s), ...bruteDirected(sr, sp, s)], 95);
}

/** An axis-aligned box of voxels, corners inclusive. */
function box(shape: Vec3, lo: number[], hi: number[]): Uint8Array {
  return mask(shape, (d, h, w) => d >= lo[0] && d <= hi[0] && h >= lo[1] && h <= hi[1] && w >= lo[2] && w <= hi[2]);
}

const or = (a: Uint8Array, b: Uint8Array) => a.map((v, i) => v | b[i]);

const close = (a: number, b: number, msg = "") =>
  assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${a} != ${b} ${msg}`);

describe("metrics/hd95", () => {
  it("the EDT is exact against brute force, with anisotropic spacing", () => {
    const shape: Vec3 = [7, 9, 11];
    const spacing: Vec3 = [2.5, 0.7, 1.3];
    const sites = mask(shape, (d, h, w) => (d * 31 + h * 17 + w * 7) % 23 === 0);
    const siteList: number[][] = [];
    for (let d = 0; d < 7; d++)
      for (let h = 0; h < 9; h++)
        for (let w = 0; w < 11; w++) if (sites[(d * 9 + h) * 11 + w]) siteList.push([d, h, w]);
    const dt = squaredEdt(sites, shape, spacing);
    let i = 0;
    for (let d = 0; d < 7; d++)
      for (let h = 0; h < 9; h++)
        for (let w = 0; w < 11; w++, i++) {
          const want = Math.min(
            ...siteList.map((q) => ((d - q[0]) * 2.5) ** 2 + ((h - q[1]) * 0.7) ** 2 + ((w - q[2]) * 1.3) ** 2),
          );
          close(dt[i], want, `at ${d},${h},${w}`);
        }
    assert.ok(squaredEdt(new Uint8Array(8), [2, 2, 2], [1, 1, 1]).every((v) => v === Infinity));
  });

  it("surfaces are 6-connected borders, and the grid edge counts as background", () => {
    const shape: Vec3 = [5, 5, 5];
    const cube = mask(shape, (d, h, w) => d >= 1 && d <= 3 && h >= 1 && h <= 3 && w >= 1 && w <= 3);
    const s = surfaceMask(cube, shape);
    assert.equal(
      s.reduce((a, b) => a + b, 0),
      27 - 1,
    ); // only the centre voxel is interior
    const full = surfaceMask(new Uint8Array(27).fill(1), [3, 3, 3]);
    assert.equal(
      full.reduce((a, b) => a + b, 0),
      26,
    );
  });

  it("hand cases: single voxels and parallel plates offset by k along D give k * spacing_D", () => {
    const shape: Vec3 = [10, 6, 6];
    const spacing: Vec3 = [3, 0.8, 0.8];
    const a = mask(shape, (d, h, w) => d === 2 && h === 3 && w === 3);
    const b = mask(shape, (d, h, w) => d === 6 && h === 3 && w === 3);
    close(hd95(a, b, shape, { spacing }), 4 * 3);
    const p = mask(shape, (d) => d === 1),
      q = mask(shape, (d) => d === 4);
    close(hd95(p, q, shape, { spacing }), 9);
    close(hd95(p, q, shape, { units: "voxel" }), 3);
    assert.equal(hd95(p, p, shape, { spacing }), 0);
  });

  it("two spheres offset by k voxels along one axis, anisotropic spacing, match brute force (both definitions)", () => {
    const shape: Vec3 = [16, 20, 24];
    const spacing: Vec3 = [2, 1, 0.75];
    for (const [axis, k] of [
      [0, 2],
      [1, 3],
      [2, 5],
    ] as const) {
      const c = [7, 9, 11];
      const c2 = c.slice();
      c2[axis] += k;
      const p = sphere(shape, c, 6, spacing),
        r = sphere(shape, c2, 6, spacing);
      for (const [definition, brute] of [
        ["monai", bruteMonai],
        ["medpy", bruteMedpy],
      ] as const) {
        const want = brute(p, r, shape, spacing);
        close(hd95(p, r, shape, { spacing, definition }), want, `${definition} axis ${axis} k ${k}`);
        close(hd95(r, p, shape, { spacing, definition }), want, "symmetric");
        // the voxel convention is the same computation with unit spacing
        close(hd95(p, r, shape, { units: "voxel", spacing, definition }), brute(p, r, shape, [1, 1, 1]));
      }
    }
  });

  it("medpy pools both directions, monai takes the worse direction: a hand case on a line of voxels", () => {
    // Grid 1x1x40: every foreground voxel is surface. Reference w = 0..9; prediction = reference + one voxel at w = 30.
    // pred -> ref: ten 0s and 21 (30 - 9); ref -> pred: ten 0s. numpy's 95th percentile:
    //   monai: pred -> ref has 11 values, position 0.95 * 10 = 9.5 -> halfway between 0 and 21 = 10.5;
    //   medpy: 21 pooled values, position 0.95 * 20 = 19 -> the 20th smallest = 0.
    const shape: Vec3 = [1, 1, 40];
    const ref = mask(shape, (d, h, w) => w <= 9);
    const pred = mask(shape, (d, h, w) => w <= 9 || w === 30);
    assert.equal(hd95(pred, ref, shape, { spacing: [1, 1, 1], definition: "monai" }), 10.5);
    assert.equal(hd95(pred, ref, shape, { spacing: [1, 1, 1], definition: "medpy" }), 0);
    // spacing 2 mm along W doubles both; the 0 stays 0
    assert.equal(hd95(pred, ref, shape, { spacing: [1, 1, 2], definition: "monai" }), 21);
    assert.equal(hd95(pred, ref, shape, { spacing: [1, 1, 2], definition: "medpy" }), 0);
    // combineDirected on the lists written out
    const ab = Float64Array.from([...new Array(10).fill(0), 21]),
      ba = new Float64Array(10);
    assert.equal(combineDirected(ab.slice(), ba.slice(), "monai"), 10.5);
    assert.equal(combineDirected(ab.slice(), ba.slice(), "medpy"), 0);
  });

  // Expected values below were computed twice, independently of src/metrics: by the brute force in this file and by a
  // numpy/scipy rewrite of medpy's hd95 (binary_erosion with 6-connectivity, distance_transform_edt with sampling,
  // numpy.percentile of the pooled lists; "monai" = max of the two directed percentiles).
  it("the issue's example: a 12x20x20 reference plus a separate 5^3 false-positive blob gives medpy 0", () => {
    const shape: Vec3 = [24, 40, 40];
    const ref = box(shape, [2, 4, 4], [13, 23, 23]);
    const pred = or(ref, box(shape, [16, 30, 30], [20, 34, 34]));
    const s: Vec3 = [1, 1, 1];
    assert.equal(bruteMedpy(pred, ref, shape, s), 0);
    close(bruteMonai(pred, ref, shape, s), 12.089242425502702);
    assert.equal(hd95(pred, ref, shape, { spacing: s, definition: "medpy" }), 0);
    close(hd95(pred, ref, shape, { spacing: s, definition: "monai" }), 12.089242425502702);
    // the official convention (voxel units) gives the same here: spacing is 1
    assert.equal(hd95(pred, ref, shape, NNFORMER_HD95), 0);
  });

  it("fixtures where the definitions differ, anisotropic, match brute force and the scipy rewrite of medpy", () => {
    const shape: Vec3 = [12, 30, 30];
    const spacing: Vec3 = [3, 0.8, 0.8];
    const ref = box(shape, [2, 5, 5], [8, 18, 20]);
    const pred = or(box(shape, [3, 7, 4], [9, 20, 19]), box(shape, [10, 24, 24], [11, 28, 28]));
    const want = {
      mm: { medpy: 3.4, monai: 9.94542479689447 },
      voxel: { medpy: 2.23606797749979, monai: 9.205475851233412 },
    };
    for (const definition of HD95_DEFINITIONS) {
      const brute = definition === "medpy" ? bruteMedpy : bruteMonai;
      close(brute(pred, ref, shape, spacing), want.mm[definition], `brute ${definition}`);
      close(hd95(pred, ref, shape, { spacing, definition }), want.mm[definition], definition);
      close(hd95(pred, ref, shape, { units: "voxel", definition }), want.voxel[definition], `${definition} voxel`);
    }
    close(hd95(pred, ref, shape, NNFORMER_HD95), want.voxel.medpy);
    // a small sphere inside a larger, offset one
    const s2: Vec3 = [16, 20, 24];
    const sp2: Vec3 = [2, 1, 0.75];
    const p = sphere(s2, [7, 9, 11], 4, sp2),
      r = sphere(s2, [7, 10, 12], 7, sp2);
    close(hd95(p, r, s2, { spacing: sp2, definition: "medpy" }), Math.sqrt(17)); // scipy: 4.123105625617661
    close(hd95(p, r, s2, { spacing: sp2, definition: "monai" }), 4.187380752162932);
    close(bruteMedpy(p, r, s2, sp2), Math.sqrt(17));
  });

  it("conventions: the official nnFormer one and the kit's", () => {
    assert.deepEqual([...NNFORMER_EVALUATED_LABELS], [1, 2, 3, 4, 6, 7, 8, 11]);
    const shape: Vec3 = [4, 5, 6];
    const empty = new Uint8Array(120);
    const some = mask(shape, (d) => d === 1);
    // official: 0 when either is empty, both empty included
    assert.equal(hd95(empty, some, shape, NNFORMER_HD95), 0);
    assert.equal(hd95(some, empty, shape, NNFORMER_HD95), 0);
    assert.equal(hd95(empty, empty, shape, NNFORMER_HD95), 0);
    // kit: a missed or hallucinated structure costs the diagonal in mm; absent from both is undefined
    const spacing: Vec3 = [2, 1, 1];
    assert.equal(hd95(empty, some, shape, { ...KIT_HD95, spacing }), Math.hypot(8, 5, 6));
    assert.equal(hd95(some, empty, shape, { ...KIT_HD95, spacing }), Math.hypot(8, 5, 6));
    assert.ok(Number.isNaN(hd95(empty, empty, shape, { ...KIT_HD95, spacing })));
    assert.throws(
      () => hd95(some, some, shape, { spacing, definition: "hausdorff" as never }),
      /definition must be "medpy".*"monai".*got "hausdorff"/,
    );
  });

  it("concentric cubes and a structure touching the grid edge match brute force", () => {
    const shape: Vec3 = [12, 14, 10];
    const spacing: Vec3 = [1.5, 0.9, 2.2];
    const big = mask(shape, (d, h, w) => d >= 1 && d <= 10 && h >= 2 && h <= 11 && w >= 1 && w <= 8);
    const small = mask(shape, (d, h, w) => d >= 4 && d <= 7 && h >= 5 && h <= 8 && w >= 3 && w <= 6);
    const edge = mask(shape, (d, h) => d <= 3 && h <= 13); // touches three faces of the grid
    for (const [definition, brute] of [
      ["monai", bruteMonai],
      ["medpy", bruteMedpy],
    ] as const) {
      close(hd95(big, small, shape, { spacing, definition }), brute(big, small, shape, spacing), definition);
      close(hd95(edge, small, shape, { spacing, definition }), brute(edge, small, shape, spacing), definition);
    }
    // percentile 100 is the classic Hausdorff distance
    const sp = bruteSurface(big, shape),
      ss = bruteSurface(small, shape);
    const hd = Math.max(...bruteDirected(sp, ss, spacing), ...bruteDirected(ss, sp, spacing));
    close(hd95(big, small, shape, { spacing, percentile: 100 }), hd);
  });

  it("directed surface distances and numpy's percentile", () => {
    const shape: Vec3 = [1, 1, 6];
    const d = surfaceDistances([1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1], shape, [1, 1, 2]);
    assert.deepEqual(Array.from(d), [6]);
    assert.equal(percentile(Float64Array.from([4, 1, 3, 2]), 50), 2.5);
    assert.equal(percentile(Float64Array.from([0, 10]), 95), 9.5);
    assert.ok(Number.isNaN(percentile(new Float64Array(0), 95)));
  });

  it("empty masks: mm default NaN, worst case on request; voxel convention gives 0", () => {
    const shape: Vec3 = [4, 5, 6];
    const spacing: Vec3 = [2, 1, 1];
    const empty = new Uint8Array(120);
    const some = mask(shape, (d) => d === 1);
    assert.ok(Number.isNaN(hd95(empty, some, shape, { spacing })));
    assert.ok(Number.isNaN(hd95(some, empty, shape, { spacing })));
    assert.ok(Number.isNaN(hd95(empty, empty, shape, { spacing })));
    assert.equal(hd95(empty, some, shape, { spacing, oneEmpty: "diagonal" }), Math.hypot(8, 5, 6));
    assert.equal(hd95(some, empty, shape, { spacing, oneEmpty: 373 }), 373);
    assert.equal(hd95(empty, empty, shape, { spacing, bothEmpty: 0 }), 0);
    assert.equal(hd95(empty, some, shape, { units: "voxel" }), 0);
    assert.equal(hd95(some, empty, shape, { units: "voxel" }), 0);
    assert.equal(hd95(empty, empty, shape, { units: "voxel" }), 0);
    assert.throws(() => hd95(some, some, shape), /spacing/);
    assert.throws(() => hd95(some, some, [4, 5, 5], { spacing }), /shape/);
  });

  it("per-class scores on label maps, regions included", () => {
    const shape: Vec3 = [8, 8, 8];
    const spacing: Vec3 = [1, 1, 1];
    const ref = mask(shape, (d) => d < 4).map((v, i) => (v ? 1 : i % 2 ? 2 : 0));
    const pred = ref.map((v, i) => (v === 1 && i < 64 ? 3 : v));
    const [s1, s2, s13, s4] = hd95Scores(pred, ref, [1, 2, [1, 3], 4], shape, { spacing, definition: "monai" });
    assert.equal(s2, 0);
    assert.equal(s13, 0);
    assert.ok(Number.isNaN(s4));
    const p1 = pred.map((v) => (v === 1 ? 1 : 0)),
      r1 = ref.map((v) => (v === 1 ? 1 : 0));
    close(s1, bruteMonai(p1, r1, shape, spacing));
    const [m1] = hd95Scores(pred, ref, [1], shape, { spacing, definition: "medpy" });
    close(m1, bruteMedpy(p1, r1, shape, spacing));
  });

  it("is fast enough for a 128^3 volume with large structures", () => {
    const shape: Vec3 = [128, 128, 128];
    const p = sphere(shape, [64, 64, 64], 50),
      r = sphere(shape, [66, 62, 64], 48);
    const t0 = Date.now();
    const v = hd95(p, r, shape, { spacing: [1, 1, 1] });
    const ms = Date.now() - t0;
    assert.ok(v > 2 && v < 6, `hd95 ${v}`);
    assert.ok(ms < 10000, `took ${ms} ms`);
  });
});
