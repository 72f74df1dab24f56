#!/usr/bin/env bash
# speculative-moe: formats every Swift file with the toolchain's swift-format (configuration:
# .swift-format, copied from swift-log's), then lints them strictly. `--lint` only lints (what
# scripts/test.sh runs); a lint finding fails with the file, line and rule.
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail
cd "$(dirname "$0")/.."

files() { git ls-files -z '*.swift'; }
if [ "${1:-}" != "--lint" ]; then
    echo "== swift format (in place)"
    files | xargs -0 swift format format --parallel --in-place
fi
echo "== swift format lint --strict"
files | xargs -0 swift format lint --strict --parallel
