#!/usr/bin/env bash
# speculative-moe: the README's main job. Installs what it needs (Debian packages; the Python venv
# once in-process capture is in), builds the tool in release mode and runs a collect-and-analyze
# job on the built-in default, writing a report under out/. Idempotent.
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-system-deps.sh
swift build -c release --product moe-routing
bin=$(swift build -c release --show-bin-path)/moe-routing

"$bin" demo --output out/demo "$@"
if [ -d ../shared/data ]; then
    "$bin" analyze ../shared/data/mixtral_humaneval_2problems_routing.jsonl \
        ../shared/data/mixtral_gsm8k_2problems_routing.jsonl --output out/mixtral-shared-data > /dev/null
fi
echo "reports: out/demo/report.md$( [ -d ../shared/data ] && echo ', out/mixtral-shared-data/report.md')"
