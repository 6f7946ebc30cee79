"""The codebase's shape as users rely on it: outputs unchanged by restructuring, registries that
take a new policy in one place, and an offline evaluator that loads only what it uses."""

import json
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT
from tests.regression_case import ARGS, write_case
from window_cascades.cascade.metric_registry import higher_is_better
from window_cascades.cascade.offline import evaluate_experiment
from window_cascades.cascade.policy_registry import (
    policy_names,
    policy_table,
    register_policy,
    unregister_policy,
)
from window_cascades.commands.offline import main as evaluate_logits

GOLDEN = ROOT / "tests" / "data"
HEAVY = ("lightning", "torchmetrics", "wandb", "datasets", "timm", "matplotlib")


def test_offline_outputs_match_the_golden_files_made_before_the_restructuring(tmp_path):
    """metrics.csv (every row, in order) and summary.json of a fixed 3-member case with every
    policy, a sweep and temperature scaling, as the previous layout wrote them (regenerated
    when augrc, e_aurc and scod_augrc were added, when fail_auroc and fail_fpr@95 were, and
    when the cost-to-target rows (``<policy>@gain<percent>``) were appended: every earlier row
    kept its value and place)."""
    out = tmp_path / "out"
    assert (
        evaluate_logits(
            ["--logits-dir", str(write_case(tmp_path / "logits")), *ARGS, "--out", str(out)]
        )
        == 0
    )
    assert (out / "metrics.csv").read_text() == (GOLDEN / "regression_metrics.csv").read_text()
    assert json.loads((out / "summary.json").read_text()) == json.loads(
        (GOLDEN / "regression_summary.json").read_text()
    )


def test_offline_evaluator_loads_no_training_or_logging_stack(tmp_path):
    """matplotlib is loaded only to draw the plots (--no-plots: not at all)."""
    write_case(tmp_path / "logits")
    cmd = [
        sys.executable,
        "-X",
        "importtime",
        "scripts/evaluate_logits.py",
        "--logits-dir",
        str(tmp_path / "logits"),
        *ARGS,
        "--no-plots",
        "--out",
        str(tmp_path / "out"),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = {
        line.split("|")[-1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "torch" in loaded and "safetensors" in loaded  # the parse really saw the imports
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_a_new_policy_is_one_function_and_one_registry_entry():
    from window_cascades.cascade.builtin_policies import interval_policy

    @register_policy("top_half", "the less confident half of held-out scores")
    def fit_top_half(inputs, settings):
        stages = [{"lower": None, "upper": float(c.median())} for c in inputs.stage_confidence]
        return interval_policy("top_half", stages, "median")

    try:
        gen = torch.Generator().manual_seed(0)
        from window_cascades.cascade.offline import EnsembleLogits

        data = {
            name: EnsembleLogits(
                [torch.randn(200, 4, generator=gen) * 3 for _ in range(2)],
                torch.randint(4, (200,), generator=gen),
            )
            for name in ("h", "t")
        }
        rows, fitted, _ = evaluate_experiment(
            data, {"h": "heldout", "t": "id"}, [1.0, 1.0], ["single", "top_half"]
        )
        cost = {
            r["policy"]: r["value"]
            for r in rows
            if r["dataset"] == "h" and r["metric"] == "expected_macs"
        }
        assert cost["single"] == 1.0 and cost["top_half"] == pytest.approx(1.5)
        assert "top_half" in policy_table() and fitted["top_half"].setting == "median"
    finally:
        unregister_policy("top_half")
    assert "top_half" not in policy_names()


def test_metric_directions_come_from_the_registry():
    assert higher_is_better("cov@5") and higher_is_better("auroc") and higher_is_better("acc")
    assert not higher_is_better("risk@80") and not higher_is_better("fpr@95")
    assert not higher_is_better("scod_risk@80") and not higher_is_better("aurc")
    with pytest.raises(ValueError, match="unknown metric 'bogus'"):
        higher_is_better("bogus")
