#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv from requirements/lock.txt.
#
# Idempotent: a stamp of the lock's and pyproject's hash skips the install when nothing changed, so the README's
# commands cost seconds on the second run. Why --no-deps: the lock is the complete resolved set, and it leaves out
# escnn's optional py3nj (a Fortran build); escnn falls back to a numerical method we never need (C4 and our own
# octahedral code only). See docs/decisions.md, "Dependencies".
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
    for candidate in "${PYTHON:-}" python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    echo "equidyn needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

if [ ! -x .venv/bin/python ]; then
    py=$(pick_python)
    if ! "$py" -m venv .venv 2>/dev/null; then
        # Debian/Ubuntu ship venv separately; install it when we may.
        rm -rf .venv
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq && apt-get install -y -qq python3-venv python3.11-venv >/dev/null 2>&1 ||
                apt-get install -y -qq python3-venv >/dev/null
        else
            echo "python -m venv failed: install python3.11-venv (sudo apt-get install python3.11-venv)" >&2
            exit 1
        fi
        "$py" -m venv .venv
    fi
fi

stamp=.venv/.equidyn-installed
want=$(cat requirements/lock.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements/lock.txt
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
    .venv/bin/python -c 'import escnn.nn, phi.torch.flow, zarr, snakemake, exponax, equidyn' 2>/dev/null ||
        { echo "environment check failed: an import of escnn/phiflow/zarr/snakemake/exponax/equidyn does not work" >&2; exit 1; }
    echo "$want" >"$stamp"
fi
