#!/usr/bin/env bash
# speculative-moe: the README's test command. Installs what the tests need (Debian packages, the
# project's Python venv), lints the formatting, builds with warnings as errors, and runs every
# test. Idempotent.
#
# In CI (CI=true) it also sets MOE_ROUTING_REQUIRE_PYTHON=1, so a missing or broken venv,
# interpreter or vLLM fails the Python and capture suites instead of skipping them, and it fails
# when any test was skipped. Everywhere it fails when the test runner's own summary line is
# missing, says a failure, or counts zero tests.
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail
cd "$(dirname "$0")/.."

ci=0
if [ "${CI:-}" = "true" ]; then
    ci=1
    export MOE_ROUTING_REQUIRE_PYTHON=1
fi

scripts/ensure-system-deps.sh chromium   # chromium: the report screenshot check
if [ -x scripts/setup-python.sh ]; then
    scripts/setup-python.sh
fi

# Formatting: swift-format (from the toolchain) with .swift-format; a finding fails the run with
# the file, line and rule. `scripts/format.sh` fixes what the formatter can.
echo "== swift format lint --strict"
scripts/format.sh --lint

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# -warnings-as-errors: the compiler refuses any warning in the project's own files (dependencies'
# warnings are suppressed by SwiftPM), whatever an incremental build recompiles or not.
echo "== swift build (debug, with tests, warnings are errors)"
swift build --build-tests -Xswiftc -warnings-as-errors

echo "== swift test"
status=0
swift test --skip-build 2>&1 | tee "$log" || status=$?

# Swift Testing's closing line, e.g. "✔ Test run with 359 tests in 66 suites passed after 240.1 seconds."
summary=$(grep -E "^[^ ]+ Test run with [0-9]+ tests? in [0-9]+ suites? (passed|failed)" "$log" | tail -1 || true)
if [ -z "$summary" ]; then
    echo "test.sh: the test runner printed no summary line (Test run with N tests ... passed)" >&2
    exit 1
fi
count=$(sed -E 's/^[^ ]+ Test run with ([0-9]+) tests?.*/\1/' <<<"$summary")
if [ "$status" -ne 0 ] || ! grep -q " passed after " <<<"$summary"; then
    echo "test.sh: tests failed: $summary" >&2
    exit 1
fi
if [ "$count" -eq 0 ]; then
    echo "test.sh: zero tests ran" >&2
    exit 1
fi
skipped=$(grep -cE "^[^ ]+ (Test|Suite) .* skipped" "$log" || true)
if [ "$ci" -eq 1 ] && [ "$skipped" -gt 0 ]; then
    grep -E "^[^ ]+ (Test|Suite) .* skipped" "$log" >&2
    echo "test.sh: $skipped tests or suites were skipped in CI (listed above); CI runs every test" >&2
    exit 1
fi
echo "test.sh: $count tests passed, $skipped skipped"
