"""The quick start end to end, and the same pipeline logging to wandb offline."""

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT
from window_cascades.artifacts.results import read_metrics_csv


def run_pipeline(tmp_path, *args, timeout=900):
    env = {**os.environ, "WANDB_MODE": "offline"}
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "run_pipeline.py"),
            "--config",
            str(ROOT / "configs" / "quickstart" / "pipeline.yaml"),
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_quickstart_pipeline_end_to_end(tmp_path):
    out = tmp_path / "quickstart"
    proc = run_pipeline(tmp_path, "--out", str(out))
    for i in (0, 1):
        # the checkpoint handed on is the last step of all 6 epochs, not the best-validation one
        last = out / "members" / f"m{i}" / "checkpoints" / "last.ckpt"
        finished = json.loads((last.parents[1] / "finished.json").read_text())
        saved = torch.load(last, map_location="cpu", weights_only=True)
        assert finished["epochs"] == saved["epoch"] + 1 == 6
        assert saved["global_step"] == finished["global_step"] == finished["checkpoint_step"]
        assert (out / "logits" / f"m{i}" / "digits_test.safetensors").is_file()
        assert (out / "logits" / f"m{i}" / "meta.json").is_file()
    for name in (
        "metrics.csv",
        "summary.json",
        "fitted_cascade.json",
        "cascade.ckpt",
        "risk_coverage.png",
        "macs_vs_risk80.png",
        "tradeoff.png",
        "reliability.png",
        "report.md",
        "deltas.csv",
    ):
        assert (out / "results" / name).stat().st_size > 0, name
    # what a newcomer opens first shows the policies apart: the shifted and OOD sets, with
    # intervals, and says which differences the intervals can tell from noise
    report = (out / "results" / "report.md").read_text()
    assert "![tradeoff.png](tradeoff.png)" in report and "95% percentile bootstrap" in report
    # the differences that matter: corrected for multiple comparisons, capped, all in deltas
    assert "Benjamini-Hochberg" in report and "![reliability.png](reliability.png)" in report
    deltas = read_metrics_csv(out / "results" / "deltas.csv")
    noise = {
        (d["baseline"], d["metric"]): d
        for d in deltas
        if d["dataset"] == "digits_noise" and d["policy"] == "window"
    }
    assert noise[("single", "op_cov")]["p_value"] is not None  # in the tested family
    # the target's own comparison, at the same held-out cost: reported, not tested
    assert noise[("single_threshold", "op_risk")]["p_value"] is None
    rows = read_metrics_csv(out / "results" / "metrics.csv")
    by = {(r["dataset"], r["policy"], r["metric"]): r["value"] for r in rows}
    roles = {r["dataset"]: r["role"] for r in rows}
    assert sorted(set(roles.values())) == ["heldout", "id", "ood", "shift"]
    assert sum(r == "shift" for r in roles.values()) >= 2
    for policy in ("single", "ensemble", "single_threshold", "window"):
        for metric in (
            "acc",
            "nll",
            "ece",
            "aurc",
            "cov@5",
            "risk@80",
            "expected_macs",
            "exit_frac@1",
            "exit_frac@2",
        ):
            assert ("digits_test", policy, metric) in by
        assert ("photo_patches", policy, "auroc") in by
        assert ("photo_patches", policy, "fpr@95") in by
    # members learned, and the window passes about 2w = 20% of ID samples on
    assert by[("digits_test", "single", "acc")] > 0.9
    assert by[("digits_noise", "window", "cov@5")] != by[("digits_noise", "single", "cov@5")]
    assert 0.05 < by[("digits_test", "window", "exit_frac@2")] < 0.4
    summary = json.loads((out / "results" / "summary.json").read_text())
    assert summary["policies"]["window"]["setting"] == "risk@80,w=0.1"
    # the default target shows a window: its band surrounds tau (q = 0.2, not clamped to the
    # least confident 2w), so it passes other samples on than single_threshold at equal
    # held-out cost, and the report leads with the target's own comparison
    (stage,) = summary["policies"]["window"]["stages"]
    assert stage["width"] < stage["q"] < 1 - stage["width"] and stage["lower"] is not None
    assert any(
        by[(d, "window", "expected_macs")] != by[(d, "single_threshold", "expected_macs")]
        for d in roles
        if roles[d] != "heldout"
    )
    assert "note: window" not in report and "single_threshold and window give" not in report
    assert report.index("## risk@80 at the fitted threshold") < report.index("## Results")
    assert "Results written to:" in proc.stdout and "digits_test (id)" in proc.stdout
    # the README's quick-start table is this run's (within the cross-CPU tolerance)
    check = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "update_readme_table.py"),
            str(out / "results"),
            "--check",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # the quick start runs again: its earlier results replaced (one line says so), the
    # finished members reused, not retrained
    again = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "run_pipeline.py"),
            "--config",
            str(ROOT / "configs" / "quickstart" / "pipeline.yaml"),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"note: replacing the earlier results in {out / 'results'}" in again.stderr
    assert again.stdout.count("already trained") == 2 and "Epoch" not in again.stdout
    assert read_metrics_csv(out / "results" / "metrics.csv") == rows


@pytest.mark.slow
@pytest.mark.wandb
def test_pipeline_logs_to_wandb_offline(tmp_path):
    out = tmp_path / "wandb_run"
    run_pipeline(
        tmp_path, "--out", str(out), "--logger", "wandb", "--member-arg=--trainer.max_epochs=1"
    )
    runs = sorted((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 3  # two members and the cascade evaluation
    records = []
    for run in runs:
        proc = subprocess.run(
            [
                os.path.join(os.path.dirname(sys.executable), "wandb"),
                "leet",
                "inspect",
                "--json",
                str(run),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        records.append(proc.stdout)
    text = "\n".join(records)
    assert "train/loss" in text and "val/acc" in text
    assert "id/digits_test/window/cov@5" in text
    assert "ood/photo_patches/window/fpr@95" in text
    # runs are grouped per experiment, with a job type per stage
    assert text.count('"run_group":"quickstart"') >= 3
    assert '"job_type":"member"' in text and '"job_type":"evaluate"' in text
