#!/usr/bin/env bash
# The webgpu suite (test/webgpu/): the kit on TensorFlow.js's webgpu backend, checked against cpu/wasm, in its own
# mocha process with MAE_NNFORMER_BACKEND=webgpu. Uses the Vulkan driver given by VK_ICD_FILENAMES/VK_DRIVER_FILES,
# else the system's, else Mesa lavapipe (software) from build/lavapipe (scripts/lavapipe.sh, needs root the first
# time). When no adapter can be had it says why and skips the suite, loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}" # only silences the Vulkan loader's warnings
tsx=node_modules/.bin/tsx
skip() {
  echo "================================================================================" >&2
  echo "webgpu suite SKIPPED: $1" >&2
  echo "================================================================================" >&2
  exit 0
}
if ! probe=$($tsx scripts/webgpu_adapter.ts 2>/dev/null); then
  if [ -n "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ]; then
    skip "the Vulkan driver set in VK_ICD_FILENAMES/VK_DRIVER_FILES gives no adapter (${probe})"
  fi
  if ! icd=$(bash scripts/lavapipe.sh 2>build/lavapipe.err); then
    skip "${probe}; lavapipe could not be installed: $(cat build/lavapipe.err)"
  fi
  export VK_ICD_FILENAMES="$icd"
  probe=$($tsx scripts/webgpu_adapter.ts 2>/dev/null) || skip "lavapipe is installed but gives no adapter (${probe})"
fi
echo "webgpu suite on ${probe#WebGPU adapter: }"
MAE_NNFORMER_BACKEND=webgpu exec node_modules/.bin/mocha --require tsx/cjs --timeout 300000 'test/webgpu/**/*.test.ts'
