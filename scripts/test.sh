#!/usr/bin/env bash
# The test suite (slow, ddp and all): set up .venv if needed, lint, then pytest.
# Extra arguments go to pytest, e.g. -m "not slow".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
