// fastOps: Ops with hand-written gradients in formulations that reach XNNPACK on tfjs-wasm
// (docs/wasm-fast-ops.md). One file per block under ./fast/. Values and gradients match plainOps within
// float tolerance on every backend (tests: test/layers/fast_ops.test.ts).
import { Ops } from "./ops";
import { plainOps } from "./plain_ops";
import { fastConv3d } from "./fast/conv3d";
import { fastConvTranspose3d } from "./fast/conv_transpose3d";
import { fastWindowAttention } from "./fast/attention";
import { fastGatherRows } from "./fast/gather_rows";
import { fastLinear } from "./fast/linear";
import { fastGelu, fastLayerNorm } from "./fast/norm_act";
import { fastRoll } from "./fast/roll";
import { instanceNormAct } from "./conv_blocks3d";
import { webgpuOps } from "./webgpu_ops";

export { disposeCachedConstants } from "./fast/common";

/** Custom-gradient ops: the choice on wasm and cpu. */
export const fastOps: Ops = {
  name: "fast",
  instanceNormAct: (x, gamma, beta, act) => instanceNormAct(x, gamma, beta, act),
  linear: fastLinear,
  conv3d: (x, w, b, spec) => fastConv3d(x, w, b, spec),
  convTranspose3d: fastConvTranspose3d,
  windowAttention: fastWindowAttention,
  gatherRows: (table, index) => fastGatherRows(table, index),
  layerNorm: fastLayerNorm,
  gelu: fastGelu,
  roll: fastRoll,
};

export const OPS_ENV = "MAE_NNFORMER_OPS";

/**
 * The ops for a backend: fast on wasm and cpu, plain on tensorflow (native conv3d / matMul are already fast there),
 * fast with batched-matMul attention on webgpu (webgpu_ops.ts). MAE_NNFORMER_OPS=plain|fast overrides.
 */
export function selectOps(backendName: string): Ops {
  const forced = process.env[OPS_ENV]?.trim();
  if (forced === "plain") return plainOps;
  if (forced === "fast") return backendName === "webgpu" ? webgpuOps : fastOps;
  if (forced) throw new Error(`${OPS_ENV}=${forced} is not an ops set; use plain or fast, or unset it`);
  if (backendName === "webgpu") return webgpuOps;
  return backendName === "tensorflow" ? plainOps : fastOps;
}
