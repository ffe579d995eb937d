#!/usr/bin/env bash
# The paper-scale execution check (issue 14): every rule of the paper configuration at paper shapes, truncated work
# (config/paper_check.yaml), on this machine's CPUs, one job at a time; the superres data job once more with the
# JHTDB source against a loopback service (scripts/paper_check_jhtdb.py); then the table of each job's time and
# peak memory with the suggested cluster requests (python -m equidyn.paper_check).
#
#   bash scripts/paper_check.sh [WORKDIR] [extra snakemake arguments...]
#
# WORKDIR (default: the repository) receives results/paper_check/; the table is written to
# WORKDIR/results/paper_check/paper_check.md. Runs niced. Exit status: the workflow's.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORKDIR=${1:-$ROOT}
shift $(( $# > 0 ? 1 : 0 ))
PY=${PYTHON:-$ROOT/.venv/bin/python}
export PATH="$(dirname "$PY"):$PATH"  # the rules call `python -m equidyn.cli`
start=$(date +%s)
nice -n 10 "$PY" -m snakemake all --snakefile "$ROOT/Snakefile" --directory "$WORKDIR" --profile "$ROOT/profiles/local" \
    --configfile "$ROOT/config/config.yaml" "$ROOT/config/paper_check.yaml" --cores 2 --keep-going "$@"
status=$?
# the JHTDB path (paper crop and times) against the loopback service of tests/test_jhtdb.py
nice -n 10 "$PY" "$ROOT/scripts/paper_check_jhtdb.py" "$WORKDIR/results/paper_check" || status=$?
wall=$(( $(date +%s) - start ))
# the studies the check trains at a smaller batch than the paper (superres: batch 1 of 4), for the extrapolation
scales=$(PYTHONPATH="$ROOT/src" "$PY" -c "
from equidyn.config import load_config
from equidyn.paper_check import batch_scales
paper = load_config(['$ROOT/config/config.yaml'])
check = load_config(['$ROOT/config/config.yaml', '$ROOT/config/paper_check.yaml'])
print(' '.join(f'--batch-scale {k}={v:g}' for k, v in batch_scales(paper, check).items()))")
# shellcheck disable=SC2086
PYTHONPATH="$ROOT/src" "$PY" -m equidyn.paper_check "$WORKDIR/results/paper_check" --wall "$wall" $scales \
    --out "$WORKDIR/results/paper_check/paper_check.md" || true
exit $status
