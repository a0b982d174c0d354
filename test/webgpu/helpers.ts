// Shared by the webgpu suite (npm run test:webgpu, one mocha process with MAE_NNFORMER_BACKEND=webgpu).
// Results are compared across backends as plain arrays; on webgpu every read is `await data()`.
import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { BACKEND_ENV, initBackend } from "../../src/runtime/backend";
import { webgpuErrors } from "../../src/runtime/webgpu";
import { Input, relErr, valueAndGradTensors } from "../layers/grad_check";

/** Start the kit on webgpu, or fail saying how the suite is meant to run. */
export async function startWebgpuSuite(): Promise<void> {
  if (process.env[BACKEND_ENV] !== "webgpu")
    throw new Error(`the webgpu suite runs with ${BACKEND_ENV}=webgpu: use npm run test:webgpu`);
  const r = await initBackend();
  assert.equal(r.name, "webgpu");
  // tfjs-webgpu runs ops on tensors under 1000 elements whose data is still on the host on the CPU; the suite's
  // micro tensors must reach the GPU kernels
  tf.env().set("WEBGPU_CPU_FORWARD", false);
  assert.equal(tf.getBackend(), "webgpu");
}

/** No GPU error may have been reported by Dawn (they make results silently wrong). */
export function assertNoGpuErrors(label: string): void {
  const errs = webgpuErrors();
  assert.equal(errs.length, 0, `${label}: GPU errors: ${errs.map((e) => `${e.kernel}: ${e.message}`).join(" | ")}`);
}

/** Run fn on `name` (tensors read with await data()), then return to webgpu. */
export async function runOn(name: string, fn: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(name);
  try {
    const outs = tf.tidy(fn);
    const arrays = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
    tf.dispose(outs);
    return arrays;
  } finally {
    await tf.setBackend("webgpu");
  }
}

/**
 * f's value and gradients on webgpu and refF's (default f) on `ref` (default cpu) agree within tol (relative to
 * max |ref|); `skip` lists outputs not compared (0 = value, 1 = first gradient, ...).
 */
export async function assertMatchesBackend(
  label: string,
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: Input[],
  tol = 1e-4,
  ref = "cpu",
  skip: number[] = [],
  refF = f,
): Promise<void> {
  const want = await runOn(ref, () => valueAndGradTensors(refF, inputs));
  const got = await runOn("webgpu", () => valueAndGradTensors(f, inputs));
  assertNoGpuErrors(label);
  assert.equal(got.length, want.length);
  got.forEach((g, i) => {
    if (skip.includes(i)) return;
    const e = relErr(g, want[i]);
    assert.ok(e <= tol, `${label}: ${i === 0 ? "value" : `grad ${i - 1}`} rel err ${e.toExponential(2)} > ${tol}`);
  });
}
