#!/usr/bin/env bash
# The project's checks, as CI runs them: lint, the fast suite, then the slow end-to-end demo run.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/python -m pytest -q
.venv/bin/python -m pytest -q -m slow -s
