// Correct results or a loud failure: a webgpu kernel whose shader does not compile must stop the run, naming the
// kernel, instead of training on zeros.
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { backendReport, describeBackend } from "../../src/runtime/backend";
import { startWebgpu, webgpuAdapter } from "../../src/runtime/webgpu";
import { startWebgpuSuite } from "./helpers";

describe("webgpu/GPU error guard", () => {
  before(startWebgpuSuite);

  it("a deliberately broken kernel makes a training run fail, naming the kernel", function () {
    this.timeout(120000);
    // from the sources: tsx runs the fixture; in the GPU pack (one bundled file) it is bundled beside the suite
    const root = path.resolve(__dirname, "../..");
    const [cmd, args] = __filename.endsWith(".ts")
      ? [path.join(root, "node_modules/.bin/tsx"), [path.join(__dirname, "fixtures/broken_kernel.ts")]]
      : [process.execPath, [path.join(__dirname, "broken_kernel.js")]];
    const r = spawnSync(cmd, args, { env: process.env, encoding: "utf8", timeout: 110000 });
    const out = `${r.stdout}\n${r.stderr}`;
    assert.equal(r.status, 3, `expected the run to fail (exit 3), got ${r.status}:\n${out}`);
    assert.match(r.stderr, /run failed: WebgpuValidationError: .*First: kernel Softplus/, out);
    assert.doesNotMatch(r.stdout, /trained/, out);
  });

  it("the backend report names the adapter and its limits; a software adapter is used only when forced", async () => {
    const r = backendReport()!;
    assert.equal(r.name, "webgpu");
    assert.equal(r.forced, true);
    const a = webgpuAdapter()!;
    assert.deepEqual(r.adapter, a);
    assert.ok(a.limits.maxStorageBufferBindingSize > 0 && a.limits.maxBufferSize > 0, JSON.stringify(a));
    const line = describeBackend(r);
    assert.match(
      line,
      /^backend webgpu on .*vendor .*maxStorageBufferBindingSize \d+ MiB.*forced by MAE_NNFORMER_BACKEND/,
    );
    if (a.isFallbackAdapter) {
      const unforced = await startWebgpu(false);
      assert.equal(typeof unforced, "string");
      assert.match(unforced as string, /only a software adapter .* MAE_NNFORMER_BACKEND=webgpu uses it anyway/);
    }
  });

  it("dataSync on a GPU tensor says to use await data()", () => {
    const t = tf.tidy(() => tf.add(tf.ones([2000]), 1));
    assert.throws(() => t.dataSync(), /read it with `await tensor.data\(\)`/);
    t.dispose();
  });
});
