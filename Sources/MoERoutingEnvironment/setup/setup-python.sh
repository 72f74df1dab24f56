#!/usr/bin/env bash
# speculative-moe
# SPDX-License-Identifier: Apache-2.0
#
# Creates or updates moe-routing's managed Python environment: a venv made by Debian's
# /usr/bin/python3 (the interpreter whose libpython the Swift host embeds), with the pinned
# packages of requirements-cpu.txt (default) or requirements-gpu.txt (--gpu) beside this script.
#
# Idempotent: a second run checks the Debian packages, finds the venv, sees that the stamp
# file in the venv matches the requirements and the Python version, checks that torch and
# vllm import, and changes nothing.
#
# Usage: setup-python.sh [--venv PATH] [--gpu] [--force] [--skip-verify]
#   --venv PATH     where the venv lives (default: $MOE_ROUTING_VENV, else
#                   ${XDG_DATA_HOME:-$HOME/.local/share}/speculative-moe/venv; from a checkout
#                   scripts/setup-python.sh makes it <repo>/.venv; the last --venv wins)
#   --gpu           install the CUDA build of vLLM (requirements-gpu.txt)
#   --force         run pip even when the stamp says the venv is up to date
#   --skip-verify   do not import torch and vllm at the end (the stamp is then not written)
# Environment: MOE_ROUTING_VENV (venv path), MOE_ROUTING_BASE_PYTHON (default /usr/bin/python3;
# it must be the interpreter whose libpython the Swift build links), and pip's own variables
# (PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS) for where torch comes from.
#
# This file is canonical: it lives in Sources/MoERoutingEnvironment/setup/ and ships with
# moe-routing as a resource (`moe-routing setup` runs it); scripts/setup-python.sh execs it.

set -euo pipefail

log() { printf '[setup-python] %s\n' "$*"; }
fail() {
    printf '[setup-python] error: %s\n' "$*" >&2
    exit 1
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${MOE_ROUTING_VENV:-}"
base_python="${MOE_ROUTING_BASE_PYTHON:-/usr/bin/python3}"
mode="cpu"
force=0
verify=1

while [[ $# -gt 0 ]]; do
    case "$1" in
        --venv)
            [[ $# -ge 2 && -n "$2" ]] || fail "--venv needs a path"
            venv="$2"
            shift 2
            ;;
        --venv=*)
            venv="${1#--venv=}"
            shift
            ;;
        --gpu)
            mode="gpu"
            shift
            ;;
        --force)
            force=1
            shift
            ;;
        --skip-verify)
            verify=0
            shift
            ;;
        -h | --help)
            sed -n '5,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) fail "unknown argument '$1' (try --help)" ;;
    esac
done

