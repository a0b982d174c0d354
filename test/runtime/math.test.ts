import { strict as assert } from "assert";
import {
  addGaussianNoise,
  cube,
  gaussianRadius,
  lowerMedian,
  median,
  percentileSorted,
  prod,
  quantileSorted,
} from "../../src/runtime/math";
import { makeRng } from "../../src/runtime/random";

describe("runtime/math", () => {
  it("cube and prod", () => {
    assert.deepEqual(cube(4), [4, 4, 4]);
    assert.equal(prod([2, 3, 4]), 24);
    assert.equal(prod([]), 1);
  });

  it("median averages the two middle values; lowerMedian takes the lower one", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
    assert.equal(median([1, Infinity, Infinity]), Infinity);
    assert.equal(lowerMedian([4, 1, 3, 2]), 2);
    assert.equal(lowerMedian([5, 1, 3]), 3);
  });

  it("percentileSorted and quantileSorted interpolate like numpy's default", () => {
    const xs = [10, 20, 30, 40, 50];
    assert.equal(percentileSorted(xs, 0), 10);
    assert.equal(percentileSorted(xs, 100), 50);
    assert.equal(percentileSorted(xs, 95), 48); // pos 3.8: 40 + 0.8 * 10
    assert.equal(percentileSorted(Float64Array.from([1, 2]), 50), 1.5);
    assert.ok(Number.isNaN(percentileSorted([], 50)));
    assert.equal(quantileSorted(xs, 0.25), 20);
    assert.equal(quantileSorted(xs, 2), 50); // clamped
  });

  it("Box-Muller noise has the asked std, and the same seed gives the same noise", () => {
    const a = new Float32Array(20001),
      b = new Float32Array(20001);
    addGaussianNoise(a, makeRng(3), 2);
    addGaussianNoise(b, makeRng(3), 2);
    assert.deepEqual(a, b);
    const m = a.reduce((s, v) => s + v, 0) / a.length;
    const sd = Math.sqrt(a.reduce((s, v) => s + (v - m) ** 2, 0) / a.length);
    assert.ok(Math.abs(m) < 0.06, `mean ${m}`);
    assert.ok(Math.abs(sd - 2) < 0.06, `std ${sd}`);
    let calls = 0;
    const seq = [0, 1e-13, 0.5];
    assert.equal(
      gaussianRadius(() => seq[calls++]),
      Math.sqrt(-2 * Math.log(0.5)),
    );
    assert.equal(calls, 3); // redraws u <= 1e-12
  });
});
