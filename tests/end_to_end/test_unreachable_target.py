"""An unreachable target is found right after the first member's logits exist (before the other
members train); the corrected run reuses the member and its cached logits; an evaluation whose
window cannot be fitted still reports single and ensemble, with the reason."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import QUICKSTART
from window_cascades.commands.pipeline_command import main as pipeline

pytestmark = pytest.mark.slow  # trains two tiny members (one epoch of one batch)


def test_unreachable_target_stops_after_m0_and_the_rerun_reuses_its_logits(
    tmp_path, small_data_config, capsys
):
    data_cfg = small_data_config(tmp_path / "data.yaml", train_limit=64)
    out = tmp_path / "exp"
    quiet = "--trainer.enable_progress_bar=false"
    (tmp_path / "exp.yaml").write_text(
        yaml.safe_dump(
            {
                "out": str(out),
                "seeds": [0, 1],
                "member_config": str(QUICKSTART / "member.yaml"),
                "cascade_config": str(QUICKSTART / "cascade.yaml"),
                "member_args": [f"--data={data_cfg}", "--trainer.max_epochs=1", quiet],
                "cascade_args": [f"--data={data_cfg}", quiet, "--model.bootstrap=0"],
            }
        )
    )
    config = ["--config", str(tmp_path / "exp.yaml")]
    # a member trained on one batch reaches no 5% selective risk
    assert pipeline([*config, "--cascade-arg=--calibration.target=cov@5"]) == 2
    captured = capsys.readouterr()
    error = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(error) == 1, captured.err[-3000:]
    assert "cannot be fitted for target cov@5" in error[0]
    assert "stopped before training the other members (m0 is kept)" in error[0]
    assert (out / "logits" / "m0" / "meta.json").is_file()
    assert not (out / "members" / "m1").exists()  # nothing else trained

    # the corrected target: m0 is not trained again, and its logits are not cached again
    assert pipeline([*config, "--cascade-arg=--calibration.target=risk@80"]) == 0
    shown = capsys.readouterr().out
    assert "member m0 already trained" in shown
    assert "m0: cached logits up to date" in shown and "caching logits of m0" not in shown
    assert "caching logits of m1" in shown
    assert "target risk@80: reached by m0" in shown

    # the evaluation with a target the window cannot reach: single and ensemble reported
    argv = [*config, "--step", "evaluate", "--overwrite"]
    assert pipeline([*argv, "--cascade-arg=--calibration.target=cov@5"]) == 0
    err = capsys.readouterr().err
    assert "warning: window not fitted: window target cov@5" in err
    summary = json.loads((out / "results" / "summary.json").read_text())
    assert "window" in summary["not_fitted"]
    assert {"single", "ensemble"} <= set(summary["metrics"]["digits_test"])
    assert "window" not in summary["metrics"]["digits_test"]
    report = (out / "results" / "report.md").read_text()
    assert "**window was not fitted** (not evaluated)" in report
