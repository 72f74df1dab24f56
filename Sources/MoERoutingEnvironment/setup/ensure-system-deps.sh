#!/usr/bin/env bash
# speculative-moe: install the Debian packages the build needs, only when missing (idempotent).
# Canonical copy: ships with moe-routing beside setup-python.sh, which runs it; the checkout's
# scripts/ensure-system-deps.sh execs it.
#   python3-dev  libpython3 + headers + pkg-config file python3-embed (the embedded CPython)
#   python3-venv /usr/bin/python3 -m venv
#   pkg-config   SwiftPM finds libpython through it
# Extra packages can be named as arguments (e.g. chromium for the report screenshot check).
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail

wanted=(python3-dev python3-venv pkg-config "$@")
if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "ensure-system-deps: not a Debian system (no dpkg-query): make sure these are installed: ${wanted[*]}"
    exit 0
fi
missing=()
for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "ensure-system-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "ensure-system-deps: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
