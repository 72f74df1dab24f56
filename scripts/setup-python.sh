#!/usr/bin/env bash
# speculative-moe
# SPDX-License-Identifier: Apache-2.0
#
# Creates or updates the checkout's Python venv. A thin entry point: the set-up logic is
# Sources/MoERoutingEnvironment/setup/setup-python.sh, the copy that also ships with
# `moe-routing` as a resource (`moe-routing setup` runs it). From a checkout the default venv is
# $MOE_ROUTING_VENV, else <repo>/.venv; every option is passed through (try --help).

set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# A later --venv in "$@" wins over this default: the script keeps the last one.
exec bash "$repo_root/Sources/MoERoutingEnvironment/setup/setup-python.sh" \
    --venv "${MOE_ROUTING_VENV:-$repo_root/.venv}" "$@"
