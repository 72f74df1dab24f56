#!/usr/bin/env bash
# speculative-moe: the README's test command. Installs what the tests need (Debian packages, the
# project's Python venv), builds with zero warnings, and runs every test. Idempotent.
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-system-deps.sh chromium   # chromium: the report screenshot check
if [ -x scripts/setup-python.sh ]; then
    scripts/setup-python.sh
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "== swift build (debug, with tests)"
swift build --build-tests 2>&1 | tee "$log"
scripts/check-warnings.sh "$log"

echo "== swift test"
swift test --skip-build 2>&1 | tee "$log"
grep -Eq "Test run with [0-9]+ tests? .*passed|Executed [0-9]+ tests?, with 0 failures" "$log" || {
    echo "test.sh: no passing test run found in the output" >&2
    exit 1
}
