#!/usr/bin/env bash
# Render a kgrec report page in headless Chromium and save a screenshot, to check that it renders.
#
#   docs/render_report.sh [RUN_DIR] [PNG] [WIDTH] [HEIGHT]
#
# RUN_DIR defaults to kgrec-out/demo (what `kgrec demo` writes); the page is (re)made with
# `kgrec report RUN_DIR` first. PNG defaults to RUN_DIR/report.png, beside the page: the tracked
# docs/report.png is only written when named as PNG. Chromium's --screenshot captures
# the window, not the whole page, so the window is WIDTHxHEIGHT (default 1280x6600, about the height of
# the demo's page with its 4 sample users). Python is $PYTHON (default: python). Needs `chromium`
# (Debian: apt-get install -y chromium).
#
# docs/report.png: `kgrec demo --out DIR` (defaults; OMP_NUM_THREADS=1), then
# `docs/render_report.sh DIR docs/report.png`.
set -euo pipefail
run_dir="${1:-kgrec-out/demo}"
png="${2:-$run_dir/report.png}"
width="${3:-1280}"
height="${4:-6600}"
python="${PYTHON:-python}"
"$python" -m kgrec report "$run_dir"
page="$(cd "$run_dir" && pwd)/report.html"
chrome="$(command -v chromium || command -v chromium-browser || command -v google-chrome)"
# no network is used: the page embeds everything; --no-sandbox is needed when running as root
"$chrome" --headless --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1 \
  --window-size="${width},${height}" --screenshot="$(realpath -m "$png")" "file://$page" 2>/dev/null
echo "wrote $png from $page"
