#!/usr/bin/env bash
# speculative-moe: regenerate the README screenshot docs/images/report.png from the HTML report the
# real tool writes for the shared Mixtral traces (../shared/data). Builds the tool in release mode,
# runs `moe-routing analyze ... --output out/report-shared`, then screenshots report.html with
# headless Chromium (scripts/screenshot-report.sh installs it when missing). Idempotent.
#   scripts/regenerate-screenshots.sh [WIDTHxHEIGHT]      (default 1400x2000: summary, run, first section)
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail
cd "$(dirname "$0")/.."

size=${1:-1400x2000}
data=../shared/data
traces=("$data/mixtral_humaneval_2problems_routing.jsonl" "$data/mixtral_gsm8k_2problems_routing.jsonl")
for t in "${traces[@]}"; do
    [ -f "$t" ] || { echo "regenerate-screenshots: missing $t (the shared Mixtral traces; see ../shared/data/README.md)" >&2; exit 1; }
done

scripts/ensure-system-deps.sh
swift build -c release --product moe-routing
bin=$(swift build -c release --show-bin-path)/moe-routing
"$bin" analyze "${traces[@]}" --output out/report-shared > /dev/null
html=out/report-shared/report.html
[ -f "$html" ] || { echo "regenerate-screenshots: $bin analyze wrote no $html" >&2; exit 1; }

mkdir -p docs/images
scripts/screenshot-report.sh "$html" docs/images/report.png "$size"
echo "regenerate-screenshots: docs/images/report.png from $html ($(wc -c < "$html") bytes)"
