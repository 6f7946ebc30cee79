#!/usr/bin/env bash
# Create .venv and install the requirements and this project (editable), with the [dev] tools
# and every extra ([all] and [serve]: the suite tests wandb, the Hugging Face image source and
# `window-cascades serve`). Idempotent: a second run with unchanged requirement files does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
# the tests need the extras too (wandb-marked tests, the Hugging Face image source, the server)
want=$(cat requirements.txt requirements-dev.txt requirements-wandb.txt requirements-hf.txt \
  requirements-serve.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing requirements into .venv (first time: a few minutes)"
  .venv/bin/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt \
    -r requirements-wandb.txt -r requirements-hf.txt -r requirements-serve.txt
  .venv/bin/python -m pip install --quiet -e ".[dev,all,serve]"  # the same files, via pyproject.toml
  echo "$want" > "$stamp"
else
  echo "[setup] .venv is up to date"
fi
