#!/usr/bin/env bash
# speculative-moe: fail when a build log holds compiler warnings about the project's own files.
# Usage: scripts/check-warnings.sh BUILD_LOG
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if grep -E "^$root/(Sources|Plugins|Tests|Benchmarks|examples)/[^:]+:[0-9]+:[0-9]+: warning:" "$1" | sort -u | tee /dev/stderr | grep -q .; then
    echo "check-warnings: the build has warnings (listed above); the project builds with zero warnings" >&2
    exit 1
fi
