// Prints the WebGPU adapter Dawn finds (vendor, architecture, limits) and exits 0, or prints why there is none and
// exits 1. Used by scripts/test_webgpu.sh and the GPU pack's run.sh; `npx tsx scripts/webgpu_adapter.ts`.
import { describeAdapter, probeWebgpuAdapter } from "../src/runtime/webgpu";

probeWebgpuAdapter().then(
  (r) => {
    if (typeof r === "string") {
      console.log(`no WebGPU adapter: ${r}`);
      process.exit(1);
    }
    console.log(`WebGPU adapter: ${describeAdapter(r)}`);
    process.exit(0);
  },
  (e) => {
    console.log(`no WebGPU adapter: ${e instanceof Error ? e.message : e}`);
    process.exit(1);
  },
);
