#!/usr/bin/env bash
# scripts/nb_screenshot.sh [HTML...]: screenshot the static notebook copies (default docs/notebooks/*.html) in headless
# Chromium with the network cut off (every request goes to a dead proxy), so a page that needs anything online shows
# it. Writes build/nb-screens/<name>.png and prints, per page, the share of non-white pixels in the screenshot and in
# its lower half (a page whose figures failed to load is mostly white below the first cells). Exits 1 when a
# screenshot is missing or nearly blank.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/build/nb-screens"
mkdir -p "$OUT"

BROWSER=""
for b in chromium-headless-shell chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then BROWSER="$(command -v "$b")"; break; fi
done
if [ -z "$BROWSER" ]; then
  echo "nb_screenshot: no headless Chromium; install one: apt-get install chromium-headless-shell" >&2
  exit 1
fi

if [ "$#" -gt 0 ]; then pages=("$@"); else pages=("$ROOT"/docs/notebooks/*.html); fi
status=0
for page in "${pages[@]}"; do
  name="$(basename "$page" .html)"
  shot="$OUT/$name.png"
  rm -f "$shot"
  "$BROWSER" --headless --no-sandbox --disable-gpu --hide-scrollbars --proxy-server=127.0.0.1:9 \
    --window-size=1100,2400 --virtual-time-budget=10000 --screenshot="$shot" "file://$(cd "$(dirname "$page")" && pwd)/$(basename "$page")" \
    >/dev/null 2>&1 || true
  if [ ! -s "$shot" ]; then
    echo "MISSING $name: no screenshot written" >&2
    status=1
    continue
  fi
  /usr/bin/python3 - "$shot" "$name" <<'EOF' || status=1
import sys
from PIL import Image
shot, name = sys.argv[1], sys.argv[2]
img = Image.open(shot).convert("L")
w, h = img.size
def ink(box):
    part = img.crop(box)
    px = part.getdata()
    return sum(1 for v in px if v < 235) / max(1, len(px))
whole, lower = ink((0, 0, w, h)), ink((0, h // 2, w, h))
ok = whole > 0.02 and lower > 0.01
print(f"{'ok' if ok else 'BLANK?'} {name}: {w}x{h}, non-white {whole:.1%} (lower half {lower:.1%}) -> {shot}")
sys.exit(0 if ok else 1)
EOF
done
exit $status
