#!/usr/bin/env bash
# Quick start: set up .venv, then run the whole pipeline on the embedded default dataset
# (train 2 members, cache logits, calibrate and evaluate the cascade).
# Extra arguments go to scripts/run_pipeline.py, e.g. --logger wandb.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/python scripts/run_pipeline.py --config configs/quickstart/pipeline.yaml "$@"