# The per-user default (the one `moe-routing` looks for last): XDG_DATA_HOME when it is an
# absolute path, else ~/.local/share.
if [[ -z "$venv" ]]; then
    data_home="${XDG_DATA_HOME:-}"
    if [[ "$data_home" != /* ]]; then
        [[ -n "${HOME:-}" ]] || fail "neither HOME nor XDG_DATA_HOME is set: pass --venv PATH"
        data_home="$HOME/.local/share"
    fi
    venv="$data_home/speculative-moe/venv"
fi

# An absolute venv path, so that the stamp and the messages are unambiguous.
case "$venv" in
    /*) ;;
    *) venv="$PWD/$venv" ;;
esac
requirements="$here/requirements-$mode.txt"
[[ -f "$requirements" ]] || fail "missing $requirements"

log "venv: $venv"
log "requirements: $requirements ($mode)"

# MARK: - 1. Debian packages (headers and libpython for the Swift build, venv support).

# The same check and install as the build's (scripts/ensure-system-deps.sh execs this copy).
bash "$here/ensure-system-deps.sh" || fail "the Debian packages python3-dev python3-venv pkg-config are missing (see above)"
log "Debian packages present: python3-dev python3-venv pkg-config"

[[ -x "$base_python" ]] || fail "$base_python not found (set MOE_ROUTING_BASE_PYTHON to the Python whose libpython the Swift build links)"
base_version="$("$base_python" -c 'import platform; print(platform.python_version())')"
log "base interpreter: $base_python (Python $base_version)"

# MARK: - 2. The venv.

venv_version() {
    sed -n 's/^version[[:space:]]*=[[:space:]]*//p' "$venv/pyvenv.cfg" 2> /dev/null | head -n 1 | tr -d '[:space:]'
}

if [[ -x "$venv/bin/python" && -f "$venv/pyvenv.cfg" ]]; then
    existing="$(venv_version)"
    if [[ "$existing" != "$base_version" ]]; then
        fail "$venv was made by Python ${existing:-unknown}, not $base_python ($base_version); remove it (rm -rf '$venv') and rerun"
    fi
    log "venv exists (Python $existing)"
elif [[ -e "$venv" && -n "$(ls -A "$venv" 2> /dev/null)" ]]; then
    fail "$venv exists but is not a venv (no bin/python or pyvenv.cfg); remove it or pass --venv PATH"
else
    log "creating venv: $base_python -m venv $venv"
    "$base_python" -m venv "$venv"
fi
python="$venv/bin/python"

# MARK: - 3. Packages (skipped when the stamp matches).

stamp_file="$venv/.moe-routing-requirements.stamp"
stamp="$(
    {
        printf 'mode=%s\npython=%s\n' "$mode" "$base_version"
        cat "$requirements"
    } | sha256sum | cut -d' ' -f1
)"

verify_imports() {
    # Prints the versions; exits non-zero when torch or vllm cannot be imported.
    "$python" - "$mode" << 'PY'
import sys
mode = sys.argv[1]
import torch
print(f"[setup-python] torch {torch.__version__} (cuda build: {torch.version.cuda or 'no'})", flush=True)
import vllm
print(f"[setup-python] vllm {vllm.__version__}", flush=True)
if mode == "gpu" and not torch.version.cuda:
    sys.exit("[setup-python] error: torch is a CPU build but --gpu was asked for: pip may have "
             "taken it from a local wheel directory; rerun with PIP_FIND_LINKS= PIP_CONFIG_FILE=/dev/null --force")
PY
}

if [[ $force -eq 0 && -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]]; then
    log "requirements unchanged since the last install (stamp matches)"
    if [[ $verify -eq 0 ]]; then
        log "done: nothing to change"
        exit 0
    fi
    log "verifying: import torch, vllm"
    if verify_imports; then
        log "done: nothing to change"
        exit 0
    fi
    log "the import check failed although the stamp matches: reinstalling"
fi

rm -f "$stamp_file"
if ! "$python" -m pip --version > /dev/null 2>&1; then
    log "the venv has no pip (made with --without-pip?): $python -m ensurepip"
    "$python" -m ensurepip --default-pip
fi
log "installing: $python -m pip install -r $requirements"
"$python" -m pip install --disable-pip-version-check -r "$requirements"

# CUDA builds of these come with vLLM and break imports: torchvision breaks transformers'
# Mixtral import, torchcodec breaks `from vllm import LLM` on CPU; triton is unused on CPU.
unwanted=(torchvision torchaudio torchcodec)
if [[ "$mode" == "cpu" ]]; then unwanted+=(triton); fi
present=()
for package in "${unwanted[@]}"; do
    if "$python" -m pip show --disable-pip-version-check -q "$package" > /dev/null 2>&1; then
        present+=("$package")
    fi
done
if [[ ${#present[@]} -gt 0 ]]; then
    log "uninstalling: ${present[*]}"
    "$python" -m pip uninstall --disable-pip-version-check -y "${present[@]}"
else
    log "nothing to uninstall (${unwanted[*]} absent)"
fi

# MARK: - 4. Verify, then write the stamp.

if [[ $verify -eq 1 ]]; then
    log "verifying: import torch, vllm"
    verify_imports || fail "torch or vllm does not import in $venv (see the traceback above)"
    printf '%s\n' "$stamp" > "$stamp_file"
    log "stamp written: $stamp_file"
else
    log "verification skipped (--skip-verify): no stamp written"
fi
log "done: $venv is ready"
