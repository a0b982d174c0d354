import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { initBackend, describeBackend, BACKEND_ENV } from "../../src/runtime/backend";

describe("runtime/backend", () => {
  it("picks a working backend and says why better ones were skipped", async () => {
    const r = await initBackend();
    assert.equal(tf.getBackend(), r.name);
    if (!process.env[BACKEND_ENV]) {
      // without tfjs-node installed the kit must fall back to wasm, naming what it tried
      if (r.name !== "tensorflow") {
        assert.equal(r.name, "wasm");
        assert.ok(
          r.skipped.some((s) => s.includes("@tensorflow/tfjs-node")),
          describeBackend(r),
        );
      }
    }
    const y = tf.tidy(() => tf.matMul(tf.ones([4, 3]), tf.ones([3, 2])).dataSync());
    assert.deepEqual(Array.from(y), [3, 3, 3, 3, 3, 3, 3, 3]);
  });

  it("the patched wasm Slice gives the same result as a reference slice", async () => {
    await initBackend();
    const x = tf.range(0, 2 * 3 * 4 * 5).reshape([2, 3, 4, 5]);
    const s = tf.slice(x, [1, 0, 1, 2], [1, 3, 2, 3]);
    const ref: number[] = [];
    for (let b = 1; b < 2; b++)
      for (let i = 0; i < 3; i++)
        for (let j = 1; j < 3; j++) for (let k = 2; k < 5; k++) ref.push(((b * 3 + i) * 4 + j) * 5 + k);
    assert.deepEqual(Array.from(s.dataSync()), ref);
    tf.dispose([x, s]);
  });
});
