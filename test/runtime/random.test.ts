import { strict as assert } from "assert";
import { makeRng, seedFrom, shuffle, normal } from "../../src/runtime/random";

describe("runtime/random", () => {
  it("same seed gives the same stream; different seeds differ", () => {
    const a = makeRng(42),
      b = makeRng(42),
      c = makeRng(43);
    const xa = Array.from({ length: 5 }, () => a());
    const xb = Array.from({ length: 5 }, () => b());
    const xc = Array.from({ length: 5 }, () => c());
    assert.deepEqual(xa, xb);
    assert.notDeepEqual(xa, xc);
    for (const v of xa) assert.ok(v >= 0 && v < 1);
  });
  it("is pinned: the first draws of seed 1 never change across machines", () => {
    const r = makeRng(1);
    const first = [r(), r(), r()].map((v) => Math.round(v * 1e9));
    // recorded once; a change here would silently change every phantom and every split
    assert.deepEqual(first, [425649930, 790421711, 691014813]);
    assert.equal(seedFrom("case", 7), seedFrom("case", 7));
    assert.notEqual(seedFrom("case", 7), seedFrom("case", 8));
  });
  it("normal samples have roughly zero mean and unit variance", () => {
    const r = makeRng(3);
    const xs = Array.from({ length: 20000 }, () => normal(r));
    const m = xs.reduce((s, v) => s + v, 0) / xs.length;
    const v = xs.reduce((s, x) => s + (x - m) ** 2, 0) / xs.length;
    assert.ok(Math.abs(m) < 0.03 && Math.abs(v - 1) < 0.05, `${m} ${v}`);
    assert.deepEqual(shuffle(makeRng(5), [1, 2, 3, 4]).sort(), [1, 2, 3, 4]);
  });
});
