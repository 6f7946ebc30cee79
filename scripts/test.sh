#!/usr/bin/env bash
# The test suite (slow, ddp and all): set up .venv if needed, lint, then pytest.
#   bash scripts/test.sh            everything (what .ci/run runs)
#   bash scripts/test.sh --fast     the development loop: -m "not slow", the 15 slowest and the
#                                   line coverage of the library (in-process) printed
# Other arguments go to pytest, e.g. tests/cascade/test_engine.py -x.
set -euo pipefail
cd "$(dirname "$0")/.."
fast=()
if [ "${1:-}" = "--fast" ]; then
  shift
  fast=(-m "not slow" --durations=15 --cov --cov-report=term:skip-covered)
fi
bash scripts/setup_env.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "${fast[@]}" "$@"
