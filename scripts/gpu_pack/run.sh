#!/usr/bin/env bash
# The kit's GPU check, for a Linux x86_64 machine with a Vulkan-capable GPU and no Node, npm or network.
# Usage: bash run.sh LOGDIR      (built by `npm run gpu:pack`; everything it needs is in this folder)
# Steps, each logged to LOGDIR and summarised on stdout (summary.txt):
#   1. the WebGPU adapter (vendor, architecture, limits);        adapter.log
#   2. the webgpu suite (the kit's test/webgpu, against cpu/wasm); suite.log
#   3. the reference training step (nnFormer, crop 64^3, embed 48) on webgpu and on wasm;  bench-tiny-*.log/json
#   4. one official Synapse-size step (64x128x128, embed 192, 150 M parameters, batch 2) on webgpu;  bench-synapse-*
#   5. a short quick study (MAE pretraining + low-label fine-tuning) on webgpu;  quick/ and quick.log
# Environment: VK_DRIVER_FILES / VK_ICD_FILENAMES pick the Vulkan driver (default: the NVIDIA ICD when found);
# GPU_PACK_STEPS_TIMEOUT (seconds per step, default 900); BENCH_STEPS (timed training steps, default 5);
# QUICK_STEPS / QUICK_PRETRAIN_STEPS (default 60 / 60), QUICK_FRACTIONS (default: the profile's 0.125,0.25,1).
# On a software adapter (lavapipe) use small values.
set -u
pack=$(cd "$(dirname "$0")" && pwd)
log=${1:?usage: bash run.sh LOGDIR}
mkdir -p "$log" && log=$(cd "$log" && pwd)
limit=${GPU_PACK_STEPS_TIMEOUT:-900}
work=$(mktemp -d)
summary="$log/summary.txt"
: >"$summary"
say() { echo "$*" | tee -a "$summary"; }

xz -dc "$pack/node.xz" >"$work/node" && chmod +x "$work/node"
tar -xJf "$pack/kit.tar.xz" -C "$work"
cd "$work"
# the Vulkan loader, unpacked beside the kit (the system is left as it is)
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1 '; then
  mkdir -p vk
  if command -v dpkg-deb >/dev/null; then dpkg-deb -x "$pack"/libvulkan1_*.deb vk; else (cd vk && ar x "$pack"/libvulkan1_*.deb && tar xf data.tar.*); fi
  export LD_LIBRARY_PATH="$work/vk/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  for j in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
    /etc/vulkan/icd.d/nvidia_icd.json; do
    [ -f "$j" ] && export VK_DRIVER_FILES=$j && break
  done
fi
export XDG_RUNTIME_DIR="$work/xdg" && mkdir -p -m 700 "$XDG_RUNTIME_DIR"
say "GPU pack $(cat VERSION) on $(uname -n), $(date -u +%FT%TZ)"
say "Vulkan driver: ${VK_DRIVER_FILES:-${VK_ICD_FILENAMES:-loader default}}"
command -v nvidia-smi >/dev/null && nvidia-smi -L 2>&1 | tee -a "$summary"

run() { # name, command...: runs with the time limit, logs, and reports the exit status
  local name=$1
  shift
  local t0=$SECONDS
  timeout "$limit" "$@" >"$log/$name.log" 2>&1
  local rc=$?
  say "[$name] exit $rc after $((SECONDS - t0)) s$([ $rc = 124 ] && echo " (time limit $limit s)")"
  return $rc
}

if ! ./node adapter.js >"$log/adapter.log" 2>&1; then
  say "$(cat "$log/adapter.log" | tail -3)"
  say "no WebGPU adapter, nothing else to run"
  exit 1
fi
say "$(grep 'WebGPU adapter' "$log/adapter.log")"

run suite env MAE_NNFORMER_BACKEND=webgpu ./node webgpu_suite.js
say "  $(grep -E '^ +[0-9]+ (passing|failing|pending)' "$log/suite.log" | tr -s ' ' | tr '\n' ' ')"

bench() { # name, backend, bench args...
  local name=$1 backend=$2
  shift 2
  run "bench-$name-$backend" env MAE_NNFORMER_BACKEND="$backend" ./node kit.js bench --ops fast \
    --out "$log/bench-$name-$backend.json" "$@"
  say "  $(grep -E "^ *(tiny|synapse|micro) +fast" "$log/bench-$name-$backend.log" | head -1)"
}
steps=${BENCH_STEPS:-5}
bench tiny webgpu --presets tiny --steps "$steps"
bench tiny wasm --presets tiny --steps "$(((steps + 1) / 2))"
if grep -q 'software fallback adapter' "$log/adapter.log"; then
  say "[bench-synapse-webgpu] skipped on a software adapter (tensors over its 128 MiB binding limit; hours of CPU)"
else
  bench synapse webgpu --presets synapse --batch 2 --steps "$(((steps + 1) / 2))"
fi

run quick env MAE_NNFORMER_BACKEND=webgpu ./node kit.js study --profile quick --out "$log/quick" \
  --steps "${QUICK_STEPS:-60}" --pretrain-steps "${QUICK_PRETRAIN_STEPS:-60}" \
  ${QUICK_FRACTIONS:+--fractions "$QUICK_FRACTIONS"}
tail -25 "$log/quick.log" | grep -E '^\|' | tee -a "$summary"
say "logs: $log"
rm -rf "$work"
