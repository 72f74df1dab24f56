#!/usr/bin/env bash
# speculative-moe: install the Debian packages the build needs, only when missing (idempotent).
# A thin entry point: the logic is Sources/MoERoutingEnvironment/setup/ensure-system-deps.sh,
# the copy that ships with `moe-routing` (its set-up script runs it too). Extra packages can be
# named as arguments (e.g. chromium for the report screenshot check).
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail

exec bash "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/Sources/MoERoutingEnvironment/setup/ensure-system-deps.sh" "$@"
