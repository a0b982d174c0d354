import { strict as assert } from "assert";
import { nnFormerForwardMacs } from "../../src/models/nnformer_flops";
import { NNFORMER_ACDC, NNFORMER_SYNAPSE, NNFORMER_E48_64X64X64, NNFORMER_TUMOR } from "../../src/models/nnformer";

// MAC counts measured on the official PyTorch networks (docs/nnformer.md §1 and §3, and
// docs/wasm-fast-ops.md §7 for the 64³/embed-48 network: 7.38 GFLOP forward). The benchmark's GFLOP/s rest on these.
const G = 1e9;
const near = (got: number, want: number, tol: number, what: string) =>
  assert.ok(Math.abs(got - want) <= tol, `${what}: ${got.toFixed(3)} vs ${want}`);

describe("models/nnformer_flops", () => {
  it("Synapse: 212.7 GMAC (211.8 without the two auxiliary heads), split 96.1 / 7.9 / 103.0 / 5.7", () => {
    const m = nnFormerForwardMacs(NNFORMER_SYNAPSE);
    near(m.total / G, 212.7, 0.05, "total");
    near(nnFormerForwardMacs(NNFORMER_SYNAPSE, { deepSupervision: false }).total / G, 211.8, 0.05, "no DS");
    near(m.conv / G, 96.1, 0.05, "conv");
    near(m.convT / G, 7.9, 0.05, "convT");
    near(m.linear / G, 103.0, 0.05, "linear");
    near(m.attention / G, 5.7, 0.05, "attention");
  });
  it("ACDC 47.5 and Tumor 63.9 GMAC", () => {
    near(nnFormerForwardMacs(NNFORMER_ACDC).total / G, 47.5, 0.05, "acdc");
    near(nnFormerForwardMacs(NNFORMER_TUMOR).total / G, 63.9, 0.05, "tumor");
  });
  it("the 64³ / embed-48 benchmark network: 7.38 GFLOP forward", () => {
    near((2 * nnFormerForwardMacs({ ...NNFORMER_E48_64X64X64, numClasses: 14 }).total) / G, 7.38, 0.01, "tiny");
  });
});
