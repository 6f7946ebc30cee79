"""``window-cascades pipeline --step``: the pipeline's steps, and the option's old name
``--stage``, which job scripts written before the rename still pass."""

from __future__ import annotations

import pytest

from tests.conftest import QUICKSTART
from window_cascades.commands.pipeline_command import main

PIPELINE_CFG = str(QUICKSTART / "pipeline.yaml")


def test_step_member_needs_a_member_index(capsys, monkeypatch):
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
    assert main(["--config", PIPELINE_CFG, "--step", "member"]) == 2
    err = capsys.readouterr().err.splitlines()[0]
    assert err == "error: --step member needs --member I, an array task or --parallel-members"


def test_the_old_name_stage_still_runs_the_step_with_a_notice(capsys, monkeypatch):
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
    assert main(["--config", PIPELINE_CFG, "--stage", "member"]) == 2
    notice, error = capsys.readouterr().err.splitlines()[:2]
    assert notice == "note: --stage is now --step"
    assert error.startswith("error: --step member needs --member I")


def test_step_and_its_old_name_together_are_refused(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--stage", "member", "--step", "evaluate"], "window-cascades pipeline")
    assert stop.value.code == 2
    assert capsys.readouterr().err.endswith(
        "window-cascades pipeline: error: give --step only (--stage is its old name)\n"
    )


def test_help_names_the_steps_and_hides_the_old_name(capsys):
    with pytest.raises(SystemExit):
        main(["--help"], "window-cascades pipeline")
    shown = capsys.readouterr().out
    assert "--step {all,member,evaluate}" in shown
    assert "--stage" not in shown
