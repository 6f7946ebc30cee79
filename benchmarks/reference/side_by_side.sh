#!/usr/bin/env bash
# Time the reference evaluation and ours side by side, alternating, on one machine.
#   bash benchmarks/reference/side_by_side.sh REFERENCE_COPY LOGITS_DIR [ROUNDS]
# REFERENCE_COPY: an exported copy of the paper's code (see README.md here); LOGITS_DIR: the
# logits of benchmarks/eval/benchmark_eval.py. Prints each run's wall time (process start included).
# "the default run": the default policies, cost-to-target included (what a user gets without options).
set -euo pipefail
cd "$(dirname "$0")/../.."
ref=${1:?reference copy}; logits=${2:?logits dir}; rounds=${3:-3}
work=$(mktemp -d)
common=(--logits-dir "$logits" --members m0 m1 --heldout heldout --id test --ood ood_a ood_b
        --score msp --target cov@5 --quiet --overwrite --no-plots)  # the reference draws none
for i in $(seq "$rounds"); do
  echo "round $i"
  .venv/bin/python benchmarks/reference/run_reference.py --reference "$ref" \
    --logits-dir "$logits" --repeats 1 --work "$work/ref_$i" | grep "median"
  /usr/bin/time -f "ours, the default run: %e s" .venv/bin/python scripts/evaluate_logits.py \
    "${common[@]}" --out "$work/default"
  /usr/bin/time -f "ours, one setting: %e s" .venv/bin/python scripts/evaluate_logits.py \
    "${common[@]}" --policies single,ensemble,window --out "$work/one"
  /usr/bin/time -f "ours, 20 settings in one call: %e s" .venv/bin/python \
    scripts/evaluate_logits.py "${common[@]}" --policies single,ensemble,single_threshold,window \
    --width 0.02 0.05 0.1 0.15 0.2 0.25 0.3 0.35 0.4 0.5 \
    --pass-fraction 0.05 0.1 0.15 0.2 0.25 0.3 0.4 0.5 0.6 0.8 --out "$work/sweep"
done
rm -rf "$work"
