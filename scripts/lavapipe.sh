#!/usr/bin/env bash
# Mesa's lavapipe (a software Vulkan driver) for the webgpu tests on a machine without a GPU.
# Debian 12's own lavapipe (mesa 22.3) lacks features Dawn requires, so the driver library is taken from
# bookworm-backports (mesa 25) and unpacked under build/lavapipe/ with its own ICD file; the system's apt sources
# and Mesa stay as they are (apt runs with a private sources list and state directory). Needs root for libvulkan1.
# Usage: scripts/lavapipe.sh        prints the ICD file path on the last line (exit 0), or why it cannot (exit 1)
set -euo pipefail
cd "$(dirname "$0")/.."
dest="$PWD/build/lavapipe"
icd="$dest/lvp_icd.json"
lib="$dest/root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so"

if [ -f "$icd" ] && [ -f "$lib" ] && ldconfig -p | grep -q 'libvulkan.so.1 '; then
  echo "$icd"
  exit 0
fi
if [ "$(uname -m)" != x86_64 ] || ! grep -qs '^VERSION_CODENAME=bookworm' /etc/os-release; then
  echo "lavapipe: this script knows Debian 12 (bookworm) x86_64 only; install a Vulkan driver yourself" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "lavapipe: not root (or no apt-get), cannot install libvulkan1 and the bookworm-backports lavapipe" >&2
  exit 1
fi
if ! ldconfig -p | grep -q 'libvulkan.so.1 '; then
  echo "lavapipe: installing libvulkan1 (the Vulkan loader)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libvulkan1 >/dev/null
fi
work="$dest/apt"
rm -rf "$work" "$dest/root"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$dest/root"
echo 'deb http://deb.debian.org/debian bookworm-backports main' >"$work/sources.list"
opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root)
echo "lavapipe: fetching mesa-vulkan-drivers from bookworm-backports" >&2
apt-get "${opts[@]}" update -qq
(cd "$work" && apt-get "${opts[@]}" download -qq mesa-vulkan-drivers/bookworm-backports)
dpkg -x "$work"/mesa-vulkan-drivers_*.deb "$dest/root"
[ -f "$lib" ] || {
  echo "lavapipe: $lib missing from the downloaded package" >&2
  exit 1
}
printf '{"file_format_version":"1.0.0","ICD":{"api_version":"1.4.305","library_path":"%s"}}\n' "$lib" >"$icd.tmp"
mv "$icd.tmp" "$icd"
find "$dest/root" -type f -name "libvulkan_*.so" ! -name libvulkan_lvp.so -delete
rm -rf "$work"
echo "$icd"
