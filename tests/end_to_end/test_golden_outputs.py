"""The codebase's shape as users rely on it: outputs unchanged by restructuring, registries that
take a new policy in one place, and an offline evaluator that loads only what it uses."""

import json
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT
from tests.regression_case import (
    ARGS,
    GOLDEN_METRICS,
    GOLDEN_SUMMARY,
    metrics_changes,
    run_case,
    summary_changes,
    write_case,
)
from window_cascades.cascade.metric_registry import higher_is_better
from window_cascades.cascade.offline import evaluate_experiment
from window_cascades.cascade.policy_registry import (
    policy_names,
    policy_table,
    register_policy,
    unregister_policy,
)

HEAVY = ("lightning", "torchmetrics", "wandb", "datasets", "timm", "matplotlib")


def test_offline_outputs_match_the_golden_files_made_before_the_restructuring(tmp_path):
    """metrics.csv (every row, in order) and summary.json of a fixed 3-member case with every
    policy, a sweep and temperature scaling, as the previous layout wrote them (regenerated
    with ``scripts/regenerate_golden.py`` when augrc, e_aurc and scod_augrc were added, when
    fail_auroc and fail_fpr@95 were, and when the cost-to-target rows
    (``<policy>@gain<percent>``) were appended: every earlier row kept its value and place)."""
    out = run_case(tmp_path)
    metrics = (out / "metrics.csv").read_text()
    changes = metrics_changes(GOLDEN_METRICS.read_text(), metrics)
    assert not any(changes.values()), {k: v[:3] for k, v in changes.items() if v}
    assert metrics == GOLDEN_METRICS.read_text()
    summary = (out / "summary.json").read_text()
    assert json.loads(summary) == json.loads(GOLDEN_SUMMARY.read_text()), [
        v[:3] for v in summary_changes(GOLDEN_SUMMARY.read_text(), summary).values() if v
    ]


def test_the_regeneration_tells_appended_rows_from_changed_ones():
    """What ``scripts/regenerate_golden.py`` writes freely (rows a new metric adds, wherever
    they fall) and what it refuses (an existing row changed, moved or gone)."""
    header, *rows = GOLDEN_METRICS.read_text().splitlines(keepends=True)
    new_metric = rows[0].replace(",acc,", ",new_metric,")
    assert metrics_changes(header + "".join(rows), header + new_metric + "".join(rows)) == {
        "added": [metrics_changes(header, header + new_metric)["added"][0]],
        "removed": [],
        "changed": [],
        "moved": [],
    }
    changed = metrics_changes(header + rows[0], header + rows[0].replace(",0.65,", ",0.66,"))
    assert len(changed["changed"]) == 1 and not changed["added"] and not changed["removed"]
    moved = metrics_changes(header + rows[0] + rows[1], header + rows[1] + rows[0])
    assert moved["moved"] and not moved["changed"]
    gone = metrics_changes(header + rows[0] + rows[1], header + rows[1])
    assert len(gone["removed"]) == 1 and not gone["moved"]
    summary = json.loads(GOLDEN_SUMMARY.read_text())
    grown = json.dumps({**summary, "members": summary["members"] + [{"member": "m3"}]})
    fields = summary_changes(GOLDEN_SUMMARY.read_text(), grown)
    assert (
        fields["changed"] == [("members.length", 3, 4)] and "members[3].member" in fields["added"]
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
