import { strict as assert } from "assert";
import { Volume, diagonalAffine, voxelIndex } from "../../src/data/volume";
import { Vec3 } from "../../src/runtime/math";
import { extractSlice, foregroundCentroid, orthoSlices, sliceGrid } from "../../src/plots/volume_views";
import { figureToHtml } from "../../src/plots/plotly";

/** Image whose value encodes its voxel position: 100 d + 10 h + w (for small shapes). */
function ramp(shape: Vec3, spacing: Vec3 = [1, 1, 1]): Volume<Float32Array> {
  const data = new Float32Array(shape[0] * shape[1] * shape[2]);
  for (let d = 0; d < shape[0]; d++)
    for (let h = 0; h < shape[1]; h++)
      for (let w = 0; w < shape[2]; w++) {
        data[voxelIndex(shape, d, h, w)] = 100 * d + 10 * h + w;
      }
  return { data, shape, channels: 1, spacing, affine: diagonalAffine(spacing), source: "ramp" };
}

/** Label map with a box of class `c` over [d0,d1) x [h0,h1) x [w0,w1). */
function boxLabel(shape: Vec3, boxes: [number, number[], number[], number[]][]): Volume<Uint8Array> {
  const data = new Uint8Array(shape[0] * shape[1] * shape[2]);
  for (const [c, [d0, d1], [h0, h1], [w0, w1]] of boxes) {
    for (let d = d0; d < d1; d++)
      for (let h = h0; h < h1; h++) for (let w = w0; w < w1; w++) data[voxelIndex(shape, d, h, w)] = c;
  }
  return { data, shape, channels: 1, spacing: [1, 1, 1], affine: diagonalAffine([1, 1, 1]), source: "box" };
}

