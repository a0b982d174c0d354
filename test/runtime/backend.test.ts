import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { initBackend, describeBackend, BACKEND_ENV, BACKEND_ORDER } from "../../src/runtime/backend";
import { describeAdapter, missingVulkanDriver } from "../../src/runtime/webgpu";

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

describe("runtime/backend: webgpu in the order", () => {
  it("is tried after tensorflow and before wasm, and says why it was skipped", async () => {
    assert.deepEqual(BACKEND_ORDER, ["tensorflow", "webgpu", "wasm", "cpu"]);
    const r = await initBackend();
    if (process.env[BACKEND_ENV] || r.name === "tensorflow" || r.name === "webgpu") return;
    const line = r.skipped.find((s) => s.startsWith("webgpu: "));
    assert.ok(line, describeBackend(r));
    const noDriver = missingVulkanDriver();
    if (noDriver) assert.equal(line, `webgpu: ${noDriver}`);
  });

  it("describeAdapter gives the device, vendor, architecture, fallback flag and limits in MiB", () => {
    const line = describeAdapter({
      vendor: "nvidia",
      architecture: "hopper",
      device: "NVIDIA H200",
      description: "",
      isFallbackAdapter: false,
      limits: { maxStorageBufferBindingSize: 4294967292, maxComputeInvocationsPerWorkgroup: 1024 },
    });
    assert.equal(
      line,
      "NVIDIA H200; vendor nvidia, architecture hopper; maxStorageBufferBindingSize 4096 MiB, maxComputeInvocationsPerWorkgroup 1024",
    );
  });

  it("an unknown MAE_NNFORMER_BACKEND value is refused, listing webgpu", async () => {
    const { spawnSync } = await import("child_process");
    const r = spawnSync(
      "node_modules/.bin/tsx",
      [
        "-e",
        'require("./src/runtime/backend").initBackend().catch((e) => { console.error(e.message); process.exit(2); })',
      ],
      { env: { ...process.env, [BACKEND_ENV]: "cuda" }, encoding: "utf8" },
    );
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /MAE_NNFORMER_BACKEND=cuda is not a backend; use one of tensorflow, webgpu, wasm, cpu/);
  });
});
