#!/usr/bin/env bash
# Create .venv and install the requirements and this project (editable). Idempotent: a second
# run with unchanged requirement files does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
# the tests need the extras too (wandb-marked tests, the Hugging Face image source)
want=$(cat requirements.txt requirements-dev.txt requirements-wandb.txt requirements-hf.txt \
  pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing requirements into .venv (first time: a few minutes)"
  .venv/bin/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt \
    -r requirements-wandb.txt -r requirements-hf.txt
  .venv/bin/python -m pip install --quiet -e ".[dev,all]"  # the same files, read by pyproject.toml
  echo "$want" > "$stamp"
else
  echo "[setup] .venv is up to date"
fi
