#!/usr/bin/env bash
# speculative-moe: render an HTML report to a PNG with headless Chromium, to look at it as a person
# would (and for the README screenshot).
#   scripts/screenshot-report.sh REPORT.html OUT.png [WIDTHxHEIGHT]     (default 1400x4000)
# The screenshot is the top WIDTH x HEIGHT pixels of the page. Installs the Debian package chromium
# through scripts/ensure-system-deps.sh when no Chromium is on PATH. The report is self-contained,
# so nothing but the file itself is loaded.
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail

usage() {
    echo "usage: scripts/screenshot-report.sh REPORT.html OUT.png [WIDTHxHEIGHT]" >&2
    exit 2
}
[ $# -ge 2 ] && [ $# -le 3 ] || usage
html=$1
png=$2
size=${3:-1400x4000}
if ! [[ $size =~ ^([0-9]{2,5})x([0-9]{2,5})$ ]]; then
    echo "screenshot-report: size '$size' is not WIDTHxHEIGHT (for example 1400x4000)" >&2
    exit 2
fi
width=${BASH_REMATCH[1]}
height=${BASH_REMATCH[2]}
[ -f "$html" ] || { echo "screenshot-report: no such file: $html" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
find_browser() { command -v chromium || command -v chromium-browser || command -v google-chrome || true; }
browser=$(find_browser)
if [ -z "$browser" ]; then
    "$here/ensure-system-deps.sh" chromium
    browser=$(find_browser)
fi
[ -n "$browser" ] || { echo "screenshot-report: chromium is not on PATH (install the Debian package chromium)" >&2; exit 1; }

abs_html=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
mkdir -p "$(dirname "$png")"
abs_png=$(cd "$(dirname "$png")" && pwd)/$(basename "$png")
# A file:// URL: escape the characters that would end or confuse the path.
url="file://$(printf '%s' "$abs_html" | sed -e 's/%/%25/g' -e 's/ /%20/g' -e 's/#/%23/g' -e 's/?/%3F/g')"

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
rm -f "$abs_png"
# --no-sandbox: Chromium refuses to run as root otherwise (containers, CI).
if ! timeout 180 "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars \
    --no-first-run --no-default-browser-check --disable-extensions --force-device-scale-factor=1 \
    --user-data-dir="$profile" --window-size="$width,$height" --screenshot="$abs_png" "$url" \
    >"$profile/chromium.log" 2>&1; then
    echo "screenshot-report: chromium failed; its output:" >&2
    cat "$profile/chromium.log" >&2
    exit 1
fi
if [ ! -s "$abs_png" ]; then
    echo "screenshot-report: chromium wrote no screenshot; its output:" >&2
    cat "$profile/chromium.log" >&2
    exit 1
fi
echo "screenshot-report: wrote $png (${width}x${height})"