describe("plots/volume_views", () => {
  it("extractSlice takes axial = fixed D (rows H, cols W), coronal = fixed H, sagittal = fixed W", () => {
    const v = ramp([3, 4, 5]);
    const ax = extractSlice(v, 0, 2);
    assert.deepEqual([ax.rows, ax.cols, ax.values[1 * 5 + 3]], [4, 5, 213]);
    const co = extractSlice(v, 1, 1);
    assert.deepEqual([co.rows, co.cols, co.values[2 * 5 + 4]], [3, 5, 214]);
    const sa = extractSlice(v, 2, 4);
    assert.deepEqual([sa.rows, sa.cols, sa.values[1 * 4 + 3]], [3, 4, 134]);
    assert.throws(() => extractSlice(v, 0, 3), /outside \[0, 2\]/);
  });

  it("orthoSlices: three gray heatmaps + three label overlays + legend, crosshairs, spacing-aware aspect", () => {
    const shape: Vec3 = [6, 8, 10];
    const image = ramp(shape, [3, 1, 0.5]);
    const label = boxLabel(shape, [
      [1, [1, 3], [2, 4], [2, 6]],
      [3, [4, 5], [5, 7], [6, 9]],
    ]);
    const fig = orthoSlices(image, { label, labelNames: ["bg", "liver", "spleen", "kidney"], title: "case 0" });
    const heat = fig.data.filter((t) => t.type === "heatmap");
    assert.equal(heat.length, 6);
    assert.deepEqual(
      heat.map((t) => t.xaxis),
      ["x", "x", "x2", "x2", "x3", "x3"],
    );
    // default index = foreground centroid
    assert.deepEqual(foregroundCentroid(label), [2, 3, 4]); // (16 voxels at (1.5, 2.5, 3.5) + 6 at (4, 5.5, 7)) / 22
    assert.ok(fig.layout.annotations.map((a: any) => a.text).join() === "axial d=2,coronal h=3,sagittal w=4");
    // axial image: rows = H (8), cols = W (10); value at (h=4, w=5) = 200 + 40 + 5
    const axial = heat[0];
    assert.equal(axial.z.length, 8);
    assert.equal(axial.z[0].length, 10);
    assert.equal(axial.z[4][5], 245);
    // label overlay: 0 -> null (transparent), classes kept, categorical scale over 1..3
    const overlay = heat[1];
    assert.equal(overlay.z[0][0], null);
    assert.equal(overlay.z[2][2], 1);
    assert.equal(overlay.zmin, 0.5);
    assert.equal(overlay.zmax, 3.5);
    assert.ok(overlay.opacity > 0 && overlay.opacity < 1);
    // legend: one entry per present class, named
    const legend = fig.data.filter((t) => t.type === "scatter");
    assert.deepEqual(
      legend.map((t) => t.name),
      ["liver", "kidney"],
    );
    // aspect from spacing: axial rows H (1 mm) over cols W (0.5 mm); coronal rows D (3 mm) over W
    assert.equal(fig.layout.yaxis.scaleanchor, "x");
    assert.equal(fig.layout.yaxis.scaleratio, 2);
    assert.equal(fig.layout.yaxis2.scaleratio, 6);
    assert.equal(fig.layout.yaxis3.scaleratio, 3);
    // two crosshair lines per panel
    assert.equal(fig.layout.shapes.length, 6);
    assert.equal(fig.layout.title.text, "case 0");
  });

  it("axial view: anterior up; radiological puts the patient's right on the viewer's left", () => {
    const image = ramp([4, 4, 4]); // diagonal affine: +i = R, +j = A, +k = S
    const rad = orthoSlices(image, { window: [0, 400] });
    assert.ok(rad.layout.yaxis.range[0] < rad.layout.yaxis.range[1], "axial: +H (anterior) must point up");
    assert.ok(rad.layout.xaxis.range[0] > rad.layout.xaxis.range[1], "axial: +W (right) must point left");
    assert.ok(rad.layout.yaxis2.range[0] < rad.layout.yaxis2.range[1], "coronal: superior up");
    const neuro = orthoSlices(image, { window: [0, 400], convention: "neurological" });
    assert.ok(neuro.layout.xaxis.range[0] < neuro.layout.xaxis.range[1]);
    // a flipped j axis (LPS-style affine) flips the screen axis so anterior stays up
    const lps = {
      ...image,
      affine: [
        [-1, 0, 0, 0],
        [0, -1, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 1],
      ],
    };
    const f = orthoSlices(lps, { window: [0, 400] });
    assert.ok(f.layout.yaxis.range[0] > f.layout.yaxis.range[1]);
  });

  it("no label: default index is the centre, values are rounded to the window, no legend", () => {
    const image = ramp([5, 7, 9]);
    image.data[voxelIndex(image.shape, 2, 3, 4)] = 0.123456789;
    const fig = orthoSlices(image, { window: [0, 1] });
    assert.equal(fig.data.length, 3);
    assert.equal(fig.layout.showlegend, false);
    assert.equal(fig.data[0].z[3][4], 0.123);
  });

  it("slices longer than maxPixels are downsampled and the figure JSON stays small", () => {
    const shape: Vec3 = [40, 600, 520];
    const data = new Float32Array(shape[0] * shape[1] * shape[2]).map((_, i) => (i % 997) / 997);
    const image: Volume = {
      data,
      shape,
      channels: 1,
      spacing: [2, 0.7, 0.7],
      affine: diagonalAffine([2, 0.7, 0.7]),
      source: "big",
    };
    const fig = orthoSlices(image);
    const axial = fig.data[0];
    assert.ok(axial.z.length <= 256 && axial.z[0].length <= 256, `${axial.z.length}x${axial.z[0].length}`);
    assert.equal(axial.dx, 3);
    const kb = figureToHtml(fig).length / 1024;
    assert.ok(kb < 1500, `figure HTML is ${kb.toFixed(0)} kB`);
  });

  it("rejects a label on another grid, naming both shapes", () => {
    assert.throws(() => orthoSlices(ramp([4, 4, 4]), { label: boxLabel([4, 4, 5], []) }), /\[4,4,5\].*\[4,4,4\]/);
  });

  it("sliceGrid: one panel per volume on the same plane, shared window, consistent label colours", () => {
    const shape: Vec3 = [6, 8, 10];
    const image = ramp(shape);
    const truth = boxLabel(shape, [[2, [1, 4], [2, 5], [3, 7]]]);
    const pred = boxLabel(shape, [
      [2, [1, 4], [2, 6], [3, 8]],
      [1, [4, 5], [0, 2], [0, 2]],
    ]);
    const fig = sliceGrid(
      [
        { title: "image", image },
        { title: "ground truth", image, label: truth },
        { title: "prediction", image, label: pred },
      ],
      "coronal",
    );
    const heat = fig.data.filter((t) => t.type === "heatmap");
    assert.equal(heat.length, 5);
    assert.deepEqual(
      fig.layout.annotations.map((a: any) => a.text),
      ["image", "ground truth", "prediction"],
    );
    assert.equal(fig.layout.title.text, "coronal h=3"); // centroid of the first label along H
    assert.ok(heat.every((t) => t.xaxis !== undefined));
    const gray = heat.filter((t) => t.hovertemplate.includes("class") === false);
    assert.ok(gray.every((t) => t.zmin === gray[0].zmin && t.zmax === gray[0].zmax));
    const overlays = heat.filter((t) => t.hovertemplate.includes("class"));
    assert.deepEqual(overlays[0].colorscale, overlays[1].colorscale);
    assert.equal(overlays[0].zmax, 2.5);
    // coronal rows = D (6), cols = W (10)
    assert.deepEqual([heat[0].z.length, heat[0].z[0].length], [6, 10]);
    const wrapped = sliceGrid(
      [
        { title: "a", image },
        { title: "b", image },
        { title: "c", image },
      ],
      0,
      1,
      { columns: 2 },
    );
    assert.ok(wrapped.layout.yaxis3.domain[1] < wrapped.layout.yaxis.domain[0], "third panel on a second row");
  });
});
