#!/usr/bin/env bash
# Installs what the tests and notebooks need beyond npm: Debian's Jupyter (nbclient) to run notebooks headlessly,
# mricron-data (real MRI volumes with label atlases), and Mesa lavapipe for the webgpu suite. Runs apt only when
# something is missing and we are root.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
/usr/bin/python3 -c "import nbclient, nbformat" 2>/dev/null || need+=(jupyter-nbconvert python3-nbclient jupyter-client jupyter-core)
[ -f /usr/share/mricron/templates/ch2.nii.gz ] || need+=(mricron-data)
/usr/bin/python3 -c "import nibabel" 2>/dev/null || need+=(python3-nibabel)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "setup: missing Debian packages: ${need[*]}" >&2
    echo "setup: install them with: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
fi

[ -d node_modules/@tensorflow/tfjs ] || npm install --no-audit --no-fund

# Mesa lavapipe (software Vulkan) for the webgpu suite, unless a Vulkan driver is configured: see scripts/lavapipe.sh.
# Not fatal: without it `npm run test:webgpu` says why and skips that suite.
if [ -z "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ] && [ -d node_modules/webgpu ]; then
  bash scripts/lavapipe.sh >/dev/null || echo "setup: no lavapipe, so the webgpu suite will be skipped (see above)" >&2
fi
exit 0
